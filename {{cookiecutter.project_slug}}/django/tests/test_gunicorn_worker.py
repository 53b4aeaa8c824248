"""{{ cookiecutter.project_slug }}/gunicorn_worker.py: a stopping replica drops no request.

A real Gunicorn, with this project's config, serves a stream of requests on
fresh connections while it receives SIGTERM. Every request must either be
answered, or have its connection refused (which a web server retries on
another replica). A request sent and then cut off, which no web server may
retry if it is a POST, must never happen.
"""

import http.client
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from .processes import DJANGO_DIR, child_env

CLIENTS = 8


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_request(port):
    """'answered', 'refused' (safe to send elsewhere) or 'lost' (sent, then cut off)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.connect()
    except ConnectionRefusedError:
        return "refused"
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
        return "answered" if status == 200 else "lost"
    except (OSError, http.client.HTTPException):
        return "lost"
    finally:
        connection.close()


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    env = child_env(
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_DEBUG="0",
        DB_HOST=None,
        DJANGO_SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
    )
    server = subprocess.Popen(  # noqa: S603 (our own command, no shell)
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=DJANGO_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while one_request(port) != "answered":
        assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
        time.sleep(0.1)
    yield server, port
    server.kill()
    server.wait()


def test_a_graceful_stop_answers_or_refuses_every_request_and_loses_none(gunicorn):
    server, port = gunicorn
    outcomes = []
    stopping = threading.Event()

    def client():
        while not stopping.is_set():
            outcomes.append(one_request(port))

    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    time.sleep(1)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    time.sleep(0.5)  # requests after the stop: all refused
    stopping.set()
    for thread in clients:
        thread.join()

    assert outcomes.count("lost") == 0, f"{outcomes.count('lost')} of {len(outcomes)} lost"
    assert outcomes.count("answered") > 0 and outcomes.count("refused") > 0
