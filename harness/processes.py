"""Start a real server outside Docker (the app suite's runserver), and find free ports.

Every server runs in its own session, so it and all its children form one
process group that can be signalled, and always killed, as a whole: a failing
test never leaves a process or a bound port behind.

Server binaries are looked up by name. A missing one raises MissingBinary and
fails the test: in CI a missing server must never turn into a silent skip.
"""

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# Debian installs daemons in sbin, which is not on every user's PATH.
EXTRA_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


# A log line that says something went wrong: an error or a warning, a
# traceback, or a 5xx answer in an access log (HAProxy's, the web servers').
TROUBLE = re.compile(r'error|warn|traceback|" 5\d\d | 5\d\d \d+ ', re.IGNORECASE)


def trouble(text, lines=20):
    """The last `lines` lines of a log that say something went wrong: a
    failure under load happens well before a log's last lines."""
    return [line for line in text.splitlines() if TROUBLE.search(line)][-lines:]


class MissingBinary(RuntimeError):
    pass


class ServerError(RuntimeError):
    pass


def find_binary(*names, package):
    """The path of the first of `names` found on PATH or in the sbin folders."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_BIN_DIRS])
    for name in names:
        path = shutil.which(name, path=search_path)
        if path:
            return path
    raise MissingBinary(
        f"none of {', '.join(names)} is installed; install the {package} package "
        f"(apt-get install {package})"
    )


# Ports handed out in this run, so that two services never get the same one.
_HANDED_OUT = set()


def free_port(host="127.0.0.1", count=1):
    """The first of `count` TCP ports in a row that nothing listens on right
    now, below the kernel's ephemeral range (32768 and up), whose ports any
    outgoing connection on the machine may take at any moment."""
    for first in random.sample(range(20000, 32768 - count), 500):
        ports = range(first, first + count)
        if _HANDED_OUT.intersection(ports) or not all(_bindable(host, port) for port in ports):
            continue
        _HANDED_OUT.update(ports)
        return first
    raise ServerError("no free port below 32768")


def _bindable(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    """One server process (and its children), logging to a file.

    `start()` returns once host:port accepts TCP connections; `kill()` ends
    the whole group at once. Used as a context manager, the group is killed
    on the way out whatever happened.
    """

    def __init__(
        self,
        name,
        command,
        *,
        port,
        log_path,
        cwd=None,
        env=None,
        host="127.0.0.1",
        ready_timeout=30,
    ):
        self.name = name
        self.command = [str(part) for part in command]
        self.host = host
        self.port = port
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = env
        self.ready_timeout = ready_timeout
        self.process = None
        self.group_alive = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.kill()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self, wait=True):
        """Start the server; with `wait`, return once it accepts connections."""
        if self.running:
            raise ServerError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.group_alive = True
        if wait:
            self.wait_until_ready()
        return self

    def wait_until_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while not port_accepts(self.host, self.port):
            if self.process.poll() is not None:
                self.kill()
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} before "
                    f"{self.host}:{self.port} accepted connections\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"{self.name} did not accept connections on {self.host}:{self.port} "
                    f"within {self.ready_timeout}s\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def kill(self):
        """SIGKILL the whole process group, including orphaned children."""
        if self.process is None:
            return
        # Once per start: a second killpg could hit a group that reused the id.
        if self.group_alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.group_alive = False
        self.process.wait()

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines=40):
        """The log's last lines, and before them its last lines of trouble."""
        text = self.log_text()
        troubles = "\n".join(trouble(text))
        tail = "\n".join(text.splitlines()[-lines:])
        return (
            f"--- lines of {self.log_path} that say something went wrong ---\n{troubles}\n"
            f"--- last lines of {self.log_path} ---\n{tail}"
        )
