"""A throwaway MySQL server for the app tier, in the mysql image.

The image is the one the baked compose file names, for the MySQL line the
stand-ins run (the official one in the baked project's own CI): a real MySQL,
so caching_sha2_password, strict mode and MySQL's own limits are what the
app's suite meets. Its port is published on 127.0.0.1 only; its data lives
in memory and goes with the container.
"""

import time

from .processes import free_port
from .standins import ANSWERS

IMAGE = f"mysql:{ANSWERS['mysql_version']}"
# A test server: speed over durability.
OPTIONS = ["--innodb-flush-log-at-trx-commit=0", "--skip-log-bin"]


class MySQL:
    """Started by `with`; `create_database` gives an application its own."""

    def __init__(self, engine, root_password):
        self.engine = engine
        self.root_password = root_password
        self.port = free_port()
        # A network of its own: the engine has no default bridge to publish from.
        self.network = f"django-ha-mysql-{self.port}"
        self.container = None

    def __enter__(self):
        self.engine.docker("network", "create", self.network)
        try:
            started = self.engine.docker(
                "run", "--detach", "--network", self.network,
                "--publish", f"127.0.0.1:{self.port}:3306",
                "--tmpfs", "/var/lib/mysql:uid=999,gid=999",
                "--env", f"MYSQL_ROOT_PASSWORD={self.root_password}",
                IMAGE, "mysqld", *OPTIONS,
            )  # fmt: skip
            self.container = started.stdout.strip()
            self.wait_until_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        if self.container:
            self.engine.docker("rm", "--force", "--volumes", self.container)
        self.engine.docker("network", "rm", self.network)

    def client(self, statements, check=True):
        """Run SQL as root in the container, over TCP as a client would."""
        return self.engine.docker(
            "exec", "--env", f"MYSQL_PWD={self.root_password}", self.container,
            "mysql", "--protocol=TCP", "--host=127.0.0.1", "--user=root",
            "--batch", "--skip-column-names", "--execute", statements, check=check,
        )  # fmt: skip

    def wait_until_ready(self, timeout=120):
        # Its first start initialises the data folder on a server without
        # networking: over TCP, only the real one answers.
        deadline = time.monotonic() + timeout
        while self.client("SELECT 1", check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = self.engine.docker("logs", "--tail", "30", self.container, check=False)
                raise AssertionError(f"{IMAGE} did not start:\n{logs.stdout}{logs.stderr}")
            time.sleep(1)

    def create_database(self, name, user, password):
        """A database and a user that owns it, plus test_<name>: Django's
        test runner creates and drops that one itself (and the user may do
        nothing anywhere else)."""
        test_pattern = "test\\_" + name.replace("_", "\\_")
        self.client(
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4;"
            f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}';"
            f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'%';"
            f"GRANT ALL PRIVILEGES ON `{test_pattern}`.* TO '{user}'@'%';"
        )
