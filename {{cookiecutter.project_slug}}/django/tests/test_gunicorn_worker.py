"""{{ cookiecutter.project_slug }}/gunicorn_worker.py: a stopping replica drops no request.

A real Gunicorn, with this project's config, serves a stream of requests on
fresh connections while it receives SIGTERM. Every request must either be
answered, or have its connection refused (which a web server retries on
another replica). A request sent and then cut off, which no web server may
retry if it is a POST, must never happen. The moment where that could
happen, between a worker's last look at its queue and its closing the
socket, is too short to hit on demand, so the tests also hold the workers
still and check that no connection gets in meanwhile.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.gunicorn_worker import refuse_new_connections

from .processes import DJANGO_DIR, child_env

CLIENTS = 8
# The kernel's socket filter and /proc: elsewhere a stop has the gap these close.
LINUX_ONLY = pytest.mark.skipif(sys.platform != "linux", reason="Linux only")


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


def connects(port, timeout=0.5):
    """Whether a handshake with `port` completes within `timeout`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
    except TimeoutError:
        return False
    return True


@LINUX_ONLY
def test_a_socket_that_refuses_new_connections_still_hands_over_the_queued_ones():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1) as queued:
            refuse_new_connections(listener)
            assert not connects(port), "a new connection still got in"
            accepted, _ = listener.accept()
            with accepted:
                queued.sendall(b"GET")
                assert accepted.recv(3) == b"GET"


@LINUX_ONLY
def test_a_stopping_replica_lets_no_connection_in_while_its_workers_finish(gunicorn):
    """Workers held still (as by a busy CPU) between SIGTERM and closing their
    sockets: a connection that got in then would be reset when they close."""
    server, port = gunicorn
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text()
    workers = [int(pid) for pid in children.split()]
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while connects(port):
            assert time.monotonic() < deadline, "the stopping replica still takes connections"
            time.sleep(0.1)  # a few tries, far from filling the queue (which would drop them too)
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    server.wait(timeout=30)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
