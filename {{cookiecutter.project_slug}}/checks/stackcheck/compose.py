"""The stack under Compose: the driver, and the checks only Compose can answer."""

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import urllib3

from .clients import TIMEOUT, fetch, proxy_header, wait_until
from .limits import read_until_closed


class ComposeStack:
    """A stack that `docker compose` runs, driven through Compose and Docker.

    Compose's own environment chooses the project (COMPOSE_FILE,
    COMPOSE_PROJECT_NAME, the current folder), exactly as for `docker compose ps`.
    """

    # Which CA signed the site's certificate is not for these checks to know.
    verify = False
    # Client addresses the checks say in a PROXY protocol header: RFC 2544's
    # benchmarking network, which no real client has.
    PROXY_CLIENTS = "198.18.0.0/15"

    def __init__(self, backup_key=None):
        """backup_key: the file of the backups' private key, for a restore."""
        self.backup_key = backup_key
        self.config = json.loads(self.compose("config", "--format", "json"))
        services = self.config["services"]
        # The site's, in which a restore reads its moment.
        self.time_zone = services["backup"]["environment"].get("TZ", "UTC")
        haproxy = services["haproxy"]["environment"]
        # The web servers: HAProxy starts once they are healthy.
        self.proxies = list(services["haproxy"]["depends_on"])
        self.domain = haproxy["DOMAIN_NAME"]
        # A file the bake wrote (secrets/), as Compose resolves its path.
        stats_password = self.config["secrets"]["HAPROXY_STATS_PASSWORD"]["file"]
        self.stats_password = Path(stats_password).read_text().strip()
        self.tls = "HAPROXY_HTTPS_PORT" in haproxy
        self.ports = {"haproxy-http": self.published("haproxy", haproxy["HAPROXY_PORT"])}
        self.ports["stats"] = self.published("haproxy", haproxy["HAPROXY_STATS_PORT"])
        if self.tls:
            self.ports["haproxy"] = self.published("haproxy", haproxy["HAPROXY_HTTPS_PORT"])
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        else:
            self.ports["haproxy"] = self.ports["haproxy-http"]
        for name in self.proxies:
            self.ports[name] = self.published(name, services[name]["ports"][0]["target"])
        # Every client of this machine reaches HAProxy from Docker's gateway:
        # one address, unless HAProxy believes the PROXY protocol from there.
        site = {self.ports["haproxy"], self.ports["haproxy-http"]}
        self.proxy_protocol_ports = site if self.believes_proxy_protocol() else set()
        self.client_network = self.PROXY_CLIENTS if self.proxy_protocol_ports else None

    def believes_proxy_protocol(self):
        """Whether HAProxy takes this machine's PROXY protocol header about a
        client (checks/compose.yml): it then answers its health check; else
        the header is no HTTP, and gets a 400."""
        port = self.ports["haproxy-http"]
        with socket.create_connection(("127.0.0.1", port), TIMEOUT) as connection:
            header = proxy_header(str(ipaddress.ip_network(self.PROXY_CLIENTS)[1]), connection)
            connection.sendall(header + b"GET /haproxy-health HTTP/1.0\r\n\r\n")
            return re.match(rb"HTTP/1\.[01] 200 ", read_until_closed(connection)) is not None

    def compose(self, *args):
        return self.docker("compose", *args)

    @staticmethod
    def docker(*args):
        # docker from PATH, as a user runs it; our own arguments, no shell.
        result = subprocess.run(  # noqa: S603
            ["docker", *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def published(self, service, target):
        """The host port that Compose publishes `target` of `service` on."""
        host_port = self.compose("port", service, str(target)).strip()
        return int(host_port.rpartition(":")[2])

    def url(self, name="haproxy", path="/"):
        scheme = "https" if self.tls and name in ("haproxy", "stats") else "http"
        return f"{scheme}://127.0.0.1:{self.ports[name]}{path}"

    def established_connections(self, service, port):
        """How many TCP connections a service's container has open to `port`
        (the kernel's table: no tool needed in the image)."""
        table = self.compose("exec", "-T", service, "cat", "/proc/net/tcp")
        rows = [line.split() for line in table.splitlines()[1:]]
        return sum(1 for row in rows if row[2].endswith(f":{port:04X}") and row[3] == "01")

    def containers(self, service):
        """IDs of a service's containers, by replica number."""
        rows = [
            json.loads(line)
            for line in self.compose("ps", "--all", "--format", "json", service).splitlines()
        ]
        return [row["ID"] for row in sorted(rows, key=lambda row: row["Name"])]

    # What the checks ask of any stack (stack.py).

    def app_logs(self):
        return self.compose("logs", "--no-log-prefix", "app")

    def server_logs(self, name):
        return self.compose("logs", "--no-log-prefix", name)

    # Python code run in an app replica, with Django set up.
    DJANGO_SHELL = ("compose", "exec", "-T", "app", "python", "manage.py", "shell", "-v", "0", "-c")

    def django(self, code):
        """Run Python in an app replica with Django set up; returns what it printed."""
        return self.docker(*self.DJANGO_SHELL, code)

    def stored_titles(self):
        code = "import json; from board.models import Post; print(json.dumps(list(Post.objects.values_list('title', flat=True))))"  # noqa: E501
        return sorted(json.loads(self.django(code)))

    def wait_until_healthy(self, container):
        """Like a native server's start: back once its healthcheck passes."""
        health = "{{.State.Health.Status}}"
        wait_until(
            lambda: self.docker("inspect", "--format", health, container).strip() == "healthy",
            f"container {container} not healthy",
            timeout=90,
            interval=0.5,
        )

    def instances(self, name):
        return len(self.containers(name))

    def kill_proxy(self, name):
        self.docker("kill", self.containers(name)[0])

    def start_proxy(self, name):
        self.docker("start", self.containers(name)[0])
        self.wait_until_healthy(self.containers(name)[0])

    def stop_replica(self, index):
        self.docker("stop", self.containers("app")[index])

    def start_replica(self, index):
        container = self.containers("app")[index]
        self.docker("start", container)
        self.wait_until_healthy(container)

    def kill_replica(self, index):
        self.docker("kill", self.containers("app")[index])

    @property
    def replicas(self):
        return self.containers("app")

    def freeze_replica(self, index):
        # Every process of the container, frozen (a SIGSTOP would reach
        # Gunicorn's master only), its connections left open. The freeze
        # fails now and then while a healthcheck's exec joins the container
        # (runc issue 2753); the next try succeeds.
        container = self.containers("app")[index]
        for _ in range(2):
            try:
                self.docker("pause", container)
                return
            except RuntimeError as error:
                if "unable to freeze" not in str(error):
                    raise
        self.docker("pause", container)

    def thaw_replica(self, index):
        self.docker("unpause", self.containers("app")[index])

    def restart_database(self):
        self.compose("restart", "db")

    def lock_posts(self, seconds):
        """Hold every row of the posts table, and the gaps new ones would go
        into, for `seconds`: a long transaction in a session of its own. Back
        once the lock is held; the session is returned."""
        hold = (
            "import time; from django.db import connection; cursor = connection.cursor(); "
            "cursor.execute('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ'); "
            "cursor.execute('START TRANSACTION'); "
            "cursor.execute('SELECT id FROM board_post FOR UPDATE'); print('held', flush=True); "
        )
        # Closing ends the transaction: what a restart under way did already.
        code = hold + f"time.sleep({seconds}); connection.close()"
        session = subprocess.Popen(  # noqa: S603 (our own arguments)
            ["docker", *self.DJANGO_SHELL, code],  # noqa: S607 (docker from PATH, as for docker())
            stdout=subprocess.PIPE,
            text=True,
        )
        assert session.stdout.readline().strip() == "held", "the lock was not taken"
        return session

    def stop_database(self):
        self.compose("stop", "db")

    def start_database(self):
        self.compose("start", "db")
        self.wait_until_healthy(self.containers("db")[0])

    def database_users(self):
        """user name and password of each job's database user (db/users.sh),
        and root's, from the secrets the compose file names."""
        environment = self.config["services"]["db"]["environment"]

        def password(variable):
            secret = self.config["secrets"][Path(environment[variable]).name]
            return Path(secret["file"]).read_text().strip()

        users = {
            job: (environment[f"DB_{job}_USER"], password(f"DB_{job}_PASSWORD_FILE"))
            for job in ("APP", "MIGRATE", "BACKUP", "MONITOR")
        }
        return users | {"ROOT": ("root", password("MYSQL_ROOT_PASSWORD_FILE"))}

    def sql_as(self, user, password, statements, *, in_database=True):
        """Run SQL as a database user from the backup container, over the
        network as every service reaches MySQL, in the site's database or in
        none; returns (exit status, output). The password goes in on
        standard input, never on a command line."""
        database = self.config["services"]["db"]["environment"]["MYSQL_DATABASE"]
        result = subprocess.run(  # noqa: S603 (our own arguments)
            [  # noqa: S607 (docker from PATH, as for docker())
                "docker", "compose", "exec", "-T", "backup", "mysql",
                "--defaults-extra-file=/dev/stdin", "--host=db",
                *([f"--database={database}"] * in_database), "--batch", f"--execute={statements}",
            ],
            input=f'[client]\nuser={user}\npassword="{password}"\n',
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr

    def backup(self, *args):
        return self.compose("exec", "-T", "backup", "/entrypoint.sh", "backup", *args)

    def backup_shell(self, script):
        self.compose("exec", "-T", "backup", "sh", "-c", f"cd /backups && {script}")

    def restore(self, *args):
        """The project's restore.sh, from the project folder (the current one);
        --backups, which brings it here, is the confirmation it asks for, and
        --backup-key the backups' private key."""
        result = subprocess.run(  # noqa: S603 (our own arguments)
            ["sh", "restore.sh", "--yes", "--key", str(self.backup_key), *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        return result.returncode, result.stdout + result.stderr

    def destroy_database(self):
        """The database's container and volume removed, and a new one
        started: empty, as on a new machine."""
        volume = self.config["volumes"]["db-data"]["name"]
        self.compose("rm", "--stop", "--force", "db")
        self.docker("volume", "rm", volume)
        self.compose("up", "--detach", "--wait", "--no-deps", "db")

    def stored_posts(self):
        code = "import json; from board.models import Post; print(json.dumps([[str(v) for v in p] for p in Post.objects.order_by('id').values_list()]))"  # noqa: E501
        return json.loads(self.django(code))

    def crash_haproxy(self):
        """SIGKILL HAProxy's process from the host, as a crash would end it."""
        container = self.containers("haproxy")[0]
        pid = int(self.docker("inspect", "--format", "{{.State.Pid}}", container))
        if os.geteuid() == 0:
            os.kill(pid, signal.SIGKILL)
        else:
            subprocess.run(["sudo", "-n", "kill", "-KILL", str(pid)], check=True)  # noqa: S603, S607


# Checks only Compose can answer ----------------------------------------------


def check_migrations_ran_exactly_once(stack: ComposeStack):
    """The one-shot migrate container exited 0; no replica migrated; no migration twice."""
    (migrate,) = stack.containers("migrate")
    state = json.loads(stack.docker("inspect", "--format", "{{json .State}}", migrate))
    assert state["Status"] == "exited" and state["ExitCode"] == 0, f"migrate: {state}"
    applying = [line for line in stack.app_logs().splitlines() if "Applying " in line]
    assert applying == [], f"a replica migrated: {applying}"
    code = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('SELECT app, name FROM django_migrations "
        "GROUP BY app, name HAVING COUNT(*) > 1'); print(c.fetchall())"
    )
    assert stack.django(code).strip() == "()", "a migration was recorded twice"


def check_the_app_talks_to_the_database_over_tls(stack: ComposeStack):
    code = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute(\"SHOW SESSION STATUS LIKE 'Ssl_version'\"); print(c.fetchone()[1])"
    )
    version = stack.django(code).strip()
    assert version.startswith("TLSv1."), f"the app's database link is not encrypted: {version!r}"


def check_writes_leave_no_idle_connection_to_a_replica(stack: ComposeStack):
    """A write sent on an idle connection just as its replica closes it (a
    stop, a thaw after hanging) is reset, and may not be sent again: the web
    servers send writes on a connection of their own, closed after the
    answer. (Some web servers keep them by default: see the README.)"""
    port = int(stack.config["services"][stack.proxies[0]]["environment"]["BACKEND_PORT"])
    for proxy in stack.proxies:

        def idle(proxy=proxy):
            return stack.established_connections(proxy, port)

        # Connections left by earlier reads close within Gunicorn's keep-alive.
        wait_until(lambda: idle() == 0, f"{proxy}'s idle connections to the replicas", 10)
        for _ in range(5):
            # Django's answer, whatever it is (a redirect to HTTPS, a refused token).
            answer = fetch(stack, proxy, "/accounts/login/", method="POST", allow_redirects=False)
            assert answer.status_code < 500, f"{proxy}: {answer.status_code}"
        wait_until(lambda: idle() == 0, f"{proxy} kept a write's connection to a replica", 2)


def check_each_database_user_may_do_its_job_and_no_more(stack: ComposeStack):
    """db/users.sh: the replicas' user reads and writes rows but may not
    change the schema; the migrations' user may; the backup user reads and
    may not write; the monitoring user reads the server's status and not a
    row; root is refused over the network, even with its password.
    Whatever may not happen is tried on a table of the check's own, so that
    wrong rights cost no data."""
    users = stack.database_users()

    def run(job, statement, *, allowed):
        status, output = stack.sql_as(*users[job], statement)
        if allowed:
            assert status == 0, f"the {job.lower()} user may not {statement!r}: {output}"
        else:
            assert status != 0 and "ERROR 1142" in output, (
                f"the {job.lower()} user may {statement!r}: {output}"
            )

    # One left by a check that was cut short goes first.
    run("MIGRATE", "DROP TABLE IF EXISTS check_stack_scratch", allowed=True)
    run("MIGRATE", "CREATE TABLE check_stack_scratch (id INT)", allowed=True)
    try:
        for statement in (
            "SELECT COUNT(*) FROM board_post",
            "INSERT INTO check_stack_scratch VALUES (1)",
            "DELETE FROM check_stack_scratch",
        ):
            run("APP", statement, allowed=True)
        for statement in (
            "DROP TABLE check_stack_scratch",
            "ALTER TABLE check_stack_scratch ADD COLUMN added INT",
            "CREATE TABLE check_stack_scratch_more (id INT)",
        ):
            run("APP", statement, allowed=False)
        for statement in ("SELECT COUNT(*) FROM check_stack_scratch", "SHOW BINARY LOGS"):
            run("BACKUP", statement, allowed=True)
        for statement in (
            "INSERT INTO check_stack_scratch VALUES (2)",
            "DROP TABLE check_stack_scratch",
        ):
            run("BACKUP", statement, allowed=False)
    finally:
        run("MIGRATE", "DROP TABLE IF EXISTS check_stack_scratch", allowed=True)
    status, output = stack.sql_as(*users["MONITOR"], "SHOW GLOBAL STATUS", in_database=False)
    assert status == 0 and "Threads_connected" in output, f"the monitoring user: {output}"
    status, output = stack.sql_as(*users["MONITOR"], "SELECT COUNT(*) FROM board_post")
    assert status != 0 and "ERROR 1044" in output, f"the monitoring user reads rows: {output}"
    status, output = stack.sql_as(*users["ROOT"], "SELECT 1")
    assert status != 0 and re.search("ERROR 1045|ERROR 1130", output), f"root over TCP: {output}"
    return {"users": ", ".join(user for user, _ in users.values())}


COMPOSE_ONLY = [
    check_each_database_user_may_do_its_job_and_no_more,
    check_migrations_ran_exactly_once,
    check_the_app_talks_to_the_database_over_tls,
    check_writes_leave_no_idle_connection_to_a_replica,
]
