"""Limits, slow clients and error pages."""

import html
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import urlsplit

from .clients import as_haproxy_would, connect, fetch, request_with_marker, tls_context, unique
from .stack import Stack

# The same limits at every tier (docs/limits.md, "Limits, timeouts and overload"):
# HAProxy, the only public entrance, keeps the tightest; each web server
# enforces the same ones on its own port.

BODY_LIMIT = 10 * 1024 * 1024
LINE_LIMIT = 8 * 1024
HEADER_FIELDS = 100
# HAProxy's `timeout http-request`, the web servers' header timeouts.
SLOW_CLIENT_TIMEOUT = 10
# The site's error pages, which the web servers and HAProxy answer with.
ERROR_PAGES = Path(__file__).resolve().parents[2] / "django" / "static" / "errors"
# Where a 5xx page shows the request's ID: the web servers' SSI line, which
# each tier fills in ("(none)" for a request that came with none).
REQUEST_ID_SLOT = '<!--#echo var="HTTP_X_REQUEST_ID" -->'


def plain_error_page(status, body, request_id="(none)"):
    """Whether `body` is the site's own plain page for `status`, naming
    `request_id` (HTML-escaped) where it names one."""
    assert ERROR_PAGES.is_dir(), f"no error pages at {ERROR_PAGES}"
    page = ERROR_PAGES / f"{status}.html"
    if not page.exists():
        return False
    expected = page.read_text().replace(REQUEST_ID_SLOT, html.escape(request_id))
    return body.strip() == expected.strip()


def assert_plain_error_page(response, where, request_id="(none)"):
    """The site's own page for the status answered, from whichever tier
    answered: the same everywhere, and no server named in it."""
    status, body = response
    if plain_error_page(status, body, request_id):
        return
    # HAProxy answers a request head it cannot take (too long, too many
    # fields) with its built-in page, as plain, before any of its rules runs.
    built_in = status in (400, 431) and body.startswith(f"<html><body><h1>{status} ")
    assert built_in, f"{where}: not the site's {status} page: {body[:300]!r}"


def open_socket(stack: Stack, name, address=None):
    """A connection to a published port from a client at `address` (a fresh
    one if None), through TLS where the port speaks it."""
    url = urlsplit(stack.url(name))
    connection = connect(stack, url.hostname, url.port, address)
    if url.scheme == "https":
        return tls_context(stack).wrap_socket(connection, server_hostname=url.hostname)
    return connection


def read_until_closed(connection):
    chunks = []
    while True:
        try:
            chunk = connection.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def send_head(stack: Stack, name, method, target, headers):
    """Send a request head exactly as given (a body announced is never sent);
    the status and body of the answer."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {urlsplit(stack.url(name)).netloc}"]
    lines += [f"{field}: {value}" for field, value in {**headers, "Connection": "close"}.items()]
    with open_socket(stack, name) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        # The answer as its length says: a server may keep the connection
        # open a while to drain a body it refused.
        answer = HTTPResponse(connection)
        answer.begin()
        return answer.status, answer.read().decode(errors="replace")


def past_the_limits(marker):
    """(what, method, target, headers, the statuses it may get), past each limit."""
    target = f"/?q={marker}"
    return [
        ("a body past the limit", "POST", target, {"Content-Length": str(BODY_LIMIT + 1)}, {413}),
        ("a long request line", "GET", f"{target}&pad={'a' * LINE_LIMIT}", {}, {400, 414, 431}),
        ("a long header", "GET", target, {"X-Pad": "a" * LINE_LIMIT}, {400, 431}),
        (
            "too many headers",
            "GET",
            target,
            {f"X-Pad-{i}": "a" for i in range(HEADER_FIELDS + 1)},
            {400, 431},
        ),
    ]


def check_oversized_requests_are_refused_before_django(stack: Stack):
    """Past any limit, the first tier answers its 4xx with a plain page.
    Straight to a web server, too many headers may be the app's to refuse
    (not every web server limits their number): that one goes through
    HAProxy only."""
    marker = unique("oversized")
    for name in ["haproxy", *stack.proxies]:
        for what, method, target, headers, expected in past_the_limits(marker):
            if name != "haproxy" and what == "too many headers":
                continue
            try:
                answer = send_head(stack, name, method, target, headers)
            except OSError as error:
                raise AssertionError(f"{what} on {name}'s port: {error!r}") from None
            assert answer[0] in expected, f"{what} on {name}'s port: {answer[0]}"
            assert_plain_error_page(answer, f"{what} on {name}'s port")
    # The app's access log is live (a page request shows up); no refused one is in it.
    request_with_marker(stack, "haproxy", unique("after-oversized"), {})
    assert marker not in stack.app_logs(), "an oversized request reached Django"


def check_a_request_at_the_limits_is_served(stack: Stack):
    """The limits refuse only what is past them: a long address and many
    headers, within the limits, are served through HAProxy."""
    # With Host and Connection, exactly HAProxy's 100 header fields.
    headers = {f"X-Pad-{i}": "a" for i in range(HEADER_FIELDS - 3)}
    headers["X-Long"] = "a" * (LINE_LIMIT // 4)
    status, _ = send_head(stack, "haproxy", "GET", f"/?pad={'a' * 2000}", headers)
    assert status == 200, f"a request within the limits: {status}"


def check_slow_clients_are_cut_off(stack: Stack):
    """A client that never finishes its request head holds a connection for
    the header timeout at most, on every published port."""
    names = ["haproxy", *stack.proxies]

    def trickle(name):
        with open_socket(stack, name) as connection:
            connection.settimeout(SLOW_CLIENT_TIMEOUT + 10)
            connection.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            started = time.monotonic()
            read_until_closed(connection)
            return time.monotonic() - started

    with ThreadPoolExecutor(len(names)) as pool:
        took = dict(zip(names, pool.map(trickle, names), strict=True))
    for name, seconds in took.items():
        assert seconds <= SLOW_CLIENT_TIMEOUT + 3, f"{name} held a slow client {seconds:.1f} s"
    return {f"{name} cut off after": f"{seconds:.1f} s" for name, seconds in took.items()}


def check_error_pages_are_plain_and_name_no_server(stack: Stack):
    for name in ["haproxy", *stack.proxies]:
        response = fetch(stack, name, "/static/no-such-file.css", headers=as_haproxy_would(stack))
        answer = response.status_code, response.text
        assert_plain_error_page(answer, f"a missing file through {name}")


def check_a_server_error_page_names_the_request_for_the_user_to_quote(stack: Stack):
    """Each web server fills in the ID the request came with, HTML-escaped
    (a client on its own port may send any); through HAProxy, the page
    names the ID the answer's header gives."""
    forged = '<b class="x">&'
    for name in stack.proxies:
        headers = {**as_haproxy_would(stack), "X-Request-ID": forged}
        response = fetch(stack, name, "/static/errors/502.html", headers=headers)
        assert response.status_code == 200, (name, response.status_code)
        assert plain_error_page(502, response.text, forged), (name, response.text)
    response = fetch(stack, path="/static/errors/503.html", headers={"X-Request-ID": forged})
    request_id = response.headers["X-Request-ID"]
    assert request_id != forged and plain_error_page(503, response.text, request_id), response.text
    return {"request ID": request_id}
