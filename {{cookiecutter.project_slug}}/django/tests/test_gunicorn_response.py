"""{{ cookiecutter.project_slug }}/gunicorn_response.py against the installed Gunicorn.

A replica that dies between two writes must not leave a client with headers
and half a body, so every answer of one body part leaves in one write.
"""

import runpy
from types import SimpleNamespace

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import wsgi

from {{ cookiecutter.project_slug }}.gunicorn_response import OneWriteResponse

from .processes import DJANGO_DIR

# Gunicorn's own class: the one OneWriteResponse was made from, whatever has
# replaced wsgi.Response since.
GUNICORNS = OneWriteResponse.__base__
BODY = b"<!doctype html><title>board</title>"
SIZED = [("Content-Length", str(len(BODY)))]


class RecordingSocket:
    """Keeps every write apart, as the proxy on the other end would see them."""

    def __init__(self):
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch):
    """One Date header for every answer, so that two answers can be compared byte for byte."""
    monkeypatch.setattr(util, "http_date", lambda *_: "Wed, 25 Nov 2026 00:00:00 GMT")


def answer(method, headers, body_parts, response_class=OneWriteResponse):
    """Run one answer through a Gunicorn response class as a worker does."""
    request = SimpleNamespace(method=method, version=(1, 1), should_close=lambda: False)
    sock = RecordingSocket()
    response = response_class(request, sock, Config())
    response.start_response("200 OK", headers)
    for part in body_parts:
        response.write(part)
    response.close()
    return sock.writes


def test_headers_and_body_leave_in_one_write():
    writes = answer("GET", SIZED, [BODY])
    assert len(writes) == 1
    head, body = writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: %d" % len(BODY) in head
    assert body == BODY


def test_a_streamed_answer_starts_with_its_headers_and_first_chunk_together():
    writes = answer("GET", [], [b"first", b"second"])
    assert b"Transfer-Encoding: chunked" in writes[0]
    assert writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")
    assert writes[1:] == [b"6\r\nsecond\r\n", b"0\r\n\r\n"]


def test_a_head_answer_sends_its_headers_and_no_body():
    writes = answer("HEAD", SIZED, [BODY])
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("method", "headers", "body_parts"),
    [("GET", SIZED, [BODY]), ("GET", [], [b"first", b"second"]), ("HEAD", SIZED, [BODY])],
    ids=["sized", "streamed", "head"],
)
def test_the_bytes_on_the_wire_are_gunicorns_own(method, headers, body_parts):
    ours = answer(method, headers, body_parts)
    gunicorns = answer(method, headers, body_parts, response_class=GUNICORNS)
    assert b"".join(ours) == b"".join(gunicorns)


def test_the_comparison_is_with_gunicorns_own_class():
    assert GUNICORNS is not OneWriteResponse
    assert (GUNICORNS.__module__, GUNICORNS.__name__) == ("gunicorn.http.wsgi", "Response")


@pytest.fixture
def gunicorn_config():
    """gunicorn.conf.py as Gunicorn loads it; wsgi.Response is put back afterwards."""
    original = wsgi.Response
    yield runpy.run_path(str(DJANGO_DIR / "gunicorn.conf.py"))
    wsgi.Response = original


def test_loading_the_gunicorn_config_replaces_nothing(gunicorn_config):
    assert wsgi.Response is GUNICORNS


def test_the_server_hook_installs_it_before_any_worker_starts(gunicorn_config):
    gunicorn_config["on_starting"](server=None)
    assert wsgi.Response is OneWriteResponse
