"""The native launcher: a baked project's whole stack on loopback, no Docker.

    client -> HAProxy -> Nginx and/or Apache -> Gunicorn replicas -> MariaDB

Every service starts through its own entrypoint.sh and config template, as
in its container; only ports and paths differ (services.py). Replicas listen
on their own loopback addresses and share one port, as a scaled Compose
service does behind one name.

NativeStack answers what the baked project's checks/check_stack.py asks of a
stack in its failover scenarios, which the benchmark (bench/) runs and times
here. Its bakes answer tls=none (or the default, self-signed); the Docker
tier runs every check, every tls answer and the backups on the images.
"""

import shutil
import tempfile
from pathlib import Path

import urllib3

from . import services
from .commands import run
from .processes import Server, free_port
from .template import answers_of, proxies_of


def failover_scenarios(checks):
    """The baked checks' failover scenarios that a native stack runs. Outside
    Docker no restart policy brings a crashed HAProxy back: that one runs in
    Docker only. Overload is a run of its own, not a failure to survive."""
    skipped = (checks.failover_when_haproxy_crashes, checks.failover_under_overload)
    return [scenario for scenario in checks.FAILOVER if scenario not in skipped]


class NativeStack:
    # Each client of the checks binds a loopback address of its own, which
    # HAProxy sees as it is (nothing in front of it).
    client_network = "127.64.0.0/10"
    proxy_protocol_ports = frozenset()

    def __init__(
        self,
        project,
        mariadb,
        *,
        replicas=2,
        haproxy_settings=None,
        app_settings=None,
        log_format="text",
    ):
        """mariadb: a running MariaDB server; this stack gets a database of its
        own. haproxy_settings, app_settings: HAProxy's and the app's
        environment beyond their defaults. log_format: every server's
        LOG_FORMAT."""
        self.project = Path(project)
        self.proxies = proxies_of(project)
        # The proxies' workers run as www-data: the static files and every
        # folder above them must be readable by others, which pytest's own
        # temporary folders are not.
        base = Path(tempfile.mkdtemp(prefix="django-ha-"))
        base.chmod(0o755)
        self.tls_mode = answers_of(project)["tls"]
        self.tls = self.tls_mode != "none"
        names = ["haproxy", "stats", "haproxy-metrics", "app", "app-metrics", *self.proxies]
        names += [f"{proxy}-status" for proxy in self.proxies]
        names += ["https"] * self.tls
        self.layout = services.Layout(
            project=self.project,
            workdir=base,
            ports={name: free_port() for name in names},
            replica_hosts=[f"127.0.0.{11 + i}" for i in range(replicas)],
            haproxy_settings=haproxy_settings or {},
            app_settings=app_settings or {},
            log_format=log_format,
        )
        self.domain = self.layout.domain
        self.stats_password = self.layout.secrets["HAPROXY_STATS_PASSWORD"]
        self.mariadb = mariadb
        self.database_name = f"stack_{self.layout.ports['app']}"
        self.replicas = []
        self.servers = {}
        # No CA to check the site's certificate against: self-signed, or none;
        # so no warning about it either, as the Compose driver does.
        self.verify = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def url(self, name="haproxy", path="/"):
        """A published port's URL: "haproxy" is the site (HTTPS with TLS),
        "haproxy-http" its plain HTTP port, "stats" and the web servers theirs."""
        port = {"haproxy": "https" if self.tls else "haproxy", "haproxy-http": "haproxy"}
        scheme = "https" if self.tls and name in ("haproxy", "stats") else "http"
        return f"{scheme}://localhost:{self.layout.ports[port.get(name, name)]}{path}"

    # Start and stop ------------------------------------------------------

    def start(self):
        try:
            self.layout.database = self.create_database()
            self.migrate()
            self.replicas = [self.server("django", host) for host in self.layout.replica_hosts]
            self.servers = {name: self.server(name) for name in [*self.proxies, "haproxy"]}
            # All at once: no server needs another to start, only to serve.
            launching = [*self.servers.values(), *self.replicas]
            for server in launching:
                server.start(wait=False)
            for server in launching:
                server.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def every_server(self):
        """Front to back: HAProxy, the proxies, the replicas (not the shared MariaDB)."""
        return [*reversed(self.servers.values()), *self.replicas]

    def stop(self):
        """Kill every server of this stack, front to back; safe to call more than once."""
        for server in self.every_server:
            server.kill()
        shutil.rmtree(self.layout.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def heal(self):
        """Bring back whatever a check stopped, back to front."""
        for server in [self.mariadb, *reversed(self.every_server)]:
            if not server.running:
                server.start()

    # The services ---------------------------------------------------------

    def create_database(self):
        name = self.database_name
        password = self.layout.secrets["DB_PASSWORD"]
        self.mariadb.create_database(name, name, password)
        self.mariadb.set_root_password(self.layout.secrets["MYSQL_ROOT_PASSWORD"])
        return {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.mariadb.port),
            "DB_NAME": name,
            "DB_USER": name,
            "DB_PASSWORD_FILE": str(self.layout.secret_file("DB_PASSWORD")),
        }

    def migrate(self):
        """What Compose's one-shot migrate service does: collect static files, migrate."""
        service = services.django(self.layout, collectstatic=True)
        command = ["python", "manage.py", "migrate", "--noinput"]
        run(["sh", service.entrypoint, *command], env=service.env())

    def server(self, name, host="127.0.0.1"):
        """A service started through its entrypoint, listening on host:<its port>."""
        if name == "django":
            service, port, label = services.django(self.layout, host), "app", f"app@{host}"
        else:
            service, port, label = services.SERVICES[name](self.layout), name, name
        return Server(
            label,
            ["sh", service.entrypoint, *service.serve],
            host=host,
            port=self.layout.ports[port],
            cwd=self.layout.workdir,
            env=service.env(),
            log_path=self.layout.workdir / f"{label}.log",
        )

    # What checks/check_stack.py asks of a stack -------------------------------

    def app_logs(self):
        return "".join(replica.log_text() for replica in self.replicas)

    def server_logs(self, name):
        return self.servers[name].log_text()

    def stored_titles(self):
        query = f"SELECT title FROM `{self.database_name}`.board_post"  # noqa: S608 (our own name)
        return sorted(self.mariadb.sql(query).splitlines())

    def instances(self, name):
        return 1

    def kill_proxy(self, name):
        self.servers[name].kill()

    def start_proxy(self, name):
        self.servers[name].start()

    def stop_replica(self, index):
        self.replicas[index].stop()

    def start_replica(self, index):
        self.replicas[index].start()

    def kill_replica(self, index):
        self.replicas[index].kill()

    def freeze_replica(self, index):
        self.replicas[index].freeze()

    def thaw_replica(self, index):
        self.replicas[index].thaw()

    def restart_database(self):
        self.mariadb.restart()

    def lock_posts(self, seconds):
        return self.mariadb.lock_table(f"`{self.database_name}`.board_post", seconds)

    def stop_database(self):
        self.mariadb.stop()

    def start_database(self):
        self.mariadb.start()
