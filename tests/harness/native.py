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
import subprocess
import tempfile
from pathlib import Path

from . import services, tls
from .commands import run
from .processes import Server, free_port
from .template import proxies_of, tls_mode_of
from .tls import Pebble

# Django's own check that the schema has every migration of the code.
MIGRATE_CHECK = ["python", "manage.py", "migrate", "--check"]


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

    def __init__(self, project, mariadb, *, replicas=2, haproxy_settings=None, log_format="text"):
        """mariadb: a running MariaDB server; this stack gets a database of its
        own. haproxy_settings: HAProxy's environment beyond its defaults.
        log_format: every server's LOG_FORMAT."""
        self.project = Path(project)
        self.proxies = proxies_of(project)
        # The proxies' workers run as www-data: the static files and every
        # folder above them must be readable by others, which pytest's own
        # temporary folders are not.
        base = Path(tempfile.mkdtemp(prefix="django-ha-"))
        base.chmod(0o755)
        self.tls_mode = tls_mode_of(project)
        self.tls = self.tls_mode != "none"
        names = ["haproxy", "stats", "haproxy-metrics", "app", "app-metrics", *self.proxies]
        names += [f"{proxy}-status" for proxy in self.proxies]
        names += ["https"] * self.tls + ["acme"] * (self.tls_mode == "acme")
        self.layout = services.Layout(
            project=self.project,
            workdir=base,
            ports={name: free_port() for name in names},
            replica_hosts=[f"127.0.0.{11 + i}" for i in range(replicas)],
            haproxy_settings=haproxy_settings or {},
            log_format=log_format,
        )
        self.domain = self.layout.domain
        # The site's, in which a restore reads its moment (as under Compose).
        self.time_zone = services.compose_file(self.project)["services"]["backup"]["environment"][
            "TZ"
        ]
        self.stats_password = self.layout.secrets["HAPROXY_STATS_PASSWORD"]
        self.mariadb = mariadb
        self.database_name = f"stack_{self.layout.ports['app']}"
        self.replicas = []
        self.servers = {}
        self.pebble = None
        # The CA a client checks the site's certificate against (once known).
        self.verify = False

    def url(self, name="haproxy", path="/"):
        """A published port's URL: "haproxy" is the site (HTTPS with TLS),
        "haproxy-http" its plain HTTP port, "stats" and the web servers theirs."""
        port = {"haproxy": "https" if self.tls else "haproxy", "haproxy-http": "haproxy"}
        scheme = "https" if self.tls and name in ("haproxy", "stats") else "http"
        return f"{scheme}://localhost:{self.layout.ports[port.get(name, name)]}{path}"

    # Start and stop ------------------------------------------------------

    def start(self):
        try:
            self.prepare_certificates()
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
            self.trust_certificate()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def every_server(self):
        """Front to back: HAProxy, the proxies, the replicas, the ACME test CA
        (not the shared MariaDB)."""
        return [*reversed(self.servers.values()), *self.replicas, *filter(None, [self.pebble])]

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

    # Certificates ------------------------------------------------------------

    def prepare_certificates(self):
        """What each tls mode needs before HAProxy starts: the user's own
        certificate from a test CA, or an ACME test CA to ask."""
        folder = self.layout.workdir / "certificates"
        folder.mkdir()
        if self.tls_mode == "own":
            self.test_ca = tls.self_signed(folder, "test-ca", ca=True)
            self.layout.own_certificate = tls.signed_by(self.test_ca, folder, "localhost")
        if self.tls_mode == "acme":
            self.pebble = Pebble(folder, http_port=self.layout.ports["haproxy"]).start()
            self.layout.acme_directory = self.pebble.directory
            self.layout.acme_api_certificate = self.pebble.api_certificate

    def trust_certificate(self):
        """Once HAProxy serves: get the CA's certificate (ACME), and trust
        what the site's certificate chains to."""
        folder = self.layout.workdir / "certificates"
        if self.tls_mode == "self-signed":
            self.verify = tls.certificate_only(self.layout.certificate, folder / "site.crt")
        elif self.tls_mode == "own":
            self.verify = self.test_ca[0]
        elif self.tls_mode == "acme":
            self.renew_certificate(days=30)
            self.verify = self.pebble.root(folder / "pebble-root.crt")

    def renew_certificate(self, days):
        """`acme renew <days>`, as the acme service runs it: issues the first
        certificate, or renews it when fewer than `days` are left."""
        acme = services.acme(self.layout)
        run(["sh", acme.entrypoint, "acme", "renew", str(days)], env=acme.env(), timeout=120)

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

    def stored_posts(self):
        query = f"SELECT * FROM `{self.database_name}`.board_post ORDER BY id"  # noqa: S608
        return [row.split("\t") for row in self.mariadb.sql(query).splitlines()]

    def stored_titles(self):
        query = f"SELECT title FROM `{self.database_name}`.board_post"  # noqa: S608 (our own name)
        return sorted(self.mariadb.sql(query).splitlines())

    def reload_proxy(self, name):
        """A graceful reload of a web server, as its own reload command does it."""
        self.servers[name].process.send_signal(services.SERVICES[name](self.layout).reload)

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

    def backup(self, *args):
        """The backup service's `backup` command, run once; what it printed."""
        service = services.backup(self.layout)
        command = ["sh", service.entrypoint, "backup", *args]
        return run(command, env=service.env(), timeout=120).stdout

    def backup_shell(self, script):
        """A shell in the backups folder, with the backup service's settings."""
        env = services.backup(self.layout).env()
        run(["sh", "-c", script], cwd=self.layout.workdir / "backups", env=env)

    def restore(self, *args):
        """What restore.sh does with Compose: check the dump, stop the app,
        restore, `migrate --check`, start the app. The app stays stopped
        when a step fails, as there."""
        backup, django = services.backup(self.layout), services.django(self.layout)
        outputs = []

        def step(service, *command, key=False):
            result = run(
                ["sh", service.entrypoint, *command],
                env=service.env(),
                cwd=self.layout.workdir,
                input=self.layout.backup_key.read_text() if key else "",
                check=False,
                timeout=300,
            )
            outputs.append(result.stdout + result.stderr)
            return result.returncode == 0

        if not step(backup, "backup", "verify", *args, key=True):
            return 1, "".join(outputs)
        for replica in self.replicas:
            replica.stop()
        if not (
            self.replay(backup, args, outputs)
            and step(backup, "backup", "now")
            and step(django, *MIGRATE_CHECK)
        ):
            return 1, "".join(outputs)
        for replica in self.replicas:
            replica.start()
        return 0, "".join(outputs)

    def replay(self, backup, args, outputs):
        """restore.sh's replay: the backup service's SQL, run as root through
        the socket, out of the binary log; True when both ends succeeded."""
        with self.layout.backup_key.open() as key, tempfile.TemporaryFile() as errors:
            replay = subprocess.Popen(  # noqa: S603 (our own arguments)
                ["sh", backup.entrypoint, "backup", "replay", *args],
                env=backup.env(),
                cwd=self.layout.workdir,
                stdin=key,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            loaded = subprocess.run(  # noqa: S603 (our own arguments)
                self.mariadb.root_client("--init-command=SET SESSION sql_log_bin=0"),
                stdin=replay.stdout,
                capture_output=True,
                check=False,
                timeout=300,
            )
            replay.stdout.close()
            replay.wait(timeout=60)
            errors.seek(0)
            outputs.append(errors.read().decode() + loaded.stderr.decode())
        return replay.returncode == 0 and loaded.returncode == 0

    def destroy_database(self):
        """The stack's database dropped: MariaDB is shared here, so its data
        volume cannot go; the stack loses the same data."""
        self.mariadb.sql(f"DROP DATABASE `{self.database_name}`")

    def log_tails(self):
        """The end of every server's log, to explain a failed check."""
        return "\n".join(server.log_tail(15) for server in [*self.every_server, self.mariadb])
