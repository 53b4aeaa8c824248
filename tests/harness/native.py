"""The native launcher: a baked project's whole stack on loopback, no Docker.

    client -> HAProxy -> Nginx and/or Apache -> Gunicorn replicas -> MariaDB

Every service starts through its own entrypoint.sh and config template, as
in its container; only ports and paths differ (services.py). Replicas listen
on their own loopback addresses and share one port, as a scaled Compose
service does behind one name.

NativeStack answers the questions the baked project's checks/check_stack.py
asks of a stack, so tier 5 runs the same checks as the Docker tier and the
baked project's CI.
"""

import shutil
import tempfile
from pathlib import Path

from . import services
from .commands import run
from .processes import Server, free_port
from .template import proxies_of


class NativeStack:
    # A source address of its own, so the client is recognisable downstream.
    client_source = "127.0.0.99"

    def __init__(self, project, mariadb, *, replicas=2):
        """mariadb: a running MariaDB server; this stack gets a database of its own."""
        self.project = Path(project)
        self.proxies = proxies_of(project)
        # The proxies' workers run as www-data: the static files and every
        # folder above them must be readable by others, which pytest's own
        # temporary folders are not.
        base = Path(tempfile.mkdtemp(prefix="django-ha-"))
        base.chmod(0o755)
        ports = {name: free_port() for name in ("haproxy", "stats", "app", *self.proxies)}
        self.layout = services.Layout(
            project=self.project,
            workdir=base,
            ports=ports,
            replica_hosts=[f"127.0.0.{11 + i}" for i in range(replicas)],
        )
        self.stats_password = self.layout.secrets["HAPROXY_STATS_PASSWORD"]
        self.mariadb = mariadb
        self.database_name = f"stack_{ports['app']}"
        self.replicas = []
        self.servers = {}

    def url(self, name="haproxy", path="/"):
        return f"http://localhost:{self.layout.ports[name]}{path}"

    # Start and stop ------------------------------------------------------

    def start(self):
        try:
            self.layout.database = self.create_database()
            self.migrate()
            self.replicas = [self.server("django", host) for host in self.layout.replica_hosts]
            self.servers = {name: self.server(name) for name in [*self.proxies, "haproxy"]}
            # All at once: no server needs another to start, only to serve.
            for server in self.every_server:
                server.start(wait=False)
            for server in self.every_server:
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
        return {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.mariadb.port),
            "DB_NAME": name,
            "DB_USER": name,
            "DB_PASSWORD": password,
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

    def stored_titles(self):
        query = f"SELECT title FROM `{self.database_name}`.board_post"  # noqa: S608 (our own name)
        return set(self.mariadb.sql(query).splitlines())

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

    def restart_database(self):
        self.mariadb.restart()

    def log_tails(self):
        """The end of every server's log, to explain a failed check."""
        return "\n".join(server.log_tail(15) for server in [*self.every_server, self.mariadb])
