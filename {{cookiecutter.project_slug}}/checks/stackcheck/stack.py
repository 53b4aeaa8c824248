"""What the checks ask of a stack, declared once.

Every check takes a `stack` and asks it only what `Stack` lists, so any
driver that answers it runs the same checks: compose.py's ComposeStack does
under Compose. The checks that only Compose can answer (compose.py) take a
ComposeStack itself.
"""

import subprocess
from typing import Protocol, runtime_checkable


# Runtime-checkable: the template's tests hold ComposeStack to it.
@runtime_checkable
class Stack(Protocol):
    # What the stack is.
    proxies: list[str]
    """The web servers HAProxy balances over, by service name."""
    domain: str
    """The site's name, as HAProxy's health checks and the app's ALLOWED_HOSTS have it."""
    tls: bool
    """Whether HAProxy serves HTTPS (then plain HTTP redirects to it)."""
    stats_password: str
    time_zone: str
    """The site's time zone, in which a restore reads its moment."""
    verify: bool | str
    """What `requests` verifies the site's certificate with."""
    proxy_protocol_ports: set[int]
    """The site's ports that believe a PROXY protocol header from the checks,
    so that each client they play has an address of its own; empty if none."""
    client_network: str | None
    """The addresses those clients may claim, or None."""

    def url(self, name: str = "haproxy", path: str = "/") -> str:
        """`path` on a published port: HAProxy's ("haproxy", "haproxy-http"),
        the stats page's ("stats"), or a web server's (its name)."""
        ...

    # What it logged and stored.
    def app_logs(self) -> str: ...

    def server_logs(self, name: str) -> str:
        """Everything HAProxy or a web server (by name) logged so far."""
        ...

    def established_connections(self, service: str, port: int) -> int:
        """How many TCP connections a service has open to `port`."""
        ...

    def django(self, code: str) -> str:
        """What Python `code` printed, run in an app replica with Django set up."""
        ...

    def stored_titles(self) -> list[str]: ...

    # Failures, for the failover checks.
    @property
    def replicas(self) -> list[str]: ...

    def instances(self, name: str) -> int:
        """How many instances of the web server `name` run."""
        ...

    def kill_proxy(self, name: str) -> None:
        """SIGKILL to one instance of the web server `name`."""
        ...

    def start_proxy(self, name: str) -> None:
        """That instance back, once it is healthy again."""
        ...

    def stop_replica(self, index: int) -> None: ...

    def start_replica(self, index: int) -> None:
        """Back once the replica is healthy again."""
        ...

    def kill_replica(self, index: int) -> None: ...

    def freeze_replica(self, index: int) -> None:
        """Every process of the replica stopped, its connections left open."""
        ...

    def thaw_replica(self, index: int) -> None: ...

    def restart_database(self) -> None: ...

    def stop_database(self) -> None: ...

    def start_database(self) -> None:
        """Back once the database is healthy again."""
        ...

    def lock_posts(self, seconds: float) -> subprocess.Popen:
        """Every row of the posts table held for `seconds` by a transaction of
        its own; back once the lock is held, with that session."""
        ...

    def crash_haproxy(self) -> None:
        """HAProxy's process killed as a crash would end it."""
        ...

    # Backups: these destroy the database.
    def backup(self, *args: str) -> str:
        """The backup service's `backup` command (now, list...): what it printed."""
        ...

    def backup_shell(self, script: str) -> None:
        """A shell script run in the backups folder."""
        ...

    def restore(self, *args: str) -> tuple[int, str]:
        """The project's restore command: its exit status and output."""
        ...

    def destroy_database(self) -> None:
        """The database lost, as with its volume, and a new empty one started."""
        ...

    def stored_posts(self) -> list[list[str]]:
        """Every post's every column, in order."""
        ...
