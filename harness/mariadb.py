"""A throwaway MariaDB server: the benchmark's native stand-in for MySQL.

MariaDB speaks MySQL's protocol; the host's Debian has no MySQL server (the
tiers that run the images run a real one, mysql.py).
"""

import os
import subprocess
from pathlib import Path

from .commands import run
from .processes import Server, find_binary, free_port


class MariaDB(Server):
    """A throwaway MariaDB server in `base_dir`, listening on 127.0.0.1 only.

    The data directory is created on the first start and kept by restarts.
    root has no password (whoever runs the tests can administer it, root or
    not) and reaches it through the socket in the data directory;
    applications get their own user from `create_database`.
    """

    def __init__(self, base_dir, *, port=None):
        base_dir = Path(base_dir)
        self.data_dir = base_dir / "data"
        self.socket = self.data_dir / "mysqld.sock"
        self.server_binary = find_binary("mariadbd", "mysqld", package="mariadb-server")
        self.client_binary = find_binary("mariadb", "mysql", package="mariadb-client")
        self.install_binary = find_binary(
            "mariadb-install-db", "mysql_install_db", package="mariadb-server"
        )
        port = port or free_port()
        # mariadbd refuses to run as root unless told to run as that user.
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        command = [
            self.server_binary,
            "--no-defaults",
            *as_root,
            f"--datadir={self.data_dir}",
            f"--socket={self.socket}",
            f"--pid-file={self.data_dir / 'mysqld.pid'}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            # A test server: speed over durability.
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=64M",
            # Binary logs, as MySQL keeps by default: the backups replay them.
            "--log-bin=binlog",
            "--server-id=1",
        ]
        super().__init__(
            "mariadb", command, port=port, log_path=base_dir / "mariadb.log", ready_timeout=60
        )
        self.as_root = as_root

    def start(self):
        if not (self.data_dir / "mysql").is_dir():
            self.initialise()
        return super().start()

    def restart(self):
        self.stop()
        return self.start()

    def initialise(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run(
            [
                self.install_binary,
                "--no-defaults",
                *self.as_root,
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
        )

    def root_client(self, *options):
        """The command line of a client logged in as root through the socket."""
        return [
            self.client_binary,
            "--no-defaults",
            f"--socket={self.socket}",
            "--user=root",
            *options,
        ]

    def client(self, statements, *options):
        """The command line that runs SQL as root through the socket."""
        return self.root_client("--batch", "--skip-column-names", *options, "--execute", statements)

    def sql(self, statements):
        """Run SQL as root through the socket; returns the output."""
        return run(self.client(statements)).stdout

    def lock_table(self, table, seconds):
        """Hold a write lock on `table` for `seconds` (as a long transaction
        would), in a session of its own; back once the lock is held. The
        session is returned, to wait for."""
        statements = f"LOCK TABLES {table} WRITE; SELECT 'held'; DO SLEEP({seconds}); UNLOCK TABLES"
        # --unbuffered: 'held' is printed as soon as its statement ran. A
        # restart may end the session (a stack check restarts under it): its
        # client's complaint is no news, and 'held' proves the lock was taken.
        session = subprocess.Popen(  # noqa: S603 (our own arguments)
            self.client(statements, "--unbuffered"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert session.stdout.readline().strip() == "held", "the lock was not taken"
        return session

    def set_root_password(self, password):
        """root over TCP from 127.0.0.1 with `password`, as the mysql image sets
        root@% from MYSQL_ROOT_PASSWORD (the backup service logs in so)."""
        self.sql(
            f"CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{password}';"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        )

    def create_database(self, name, user, password):
        """A database and a user that owns it, plus test_<name>.

        Django's test runner creates and drops test_<name> itself, so the user
        may do anything there too (and nothing anywhere else).
        """
        test_pattern = "test\\_" + name.replace("_", "\\_")
        self.sql(
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4;"
            f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';"
            f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'127.0.0.1';"
            f"GRANT ALL PRIVILEGES ON `{test_pattern}`.* TO '{user}'@'127.0.0.1';"
        )
