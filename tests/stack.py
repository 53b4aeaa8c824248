"""A baked project's whole stack, running natively on loopback (no Docker).

    client -> HAProxy -> Nginx and/or Apache -> Gunicorn replicas -> MariaDB

Every service starts through its own entrypoint.sh and config template, as
in its container; only ports and paths differ (tests/services.py). Replicas
listen on their own loopback addresses and share one port, as a scaled
Compose service does behind one name. Tier 5 and any benchmark use this.
"""

import csv
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import native
import requests
import services

DOMAIN = "localhost"
CLIENT_TIMEOUT = 10


class NativeStack:
    def __init__(self, project, *, replicas=2):
        self.project = Path(project)
        self.proxies = [name for name in ("nginx", "apache") if (self.project / name).is_dir()]
        self.secrets = services.read_env(self.project / ".env")
        # The proxies' workers run as www-data: the static files and every
        # folder above them must be readable by others, which pytest's own
        # temporary folders are not.
        self.base = Path(tempfile.mkdtemp(prefix="django-ha-"))
        self.base.chmod(0o755)
        self.static_root = self.base / "static"
        self.replica_hosts = [f"127.0.0.{11 + i}" for i in range(replicas)]
        self.app_port = native.free_port()
        self.ports = {name: native.free_port() for name in ("haproxy", "stats", *self.proxies)}
        self.mariadb = native.MariaDB(self.base / "mariadb")
        self.database = None
        self.replicas = []
        self.servers = {}

    # Addresses -----------------------------------------------------------

    def url(self, name="haproxy", path="/"):
        return f"http://{DOMAIN}:{self.ports[name]}{path}"

    # Start and stop ------------------------------------------------------

    def start(self):
        try:
            self.mariadb.start()
            self.database = self.create_database()
            self.migrate()
            self.replicas = [self.replica(host) for host in self.replica_hosts]
            for replica in self.replicas:
                replica.start()
            for name in self.proxies:
                self.servers[name] = self.proxy(name).start()
            self.servers["haproxy"] = self.haproxy().start()
            self.wait_until_all_up()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def every_server(self):
        """Front to back: HAProxy, the proxies, the replicas, MariaDB."""
        return [*reversed(self.servers.values()), *self.replicas, self.mariadb]

    def stop(self):
        """Kill everything, front to back; safe to call more than once."""
        for server in self.every_server:
            server.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def heal(self):
        """Bring back whatever a test stopped, then wait until HAProxy sees all UP."""
        for server in reversed(self.every_server):
            if not server.running:
                server.start()
        self.wait_until_all_up()

    # The services ---------------------------------------------------------

    def create_database(self):
        name = self.project.name
        self.mariadb.create_database(name, name, self.secrets["DB_PASSWORD"])
        return {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.mariadb.port),
            "DB_NAME": name,
            "DB_USER": name,
            "DB_PASSWORD": self.secrets["DB_PASSWORD"],
        }

    def django(self, host, *, collectstatic=False):
        return services.django(
            self.project,
            self.base,
            bind=f"{host}:{self.app_port}",
            static_root=self.static_root,
            database=self.database,
            collectstatic=collectstatic,
        )

    def migrate(self):
        """What Compose's one-shot migrate service does: collect static files, migrate."""
        service = self.django("127.0.0.1", collectstatic=True)
        result = subprocess.run(
            ["sh", str(service.entrypoint), "python", "manage.py", "migrate", "--noinput"],
            env=service.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise native.ServerError(f"migrate failed:\n{result.stdout}\n{result.stderr}")

    def replica(self, host):
        # django/entrypoint.sh works from its own folder, wherever it starts.
        return self.through_entrypoint(self.django(host), self.app_port, host, f"app@{host}")

    def proxy(self, name):
        build = services.nginx if name == "nginx" else services.apache
        options = {"domain": DOMAIN} if name == "apache" else {}
        service = build(
            self.project,
            self.base,
            port=self.ports[name],
            backend_hosts=self.replica_hosts,
            backend_port=self.app_port,
            static_root=self.static_root,
            **options,
        )
        return self.through_entrypoint(service, self.ports[name])

    def haproxy(self):
        service = services.haproxy(
            self.project,
            self.base,
            port=self.ports["haproxy"],
            stats_port=self.ports["stats"],
            stats_password=self.secrets["HAPROXY_STATS_PASSWORD"],
            domain=DOMAIN,
            proxies={name: ("127.0.0.1", self.ports[name]) for name in self.proxies},
        )
        return self.through_entrypoint(service, self.ports["haproxy"])

    def through_entrypoint(self, service, port, host="127.0.0.1", name=None):
        name = name or service.name
        return native.Server(
            name,
            ["sh", service.entrypoint, *service.serve],
            host=host,
            port=port,
            cwd=self.base,
            env=service.env(),
            log_path=self.base / f"{name}.log",
        )

    # What HAProxy sees ----------------------------------------------------

    def stats(self):
        """{server name: status} of the proxies backend, from the stats CSV."""
        response = requests.get(
            self.url("stats", "/;csv"),
            auth=("admin", self.secrets["HAPROXY_STATS_PASSWORD"]),
            timeout=CLIENT_TIMEOUT,
        )
        response.raise_for_status()
        rows = csv.DictReader(io.StringIO(response.text.lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "proxies" and row["svname"] != "BACKEND"
        }

    def wait_for(self, condition, what, timeout):
        """Seconds until condition(stats) holds; TimeoutError naming `what` otherwise."""
        started = time.monotonic()
        while not condition(self.stats()):
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{what} after {timeout}s: {self.stats()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def seconds_until_down(self, name, timeout=10):
        # "DOWN 1/2" is still down, on its way back up.
        return self.wait_for(
            lambda stats: stats[name].startswith("DOWN"), f"{name} not DOWN", timeout
        )

    def wait_until_all_up(self, timeout=30):
        # Exactly "UP": "UP 1/2" is a server on its way down (or not yet checked).
        return self.wait_for(
            lambda stats: all(status == "UP" for status in stats.values()),
            "not every proxy UP",
            timeout,
        )

    def log_tails(self):
        """The end of every server's log, to explain a failed check."""
        return "\n".join(server.log_tail(15) for server in self.every_server)

    def app_logs(self):
        return "".join(replica.log_text() for replica in self.replicas)
