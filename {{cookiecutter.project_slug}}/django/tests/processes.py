"""Run this project's commands in a child process, as the entrypoint would.

Settings are read once, when the process starts; a child process is the only
honest way to test how an environment turns into settings.
"""

import http.client
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DJANGO_DIR = Path(__file__).resolve().parent.parent


def child_env(**changes):
    """This process's environment with `changes` applied (None removes a variable)."""
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(command, env, timeout=120):
    return subprocess.run(  # noqa: S603 (our own commands, no shell)
        command,
        cwd=DJANGO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage(*args, env):
    return run([sys.executable, "manage.py", *args], env)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_request(port, path="/healthz"):
    """'answered', 'refused' (safe to send elsewhere) or 'lost' (sent, then cut off)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.connect()
    except ConnectionRefusedError:
        return "refused"
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
        return "answered" if status == 200 else "lost"
    except (OSError, http.client.HTTPException):
        return "lost"
    finally:
        connection.close()


@dataclass
class Gunicorn:
    """A real Gunicorn with this project's config, two workers, on SQLite."""

    process: subprocess.Popen
    port: int
    metrics_port: int

    @classmethod
    def start(cls, sqlite_path, log=subprocess.DEVNULL, **settings):
        """log: where its output goes; settings: environment beyond these."""
        port, metrics_port = free_port(), free_port()
        env = child_env(
            DJANGO_SECRET_KEY="x" * 50,
            DJANGO_DEBUG="0",
            DB_HOST=None,
            DJANGO_SQLITE_PATH=str(sqlite_path),
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_METRICS_BIND=f"127.0.0.1:{metrics_port}",
            GUNICORN_WORKERS="2",
            **settings,
        )
        migrated = manage("migrate", "--noinput", env=env)
        assert migrated.returncode == 0, migrated.stderr
        process = subprocess.Popen(  # noqa: S603 (our own command, no shell)
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=DJANGO_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while one_request(port) != "answered":
            assert time.monotonic() < deadline and process.poll() is None, "gunicorn did not start"
            time.sleep(0.1)
        return cls(process, port, metrics_port)

    def stop(self):
        """As Docker stops it: SIGTERM, and its workers finish."""
        self.process.terminate()
        self.process.wait(timeout=30)
