"""Check a running stack from the outside, as its users and its failures see it.

    python checks/check_stack.py              # the request flow, through every published port
    python checks/check_stack.py --failover   # and failover under load (kills containers!)
    python checks/check_stack.py --backups    # and backups restored (destroys the database!)
    python checks/check_stack.py --abuse      # and hostile clients, one at a time

Run it from the project folder against a stack that `docker compose up --wait`
brought up; it finds the published ports through Compose. It signs up users
and writes posts, so point it at a test deployment, never at production. It
plays many clients, each from an address of its own, as HAProxy counts them:
for --failover and --abuse, start the stack with checks/compose.yml (see
"Clients" below). The failover scenarios kill a web server, app replicas and HAProxy, freeze a
replica, hold a POST up with a table lock, restart every replica in turn,
restart and stop the database, with a steady load of GETs and POSTs
running, then overload one replica with up to 1,024 clients at once, and
print what each cost. Killing HAProxy as a crash would (not `docker stop`,
which would switch its restart policy off) needs root or sudo on a Linux
host.

The checks take any `stack` that answers the few questions the Compose driver
at the bottom answers, so other drivers can run the same checks elsewhere.
"""

import argparse
import asyncio
import contextlib
import csv
import datetime
import html
import io
import ipaddress
import itertools
import json
import math
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

PASSWORD = "correct-horse-battery-staple-42"
POST_PATH = re.compile(r"^/posts/(\d+)/$")
TIMEOUT = 10


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(condition, what, timeout, interval=0.05):
    """Seconds until condition() is true; TimeoutError naming `what` otherwise."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started


# Clients, each from an address of its own --------------------------------------
# HAProxy limits what one client address may do (README.md, "Limits per
# client"), so the checks play many clients, as a site has: each Browser, each
# client of a load and each attacker comes from an address of its own. A
# stack names the network its clients' addresses come from (`client_network`;
# None when it has only this machine's own, which every client then shares)
# and where HAProxy must be told it (`proxy_protocol_ports`). Natively a
# client binds a loopback address of its own. Under Compose every connection
# reaches HAProxy from Docker's gateway, one address; with checks/compose.yml
# HAProxy believes that gateway's PROXY protocol header about whom it speaks
# for, and the checks send one on every connection to the site's ports.

PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# Where the next address of each network is taken, shared by every check.
_addresses = {}
_addresses_lock = threading.Lock()


def new_client(stack):
    """A fresh client address, never given out before in this run; None when
    the stack has only this machine's own. Each run starts at a random place
    in the network, so that a rerun minutes later meets none of its counts."""
    if not stack.client_network:
        return None
    network = ipaddress.ip_network(stack.client_network)
    with _addresses_lock:
        # Not for secrecy: only to spread runs over the network.
        index = _addresses.get(network, random.randrange(network.num_addresses // 2))  # noqa: S311
        _addresses[network] = index + 1
    return str(network[index + 1])


def proxy_header(address, connection):
    """A PROXY protocol v2 header saying that `connection` comes from `address`."""
    source, destination = (
        ipaddress.ip_address(address),
        ipaddress.ip_address(connection.getpeername()[0]),
    )
    family = {4: 0x11, 6: 0x21}[source.version]  # TCP over IPv4 or IPv6
    ports = struct.pack("!HH", connection.getsockname()[1], connection.getpeername()[1])
    addresses = source.packed + destination.packed + ports
    return PROXY_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(addresses)) + addresses


def connect(stack, host, port, address=None, timeout=TIMEOUT):
    """A TCP connection to host:port that HAProxy takes for one from `address`
    (a fresh client's if None)."""
    address = address or new_client(stack)
    if stack.proxy_protocol_ports:
        connection = socket.create_connection((host, port), timeout)
        if port in stack.proxy_protocol_ports:
            connection.sendall(proxy_header(address, connection))
        return connection
    source = (address, 0) if address else None
    return socket.create_connection((host, port), timeout, source_address=source)


def client_adapter(stack, address):
    """A requests adapter whose every connection comes from `address`."""

    def new_conn(connection):
        try:
            return connect(stack, connection.host, connection.port, address, connection.timeout)
        except TimeoutError as error:
            raise ConnectTimeoutError(connection, f"timed out: {error}") from error
        except OSError as error:
            raise NewConnectionError(connection, f"failed to connect: {error}") from error

    plain = type("ClientConnection", (HTTPConnection,), {"_new_conn": new_conn})
    tls = type("ClientTLSConnection", (HTTPSConnection,), {"_new_conn": new_conn})
    adapter = HTTPAdapter()
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": type("ClientPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
        "https": type("ClientTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }
    return adapter


class Client:
    """A requests session from one client address; `move()` goes on from a fresh one."""

    def __init__(self, stack, address=None):
        self.stack = stack
        self.session = requests.Session()
        self.move_to(address or new_client(stack))

    def move(self):
        self.move_to(new_client(self.stack))

    def move_to(self, address):
        self.address = address
        adapter = client_adapter(self.stack, address)
        for prefix in ("http://", "https://"):
            self.session.adapters[prefix].close()
            self.session.mount(prefix, adapter)

    def request(self, method, url, **options):
        # verify on each request (a session's own would lose to REQUESTS_CA_BUNDLE).
        return self.session.request(method, url, verify=self.stack.verify, **options)

    def close(self):
        self.session.close()


class Browser(Client):
    """A client that keeps cookies and sends the CSRF token like a browser."""

    def __init__(self, stack, address=None):
        super().__init__(stack, address)
        self.base_url = stack.url().rstrip("/")  # also the Origin a browser sends

    def get(self, path, **options):
        return self.request("GET", self.base_url + path, timeout=TIMEOUT, **options)

    def post(self, path, **options):
        return self.request("POST", self.base_url + path, timeout=TIMEOUT, **options)

    def submit(self, path, fields):
        """GET the form (for the CSRF cookie), then POST it; the answer is not followed."""
        self.get(path).raise_for_status()
        return self.send(path, fields)

    def send(self, path, fields):
        """POST a form whose page was fetched before."""
        return self.post(
            path,
            data={"csrfmiddlewaretoken": self.session.cookies["csrftoken"], **fields},
            headers={"Origin": self.base_url, "Referer": self.base_url + path},
            allow_redirects=False,
        )

    def sign_up(self, username):
        fields = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
        return self.submit("/accounts/signup/", fields)

    def log_in(self, username):
        return self.submit("/accounts/login/", {"username": username, "password": PASSWORD})

    def create_post(self, title, content=None):
        """The new post's path if the app said it was saved, else None."""
        return saved_post(self.submit_post(title, content))

    def submit_post(self, title, content=None):
        content = f"Body of {title}" if content is None else content
        return self.submit("/posts/new/", {"title": title, "content": content})


def saved_post(response):
    """The path of the post that `response` says was saved, else None."""
    location = response.headers.get("Location", "")
    return location if response.status_code == 302 and POST_PATH.match(location) else None


class Load:
    """Logged-in clients sending a steady stream of GETs and POSTs through HAProxy.

    The clients sign up at once, in parallel; the load starts when all are in.
    Each stands for many users: it moves to a fresh address every
    `ADDRESS_REQUESTS` requests, so that no address comes near HAProxy's
    limits per client, as the addresses of many real users would not. (Its
    session goes along: one sign-up per client, whose password hashing would
    otherwise cost more than the load.)
    """

    ADDRESS_REQUESTS = 10

    def __init__(self, stack, clients=4, post_every=4):
        self.stack = stack
        self.post_every = post_every
        self.stopping = threading.Event()
        self.signed_up = threading.Barrier(clients + 1)
        self.lock = threading.Lock()
        self.gets = self.posts = 0
        self.slowest_get = 0.0
        self.failed_gets, self.failed_posts, self.acknowledged = [], [], []
        self.sign_up_failures = []
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        self.signed_up.wait()
        if self.sign_up_failures:
            self.__exit__()
            raise AssertionError(f"the load's clients could not sign up: {self.sign_up_failures}")
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def run(self):
        browser = Browser(self.stack)
        try:
            status = browser.sign_up(unique("load")).status_code
        except requests.RequestException as error:
            status = type(error).__name__
        if status != 302:
            self.sign_up_failures.append(status)
        self.signed_up.wait()
        sent = 0
        while status == 302 and not self.stopping.is_set():
            sent += 1
            if sent % self.ADDRESS_REQUESTS == 0:
                browser.move()
            if sent % self.post_every:
                self.get(browser)
            else:
                self.post(browser)
        browser.close()

    def get(self, browser):
        started = time.monotonic()
        try:
            status = browser.get("/").status_code
        except requests.RequestException as error:
            status = type(error).__name__
        took = time.monotonic() - started
        with self.lock:
            self.gets += 1
            self.slowest_get = max(self.slowest_get, took)
            if status != 200:
                self.failed_gets.append(status)

    def post(self, browser):
        title = unique("load post")
        try:
            response = browser.submit_post(title)
            saved, outcome = saved_post(response), response.status_code
        except requests.HTTPError as error:
            saved, outcome = None, f"form {error.response.status_code}"
        except requests.RequestException as error:
            saved, outcome = None, type(error).__name__
        with self.lock:
            self.posts += 1
            if saved:
                self.acknowledged.append(title)
            else:
                self.failed_posts.append(outcome)

    @staticmethod
    def run_for(seconds):
        time.sleep(seconds)

    def figures(self):
        """What the load saw; how many acknowledged posts the database lost,
        and how many posts it holds twice (a POST replayed by a proxy)."""
        stored = Counter(self.stack.stored_titles())
        lost = set(self.acknowledged) - set(stored)
        return {
            "failed GETs": failed(self.failed_gets, self.gets),
            "failed POSTs": failed(self.failed_posts, self.posts),
            "saved posts lost": len(lost),
            "posts saved twice": sum(1 for count in stored.values() if count > 1),
        }


def failed(failures, sent):
    """How many of `sent` requests failed, and what they got: "1 of 245 (502: 1)"."""
    got = ", ".join(f"{what}: {count}" for what, count in Counter(failures).items())
    return f"{len(failures)} of {sent}" + (f" ({got})" if got else "")


# Asking the stack --------------------------------------------------------------
# With TLS (every tls mode but none), "haproxy" is the site's HTTPS port and
# "haproxy-http" its plain HTTP port; a web server's own port is plain HTTP.
# The stack says which CA its certificate chains to (`verify`), or False when
# it cannot know: the TLS checks below look at the protocol, not the chain.

# What HAProxy would tell a web server about a request that came over HTTPS.
FROM_HTTPS = {"X-Forwarded-Proto": "https"}


def fetch(
    stack, name="haproxy", path="/", *, method="GET", timeout=TIMEOUT, address=None, **options
):
    """One request to a published port, from a client at `address` (a fresh one if None)."""
    client = Client(stack, address)
    try:
        return client.request(method, stack.url(name, path), timeout=timeout, **options)
    finally:
        client.close()


def plain_http_ports(stack):
    """The published plain-HTTP ports: HAProxy's (with TLS), each web server's."""
    return ["haproxy-http"] * stack.tls + stack.proxies


def stylesheet(stack):
    """The path of the site's stylesheet, as its pages link it."""
    return re.search(r'href="(/static/[^"]+\.css)"', fetch(stack).text).group(1)


def tls_context(stack):
    """A client's TLS settings for the site: its CA when the stack knows it."""
    context = ssl.create_default_context(cafile=stack.verify or None)
    if not stack.verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def as_haproxy_would(stack):
    """Headers for a request straight to a web server, as if through HAProxy."""
    return FROM_HTTPS if stack.tls else {}


def ways_in(stack):
    """(port, headers) of each way into the site: HAProxy's, and each web
    server's own port with what HAProxy would add."""
    return [("haproxy", {})] + [(name, as_haproxy_would(stack)) for name in stack.proxies]


# What HAProxy sees -------------------------------------------------------------


def web_server_stats(stack):
    """{web server: its row of HAProxy's stats CSV, in the `proxies` backend}."""
    response = fetch(stack, "stats", "/;csv", auth=("admin", stack.stats_password))
    response.raise_for_status()
    rows = csv.DictReader(io.StringIO(response.text.lstrip("# ")))
    return {
        row["svname"]: row
        for row in rows
        if row["pxname"] == "proxies" and row["svname"] != "BACKEND"
    }


def proxy_states(stack):
    """{web server: status} of HAProxy's `proxies` backend."""
    return {name: row["status"] for name, row in web_server_stats(stack).items()}


def times_marked_down(stack):
    """{web server: how often HAProxy's checks have marked it DOWN since start}."""
    return {name: int(row["chkdown"] or 0) for name, row in web_server_stats(stack).items()}


def seconds_until_down(stack, name, timeout=10):
    # "DOWN 1/2" is still down, on its way back up.
    return wait_until(
        lambda: proxy_states(stack)[name].startswith("DOWN"), f"{name} not DOWN", timeout
    )


def seconds_until_all_up(stack, timeout=60):
    # Exactly "UP": "UP 1/2" is a server on its way down (or not yet checked).
    return wait_until(
        lambda: all(status == "UP" for status in proxy_states(stack).values()),
        "not every web server UP in HAProxy",
        timeout,
    )


def site_answers(stack):
    try:
        return fetch(stack).status_code == 200
    except requests.RequestException:
        return False


def same_place(url, other):
    """Two URLs name the same scheme, host, port (default ones too) and path."""

    def place(parts):
        port = parts.port or {"http": 80, "https": 443}[parts.scheme]
        return parts.scheme, parts.hostname, port, parts.path, parts.query

    return place(urlsplit(url)) == place(urlsplit(other))


# The request flow ------------------------------------------------------------


def check_every_published_port_answers(stack):
    """The guide's `curl -I` checks: the site answers HEAD / with 200. With TLS,
    plain HTTP is sent to HTTPS, by HAProxy and by Django behind a web server."""
    status = fetch(stack, method="HEAD").status_code
    assert status == 200, f"HEAD / on the site: {status}"
    for name in plain_http_ports(stack):
        response = fetch(stack, name, method="HEAD", allow_redirects=False)
        expected = 301 if stack.tls else 200
        assert response.status_code == expected, f"HEAD / on {name}'s port: {response.status_code}"
        if stack.tls:
            location = response.headers["Location"]
            assert location.startswith("https://"), f"{name} redirects to {location}"


def check_health_endpoints_answer_200(stack):
    own = [("haproxy", "/haproxy-health")] + [(name, "/proxy-health") for name in stack.proxies]
    # The compose healthcheck probes HAProxy over plain HTTP: never redirected.
    own += [("haproxy-http", "/haproxy-health")] * stack.tls
    for name, path in own:
        status = fetch(stack, name, path, allow_redirects=False).status_code
        assert status == 200, f"{path} on {name}'s port: {status}"
    for path in ("/healthz", "/readyz"):
        status = fetch(stack, path=path).status_code
        assert status == 200, f"{path}: {status}"


def check_a_user_signs_up_logs_in_and_posts(stack):
    username, title = unique("user"), unique("first post")
    signed_up = Browser(stack).sign_up(username)
    assert signed_up.status_code == 302, f"sign-up answered {signed_up.status_code}"

    browser = Browser(stack)
    assert browser.log_in(username).status_code == 302, "log-in failed"
    assert username in browser.get("/").text, "the board does not greet the user"
    post_path = browser.create_post(title)
    assert post_path, "the post was not saved"
    for name in ["haproxy", *stack.proxies]:
        page = fetch(stack, name, post_path, headers=as_haproxy_would(stack))
        assert page.status_code == 200 and title in page.text, f"the post through {name}"


def check_a_form_without_its_csrf_token_is_refused(stack):
    browser = Browser(stack)
    browser.get("/accounts/login/")
    response = browser.post("/accounts/login/", data={"username": "nobody", "password": PASSWORD})
    assert response.status_code == 403, f"a POST without its token answered {response.status_code}"


def request_with_marker(stack, name, marker, headers, address=None):
    """GET /?q=<marker> on a published port, from a client at `address` (a
    fresh one if None), and the app's access log line for it."""
    status = fetch(stack, name, f"/?q={marker}", headers=headers, address=address).status_code
    assert status == 200, f"GET through {name}: {status}"
    return logged_line(stack.app_logs, marker, "the app's access log")


# What a log line says, in either LOG_FORMAT (README.md, "Logs"): a JSON
# object names each field; a text line says key="value" (Gunicorn's xff,
# xfp and every tier's rid), and an access line quotes its request line,
# then its status, after the client's address (a web server's).
TEXT_NAMES = {"client": "xff", "scheme": "xfp", "request_id": "rid"}
REQUEST_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" \d{3} ')


def fields(line):
    if line.startswith("{"):
        return json.loads(line)
    pairs = dict(re.findall(r'(\w+)="([^"]*)"', line))
    found = {name: pairs[text] for name, text in TEXT_NAMES.items() if text in pairs}
    request = REQUEST_LINE.search(line)
    if request:
        found |= {"method": request[1], "path": request[2]}
        found.setdefault("client", line.split(" ", 1)[0])
    return found


def logged_line(logs, marker, where):
    """The first line of `logs()` that holds `marker`, once it is there."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in logs().splitlines():
            if marker in line:
                return line
        time.sleep(0.2)
    raise AssertionError(f"{marker} never reached {where}")


def check_static_files_come_from_the_web_servers(stack):
    path = stylesheet(stack)
    # HAProxy alternates between the web servers: ask it a few times, and each directly.
    for name in ["haproxy"] * 4 + stack.proxies:
        response = fetch(stack, name, path, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, f"{path} through {name}: {response.status_code}"
        assert response.headers["Content-Type"].startswith("text/css"), name
        max_age = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        assert max_age and int(max_age.group(1)) >= 7 * 86400, f"{name}: {response.headers}"
    # The app's access log is live (a page request shows up), and no file request is in it.
    request_with_marker(stack, "haproxy", unique("after-static"), {})
    assert "/static/" not in stack.app_logs(), "a static file reached Django"
    # Each web server logs the pages it passes on, and neither the files it
    # serves nor HAProxy's checks of it (an access log line: request, status).
    for name in stack.proxies:
        page = unique(f"logged-by-{name}")
        request_with_marker(stack, name, page, FROM_HTTPS)
        deadline = time.monotonic() + 5  # a server logs once it has answered
        while page not in (logs := stack.server_logs(name)):
            assert time.monotonic() < deadline, f"{name} did not log a page request"
            time.sleep(0.2)
        paths = [fields(line).get("path", "") for line in logs.splitlines()]
        assert page in "".join(paths), f"{name}'s log names no request: {logs[-500:]}"
        quiet = [path for path in paths if path.startswith(("/static/", "/proxy-health"))]
        assert not quiet, f"{name} logged {quiet[0]}"


def check_the_stats_page_and_metrics_want_the_password(stack):
    for path in ("/", "/metrics"):
        assert fetch(stack, "stats", path).status_code == 401, f"{path} without a password"
        wrong = fetch(stack, "stats", path, auth=("admin", "wrong"))
        assert wrong.status_code == 401, f"{path} with a wrong password"
    right = fetch(stack, "stats", auth=("admin", stack.stats_password))
    assert right.status_code == 200, f"stats with the password: {right.status_code}"
    # HAProxy's Prometheus exporter: each web server's state, as a gauge.
    metrics = fetch(stack, "stats", "/metrics", auth=("admin", stack.stats_password))
    assert metrics.status_code == 200, f"/metrics with the password: {metrics.status_code}"
    for name in stack.proxies:
        gauge = rf'haproxy_server_status{{[^}}]*server="{name}"[^}}]*state="UP"}} (\d)'
        up = re.search(gauge, metrics.text)
        assert up and up.group(1) == "1", f"/metrics has no UP {name}"


# What a client may claim about where it comes from, all of it dropped by HAProxy.
SPOOFED = "6.6.6.6"
CLAIMS = {
    "X-Forwarded-For": SPOOFED,
    "X-Real-IP": SPOOFED,
    "Forwarded": f"for={SPOOFED}",
    "True-Client-IP": SPOOFED,
    "X-Forwarded-Host": "evil.example",
}


def check_forwarded_headers_reach_django_as_haproxy_saw_them(stack):
    """Whatever a client claims about itself is dropped: Django gets the
    scheme HAProxy saw and exactly one address, the client's, and each web
    server logs that address."""
    scheme = "https" if stack.tls else "http"
    claims = {**CLAIMS, "X-Forwarded-Proto": "http" if stack.tls else "https"}
    sent = {}
    for _ in stack.proxies:  # once per web server behind HAProxy's round robin
        address, marker = new_client(stack), unique("forwarded")
        line = request_with_marker(stack, "haproxy", marker, claims, address)
        forwarded_for = fields(line)["client"].split(", ")
        assert SPOOFED not in line and "evil" not in line, line
        assert len(forwarded_for) == 1 and (not address or forwarded_for == [address]), line
        assert fields(line)["scheme"] == scheme, line
        sent[marker] = address
    if not stack.client_network:
        return  # every client is this machine: no address to tell apart

    def web_servers_logs():
        return "".join(stack.server_logs(name) for name in stack.proxies)

    for marker, address in sent.items():
        line = logged_line(web_servers_logs, marker, "a web server's access log")
        assert fields(line)["client"] == address, f"a web server logged {line}"


UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def check_one_request_id_follows_a_request_through_every_tier(stack):
    """HAProxy gives each request an ID, in place of one a client made up;
    the client gets it back, and HAProxy, a web server and the app log it,
    Django's own lines included. An answer HAProxy makes itself carries one
    too. A plain token from a trusted proxy in front is kept."""
    if stack.proxy_protocol_ports:
        # These clients speak through a trusted proxy (the PROXY protocol):
        # its plain token stands, and nothing else it sends does.
        kept = fetch(stack, headers={"X-Request-ID": "from-the-proxy-in-front"})
        assert kept.headers.get("X-Request-ID") == "from-the-proxy-in-front", kept.headers
    marker = unique("request-id")
    made_up = "made-up <script>" if stack.proxy_protocol_ports else "made-up"
    response = fetch(stack, path=f"/?q={marker}", headers={"X-Request-ID": made_up})
    assert response.status_code == 200, response.status_code
    request_id = response.headers.get("X-Request-ID", "")
    assert UUID4.fullmatch(request_id), f"the answer's X-Request-ID: {request_id!r}"

    def web_servers_logs():
        return "".join(stack.server_logs(name) for name in stack.proxies)

    for where, logs in (
        ("HAProxy's log", lambda: stack.server_logs("haproxy")),
        ("a web server's access log", web_servers_logs),
        ("the app's access log", stack.app_logs),
    ):
        line = logged_line(logs, marker, where)
        assert request_id in line and "made-up" not in line, f"{where}: {line}"
    # What Django itself logs while a request runs names it too.
    missing = fetch(stack, path=f"/{marker}/")
    line = logged_line(stack.app_logs, f"Not Found: /{marker}/", "the app's log")
    assert fields(line)["request_id"] == missing.headers["X-Request-ID"], line
    refused = fetch(stack, method="TRACE")
    assert UUID4.fullmatch(refused.headers.get("X-Request-ID", "")), refused.headers


def check_web_servers_pass_on_the_scheme_haproxy_set(stack):
    for name in stack.proxies:
        line = request_with_marker(stack, name, unique("scheme"), FROM_HTTPS)
        assert fields(line)["scheme"] == "https", f"{name}: {line}"


def check_the_login_redirect_ends_on_the_login_page(stack):
    response = fetch(stack, path="/posts/new/")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert response.url == stack.url(path="/accounts/login/?next=/posts/new/"), response.url


def check_trace_is_refused_and_no_server_shows_its_version(stack):
    """TRACE would echo the request back, cookies included; a version in the
    Server header tells an attacker which advisories apply."""
    for name in ["haproxy", *plain_http_ports(stack)]:
        headers = {"Cookie": "secret=trace-me"}
        traced = fetch(stack, name, method="TRACE", headers=headers, allow_redirects=False)
        assert traced.status_code == 405, f"TRACE on {name}'s port: {traced.status_code}"
        assert "trace-me" not in traced.text, f"TRACE on {name}'s port echoed the request"
        assert_plain_error_page((405, traced.text), f"TRACE on {name}'s port")
        server = fetch(stack, name, allow_redirects=False).headers.get("Server", "")
        assert not re.search(r"\d", server), f"{name}'s port answers Server: {server}"


# Limits, slow clients, error pages -------------------------------------------
# The same limits at every tier (README.md, "Limits, timeouts and overload"):
# HAProxy, the only public entrance, keeps the tightest; each web server
# enforces the same ones on its own port.

BODY_LIMIT = 10 * 1024 * 1024
LINE_LIMIT = 8 * 1024
HEADER_FIELDS = 100
# HAProxy's `timeout http-request`, the web servers' header timeouts.
SLOW_CLIENT_TIMEOUT = 10
# The site's error pages, which the web servers and HAProxy answer with.
ERROR_PAGES = Path(__file__).resolve().parent.parent / "django" / "static" / "errors"
# Where a 5xx page shows the request's ID: the web servers' SSI line, which
# each tier fills in ("(none)" for a request that came with none).
REQUEST_ID_SLOT = '<!--#echo var="HTTP_X_REQUEST_ID" -->'


def plain_error_page(status, body, request_id="(none)"):
    """Whether `body` is the site's own plain page for `status`, naming
    `request_id` (HTML-escaped) where it names one."""
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


def open_socket(stack, name, address=None):
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


def send_head(stack, name, method, target, headers):
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


def check_oversized_requests_are_refused_before_django(stack):
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


def check_a_request_at_the_limits_is_served(stack):
    """The limits refuse only what is past them: a long address and many
    headers, within the limits, are served through HAProxy."""
    # With Host and Connection, exactly HAProxy's 100 header fields.
    headers = {f"X-Pad-{i}": "a" for i in range(HEADER_FIELDS - 3)}
    headers["X-Long"] = "a" * (LINE_LIMIT // 4)
    status, _ = send_head(stack, "haproxy", "GET", f"/?pad={'a' * 2000}", headers)
    assert status == 200, f"a request within the limits: {status}"


def check_slow_clients_are_cut_off(stack):
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


def check_error_pages_are_plain_and_name_no_server(stack):
    for name in ["haproxy", *stack.proxies]:
        response = fetch(stack, name, "/static/no-such-file.css", headers=as_haproxy_would(stack))
        answer = response.status_code, response.text
        assert_plain_error_page(answer, f"a missing file through {name}")


def check_a_server_error_page_names_the_request_for_the_user_to_quote(stack):
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


# The page cache (README.md, "Page cache") ---------------------------------

CSRF_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
FORM_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def form_secret(page):
    """The CSRF secret of the page's form token, which Django masks afresh
    on every page: the one its reader's csrftoken cookie holds."""
    token = FORM_TOKEN.search(page).group(1)
    mask, cipher = token[: len(token) // 2], token[len(token) // 2 :]
    size = len(CSRF_CHARS)
    return "".join(
        CSRF_CHARS[(CSRF_CHARS.index(c) - CSRF_CHARS.index(m)) % size]
        for m, c in zip(mask, cipher, strict=True)
    )


def from_the_cache(response):
    return response.headers.get("X-Cache", "").startswith("HIT")


def check_no_reader_ever_gets_another_readers_page(stack):
    """Two logged-in readers read the same pages, through HAProxy and each
    web server, again and again: each gets their own name and form token
    and never the other's, never from a cache. An anonymous reader gets the
    same pages with neither, kept briefly by each web server."""
    author = Browser(stack)
    author.sign_up(unique("author"))
    post = author.create_post(unique("read by all"))
    readers = {}
    for _ in range(2):
        name, reader = unique("reader"), Browser(stack)
        assert reader.sign_up(name).status_code == 302, "sign-up failed"
        readers[name] = reader
    ways = ways_in(stack)
    rounds = itertools.product(range(3), ways, ("/", post), readers.items())
    for _, (where, headers), path, (name, reader) in rounds:
        # Cookies given as they are: a web server's own port is plain HTTP,
        # where a browser keeps secure ones back.
        cookies = reader.session.cookies.get_dict()
        url = stack.url(where, path)
        page = reader.request("GET", url, headers=headers, cookies=cookies, timeout=TIMEOUT)
        what = f"{name}'s {path} through {where}"
        assert page.status_code == 200, f"{what}: {page.status_code}"
        others = set(readers) - {name}
        assert name in page.text and not any(other in page.text for other in others), what
        assert form_secret(page.text) == cookies["csrftoken"], f"{what}: not their form token"
        assert not from_the_cache(page), f"{what} came from a cache"
        assert "private" in page.headers["Cache-Control"], what
    for where, headers in ways[1:]:
        for path in ("/", post):
            # The copy lasts up to its lifetime, a second by default: one of
            # a few quick tries falls within it.
            pages = [fetch(stack, where, path, headers=headers) for _ in range(10)]
            for page in pages:
                what = f"an anonymous {path} through {where}"
                assert page.status_code == 200, f"{what}: {page.status_code}"
                assert "csrfmiddlewaretoken" not in page.text, f"{what} has a form token"
                assert not any(name in page.text for name in readers), f"{what} names a reader"
                assert "Set-Cookie" not in page.headers, f"{what} sets a cookie"
            assert any(map(from_the_cache, pages)), f"{where} never kept {path}"


def check_a_new_post_reaches_anonymous_readers_within_the_cache_lifetime(stack):
    """Its author sees it at once; an anonymous reader, whose list each web
    server keeps for its lifetime, within that lifetime and a second,
    through HAProxy and each web server."""
    author = Browser(stack)
    author.sign_up(unique("author"))
    ways = ways_in(stack)
    for where, headers in ways:
        kept = fetch(stack, where, headers=headers)  # the list, kept as it was
        assert "X-Accel-Expires" not in kept.headers, f"a cache's own header, through {where}"
    title = unique("fresh")
    assert author.create_post(title), "the post was not saved"
    saved = time.monotonic()
    assert title in author.get("/").text, "the author does not see their own post at once"
    lifetime = int(re.search(r"max-age=(\d+)", fetch(stack).headers["Cache-Control"]).group(1))
    seconds = {}
    for where, headers in ways:

        def listed(where=where, headers=headers):
            return title in fetch(stack, where, headers=headers).text

        wait_until(listed, f"never on the anonymous list through {where}", 30, 0.02)
        seconds[where] = round(time.monotonic() - saved, 1)
    late = {where: took for where, took in seconds.items() if took > lifetime + 1}
    assert not late, f"later than its lifetime ({lifetime} s) and a second: {late}"
    return {
        f"on the anonymous list through {where} after": f"{took} s"
        for where, took in seconds.items()
    }


REQUEST_FLOW = [
    check_every_published_port_answers,
    check_trace_is_refused_and_no_server_shows_its_version,
    check_health_endpoints_answer_200,
    check_a_user_signs_up_logs_in_and_posts,
    check_a_form_without_its_csrf_token_is_refused,
    check_no_reader_ever_gets_another_readers_page,
    check_a_new_post_reaches_anonymous_readers_within_the_cache_lifetime,
    check_static_files_come_from_the_web_servers,
    check_the_stats_page_and_metrics_want_the_password,
    check_forwarded_headers_reach_django_as_haproxy_saw_them,
    check_one_request_id_follows_a_request_through_every_tier,
    check_web_servers_pass_on_the_scheme_haproxy_set,
    check_the_login_redirect_ends_on_the_login_page,
    check_oversized_requests_are_refused_before_django,
    check_a_request_at_the_limits_is_served,
    check_slow_clients_are_cut_off,
    check_error_pages_are_plain_and_name_no_server,
    check_a_server_error_page_names_the_request_for_the_user_to_quote,
]


# HTTPS ------------------------------------------------------------------------


def handshake(stack, *, maximum=None):
    """Meet the site's HTTPS port: (TLS version, ALPN protocol). The client
    offers old versions too when asked to (its own defaults would refuse them
    first), so a refusal is the server's."""
    url = urlsplit(stack.url())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # old versions are offered on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        if maximum:
            context.maximum_version = maximum
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        connect(stack, url.hostname, url.port) as raw,
        context.wrap_socket(raw, server_hostname=stack.domain) as tls,
    ):
        return tls.version(), tls.selected_alpn_protocol()


def check_https_offers_http2_on_tls_12_or_newer(stack):
    version, protocol = handshake(stack)
    assert version in ("TLSv1.2", "TLSv1.3"), version
    assert protocol == "h2", f"ALPN chose {protocol}"
    assert handshake(stack, maximum=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    with warnings.catch_warnings():  # offering them is the point: they must be refused
        warnings.simplefilter("ignore", DeprecationWarning)
        old_versions = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    for old in old_versions:
        try:
            version, _ = handshake(stack, maximum=old)
        except ssl.SSLError as error:
            # The server's alert, not this client's refusal to even offer it.
            assert error.reason == "TLSV1_ALERT_PROTOCOL_VERSION", f"{old.name}: {error}"
            continue
        raise AssertionError(f"a {old.name} client was accepted ({version})")


def check_plain_http_is_sent_to_https_with_its_path(stack):
    path = "/posts/new/?q=moved"
    response = fetch(stack, "haproxy-http", path, allow_redirects=False)
    assert response.status_code == 301, response.status_code
    location = response.headers["Location"]
    assert same_place(location, stack.url(path=path)), f"redirected to {location}"


def check_https_answers_carry_hsts(stack):
    for path in ("/", stylesheet(stack)):  # Django's answer, and a web server's own
        header = fetch(stack, path=path).headers.get("Strict-Transport-Security", "")
        max_age = re.search(r"max-age=(\d+)", header)
        assert max_age and int(max_age.group(1)) >= 365 * 86400, f"{path}: HSTS {header!r}"


HTTPS = [
    check_https_offers_http2_on_tls_12_or_newer,
    check_plain_http_is_sent_to_https_with_its_path,
    check_https_answers_carry_hsts,
]


# Failover under load ---------------------------------------------------------
# Each scenario starts from a healthy stack, leaves one (a replica it
# restarted back in use), returns its figures, and asserts what must hold:
# no acknowledged post is ever lost or saved twice, and GETs never fail where
# another web server or replica can answer.

# Seconds until the web servers use a replica that came back: they try a
# failed one again after 2 s, which one of them counts in whole seconds.
SETTLE = 3.5


def failover_when_a_web_server_is_killed(stack):
    victim = stack.proxies[0]
    with Load(stack) as load:
        load.run_for(1)
        stack.kill_proxy(victim)
        to_down = seconds_until_down(stack, victim)
        load.run_for(1)
        outage = fetch(stack) if len(stack.proxies) == 1 else None
        stack.start_proxy(victim)
        back_up = seconds_until_all_up(stack)
    figures = {f"{victim} killed, DOWN after": f"{to_down:.2f} s"}
    figures |= {"UP again after restart": f"{back_up:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert to_down <= 3, figures
    if outage is None:
        assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    else:
        # Nothing left to fail over to: a clear page, not a hang or a reset.
        assert outage.status_code == 503 and outage.headers.get("Retry-After"), outage.headers
        request_id = outage.headers["X-Request-ID"]
        assert_plain_error_page((503, outage.text), "no web server left", request_id)
    return figures


def failover_when_app_replicas_stop_and_die(stack):
    with Load(stack) as load:
        load.run_for(1)
        stack.stop_replica(0)  # graceful: SIGTERM, in-flight requests finish
        load.run_for(1.5)
        stack.start_replica(0)
        load.run_for(SETTLE)
        stack.kill_replica(1)
        load.run_for(1.5)
        stack.start_replica(1)
        load.run_for(SETTLE)
    figures = load.figures()
    assert figures["saved posts lost"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    return figures


def database_away_under_load(stack, take_away, what):
    """A request that cannot connect waits for the database (a GET 1.5 s,
    asked again by HAProxy; a write up to 8 s): the database away for a few
    seconds (`take_away()`, named `what`) fails no GET. A write whose query
    was under way as MySQL stopped may have run, so it is never tried again:
    it may get an honest 503, never a lost post or a 5xx of another kind."""
    with Load(stack) as load:
        load.run_for(1)
        started = time.monotonic()
        take_away()
        back = time.monotonic()
        serving = wait_until(lambda: site_answers(stack), "the site did not serve again", 30, 0.1)
        load.run_for(1)
    figures = {f"{what} took": f"{back - started:.2f} s"}
    figures |= {"serving again after": f"{serving:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    assert set(load.failed_posts) <= {503}, f"{figures}: {load.failed_posts}"
    return figures


def failover_when_the_database_restarts(stack):
    return database_away_under_load(stack, stack.restart_database, "database restart")


def failover_when_a_replica_freezes(stack):
    """A replica that hangs (frozen, its connections open) costs a GET a few
    seconds: the web servers give up on it after 2 s and send the GET to
    another replica. A POST it held waits for it (up to 10 s), is never
    sent again, and is answered once the replica thaws."""
    with Load(stack) as load:
        load.run_for(1)
        stack.freeze_replica(0)
        try:
            load.run_for(6)
        finally:
            stack.thaw_replica(0)
        load.run_for(1)
    figures = {"slowest GET": f"{load.slowest_get:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    assert figures["posts saved twice"] == 0, figures
    assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    assert load.failed_posts == [], f"{figures}: {load.failed_posts}"
    assert load.slowest_get <= 5, figures
    return figures


def failover_when_a_post_waits_for_the_database(stack):
    """A POST is never sent twice, so it may wait longer for its answer than
    a GET: one that waits 4 s for a lock on the posts table (a long
    transaction elsewhere, say) is still saved, once."""
    browser, title = Browser(stack), unique("patient post")
    username = unique("user")
    assert browser.sign_up(username).status_code == 302, "sign-up failed"
    assert browser.log_in(username).status_code == 302, "log-in failed"
    browser.get("/posts/new/").raise_for_status()
    with stack.lock_posts(4):  # the session that holds it, waited for on leaving
        started = time.monotonic()
        response = browser.send("/posts/new/", {"title": title, "content": title})
        waited = time.monotonic() - started
    figures = {"the POST waited": f"{waited:.2f} s", "then got": response.status_code}
    assert waited >= 2, f"the POST did not wait for the lock: {figures}"
    assert saved_post(response), figures
    assert stack.stored_titles().count(title) == 1, "the post was not saved once"
    return figures


def failover_during_a_rolling_restart_of_every_replica(stack):
    """A deploy's ordinary day: each replica stops gracefully and comes back,
    one at a time. Nothing fails, POSTs included."""
    with Load(stack) as load:
        load.run_for(1)
        for index in range(len(stack.replicas)):
            stack.stop_replica(index)
            stack.start_replica(index)
            load.run_for(SETTLE)
    figures = load.figures()
    assert figures["saved posts lost"] == 0 and figures["posts saved twice"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert load.failed_gets == [] and load.failed_posts == [], figures
    return figures


def failover_while_the_database_is_down(stack):
    """Pages answer 503 with Retry-After, and the app logs no traceback."""
    tracebacks = stack.app_logs().count("Traceback")
    stack.stop_database()
    try:
        # A page no web server keeps a copy of: the app's own answer.
        outage = fetch(stack, path=f"/?{unique('while-down')}")
    finally:
        stack.start_database()
    serving = wait_until(lambda: site_answers(stack), "the site did not serve again", 60, 0.1)
    figures = {"answer while down": outage.status_code, "serving again after": f"{serving:.2f} s"}
    assert outage.status_code == 503, figures
    assert outage.headers.get("Retry-After", "").isdigit(), outage.headers
    request_id = outage.headers["X-Request-ID"]
    assert_plain_error_page((503, outage.text), "a page while the database is down", request_id)
    assert stack.app_logs().count("Traceback") == tracebacks, "the app logged a traceback"
    return figures


# HAProxy's `timeout queue`: past it, a queued request gets a 503.
QUEUE_TIMEOUT = 10


async def read_answer(reader):
    """One HTTP/1.1 answer: (status, whether the connection stays open)."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = dict(line.lower().partition(":")[::2] for line in lines[1:] if line)
    fields = {name.strip(): value.strip() for name, value in fields.items()}
    if "content-length" in fields:
        await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding") == "chunked":
        size = None
        while size != 0:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
    else:
        await reader.read()
        return int(lines[0].split()[1]), False
    return int(lines[0].split()[1]), fields.get("connection") != "close"


async def hammer(stack, addresses, seconds):
    """A client connection from each of `addresses`, all at once, each sending
    GET / back to back on one kept-alive connection (a new one when the
    server closes it) for `seconds`: [(status or error, seconds taken)].
    Each carries a session cookie, as a logged-in reader's does: no web
    server answers it from its cache, so it is the app that is overloaded."""
    url = urlsplit(stack.url())
    context = tls_context(stack) if url.scheme == "https" else None
    request = f"GET / HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: sessionid=none\r\n\r\n"
    request = request.encode()
    deadline = time.monotonic() + seconds
    outcomes = []

    async def open_connection(address):
        connection = connect(stack, url.hostname, url.port, address)
        connection.setblocking(False)
        hostname = url.hostname if context else None
        return await asyncio.open_connection(sock=connection, ssl=context, server_hostname=hostname)

    async def client(address):
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(open_connection(address), TIMEOUT)
            except (OSError, TimeoutError) as error:
                outcomes.append((type(error).__name__, time.monotonic() - started))
                return
            try:
                keep_alive = True
                while keep_alive and time.monotonic() < deadline:
                    started = time.monotonic()
                    writer.write(request)
                    answer = read_answer(reader)
                    status, keep_alive = await asyncio.wait_for(answer, QUEUE_TIMEOUT + 20)
                    outcomes.append((status, time.monotonic() - started))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                outcomes.append((type(error).__name__, time.monotonic() - started))
                return
            finally:
                writer.close()

    await asyncio.gather(*(client(address) for address in addresses))
    return outcomes


def many_clients(stack, connections, per_client=4):
    """One address for each connection: fresh clients with `per_client` connections each."""
    clients = [new_client(stack) for _ in range(connections // per_client)]
    return [address for address in clients for _ in range(per_client)]


def overload(stack, connections, seconds=4):
    """The site's answers to `connections` at once from many clients (a few
    connections each, as a real crowd opens), on what replicas run."""
    marked_down = times_marked_down(stack)
    outcomes = asyncio.run(hammer(stack, many_clients(stack, connections), seconds))
    statuses = Counter(status for status, _ in outcomes)
    slowest = max(took for _, took in outcomes)
    figures = {"answers": dict(statuses), "slowest": f"{slowest:.2f} s"}
    assert times_marked_down(stack) == marked_down, f"a web server was marked DOWN: {figures}"
    assert set(statuses) <= {200, 503}, f"answers other than 200 and 503: {figures}"
    assert statuses[200], f"nothing was served: {figures}"
    late = [took for status, took in outcomes if status == 503 and took > QUEUE_TIMEOUT + 3]
    assert not late, f"503s after more than the queue timeout: {late[:5]}: {figures}"
    return figures


def failover_under_overload(stack):
    """256, then 1,024 connections at once, from 64 and 256 clients, on one
    replica: requests queue in
    HAProxy, and are answered, or refused with a 503 once past the queue
    timeout. No web server is ever marked DOWN for being busy."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    others = range(1, len(stack.replicas))
    for index in others:
        stack.stop_replica(index)
    figures = {}
    try:
        for connections in (256, 1024):
            for name, value in overload(stack, connections).items():
                figures[f"{connections} clients: {name}"] = value
    finally:
        for index in others:
            stack.start_replica(index)
    return figures


def failover_when_haproxy_crashes(stack):
    with Load(stack) as load:
        load.run_for(1.5)
        stack.crash_haproxy()
        returned = wait_until(lambda: site_answers(stack), "HAProxy did not come back", 60, 0.1)
        load.run_for(1.5)
    figures = {"HAProxy crashed, serving again after": f"{returned:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    return figures


FAILOVER = [
    failover_when_a_web_server_is_killed,
    failover_when_app_replicas_stop_and_die,
    failover_when_a_replica_freezes,
    failover_when_a_post_waits_for_the_database,
    failover_during_a_rolling_restart_of_every_replica,
    failover_when_the_database_restarts,
    failover_while_the_database_is_down,
    failover_under_overload,
    failover_when_haproxy_crashes,
]


# Hostile clients ---------------------------------------------------------------
# Each attack comes from one address while an honest reader, from another,
# reads the board five times a second: what the reader got is what counts
# (README.md, "Limits per client"). They need a stack that gives its clients
# addresses of their own.


def attacker(stack):
    address = new_client(stack)
    assert address, (
        "the attacks come from an address of their own, apart from the honest "
        "reader's: start the stack with checks/compose.yml (see its comment)"
    )
    return address


def p99(values):
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


class Reader:
    """An honest reader from an address of its own: the post list every
    `every` seconds while it runs, and what each request got."""

    def __init__(self, stack, every=0.2):
        self.client = Client(stack)
        self.url = stack.url()
        self.every = every
        self.outcomes = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.thread.join()
        self.client.close()

    def run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status = self.client.request("GET", self.url, timeout=TIMEOUT).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            took = time.monotonic() - started
            self.outcomes.append((status, took))
            self.stopping.wait(max(0.0, self.every - took))

    def figures(self):
        served = sum(1 for status, _ in self.outcomes if status == 200)
        slowest = p99(took for _, took in self.outcomes)
        return {
            "honest GETs answered 200": f"{served} of {len(self.outcomes)}",
            "their p99": f"{slowest:.2f} s",
        }

    def assert_served(self, figures, p99_at_most):
        """At least 99% of the reader's GETs answered 200, p99 within the bound."""
        served = sum(1 for status, _ in self.outcomes if status == 200)
        assert self.outcomes and served >= 0.99 * len(self.outcomes), figures
        assert p99(took for _, took in self.outcomes) <= p99_at_most, figures


def answer_status(connection):
    """The status a server answered on `connection` with, or "closed" if none."""
    connection.settimeout(0.5)
    try:
        data = connection.recv(64)
    except TimeoutError:
        return None  # TLS' own records, no answer yet
    except OSError:
        return "closed"
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return int(match.group(1)) if match else "closed"


def slow_bodies(stack, address, count, seconds):
    """`count` connections from `address`, each a POST that announces a 1 MB
    body and then sends one byte of it every 2 s, for `seconds`: how many
    got each answer (a status, "closed" unanswered, "open" still waiting)."""
    head = (
        f"POST /posts/new/ HTTP/1.1\r\nHost: {urlsplit(stack.url()).netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\n"
    ).encode()
    outcomes, waiting = Counter(), []
    for _ in range(count):
        try:
            connection = open_socket(stack, "haproxy", address)
            connection.sendall(head)
            waiting.append(connection)
        except OSError:
            outcomes["closed"] += 1
    deadline, next_byte = time.monotonic() + seconds, time.monotonic() + 2
    with selectors.DefaultSelector() as selector:
        for connection in waiting:
            selector.register(connection, selectors.EVENT_READ)
        while waiting and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                status = answer_status(key.fileobj)
                if status is not None:
                    outcomes[status] += 1
                    selector.unregister(key.fileobj)
                    waiting.remove(key.fileobj)
                    key.fileobj.close()
            if time.monotonic() >= next_byte:
                next_byte += 2
                for connection in waiting:
                    with contextlib.suppress(OSError):  # closed: its answer is read above
                        connection.sendall(b"a")
    outcomes["open"] += len(waiting)
    for connection in waiting:
        connection.close()
    return outcomes


def under_attack_by_slow_bodies(stack):
    """200 connections from one address, each a POST that announces a 1 MB
    body and sends one byte of it every 2 s. HAProxy reads a body before it
    asks a web server, so none ever holds one: each gets 408 after 10 s, or,
    past the address's connection limit, 429 or a closed connection."""
    address = attacker(stack)
    with Reader(stack) as reader:
        outcomes = slow_bodies(stack, address, 200, seconds=14)
    figures = {**reader.figures(), "the slow connections got": dict(outcomes)}
    reader.assert_served(figures, p99_at_most=2)
    assert not outcomes["open"], f"HAProxy still waits for a slow body: {figures}"
    clients = {fields(line).get("client") for line in stack.app_logs().splitlines()}
    assert address not in clients, f"a slow body reached the app: {figures}"
    return figures


def under_attack_by_a_flood(stack):
    """One address asking for the post list back to back on 48 connections:
    past its request rate it gets 429s, which cost the app nothing."""
    address = attacker(stack)
    with Reader(stack) as reader:
        outcomes = asyncio.run(hammer(stack, [address] * 48, seconds=10))
    statuses = Counter(status for status, _ in outcomes)
    figures = {**reader.figures(), "the flood got": dict(statuses)}
    reader.assert_served(figures, p99_at_most=1)
    assert statuses[429], f"the flood was never refused: {figures}"
    return figures


def under_attack_by_password_guessing(stack):
    """40 wrong passwords for one account from one address: refused with 429
    well before the 20th, first by the app (django-axes counts failures per
    account and address, in the database every replica shares), then also
    by HAProxy; its admin log-in too. The owner, from their own address,
    logs in at once."""
    owner, username = Browser(stack), unique("owner")
    assert owner.sign_up(username).status_code == 302, "the owner could not sign up"
    guesser = Browser(stack, attacker(stack))
    guesser.get("/accounts/login/").raise_for_status()
    answers = [
        guesser.send("/accounts/login/", {"username": username, "password": f"guess-{number}"})
        for number in range(40)
    ]
    statuses = [answer.status_code for answer in answers]
    assert 429 in statuses, f"never refused: {Counter(statuses)}"
    first = statuses.index(429)
    admin = guesser.send("/admin/login/", {"username": username, "password": PASSWORD})
    owner_logs_in = Browser(stack).log_in(username).status_code
    figures = {
        "refused from try": first + 1,
        "first by": "HAProxy" if plain_error_page(429, answers[first].text) else "the app",
        "tries refused": statuses.count(429),
        "the guesser's admin log-in": admin.status_code,
        "the owner's log-in from another address": owner_logs_in,
    }
    assert first < 20 and set(statuses[first:]) == {429}, figures
    assert admin.status_code == 429 and owner_logs_in == 302, figures
    return figures


ABUSE = [
    under_attack_by_slow_bodies,
    under_attack_by_a_flood,
    under_attack_by_password_guessing,
]


# Backups -------------------------------------------------------------------
# These destroy the database. A stack answers `backup(*args)`: the backup
# service's `backup` command (now, list...), returning what it printed;
# `backup_shell(script)`: a shell script run in the backups folder;
# `restore(*args)`: the project's restore command, returning its exit status
# and output; `destroy_database()`: the database lost, as with its volume;
# `stored_posts()`: every post's every column, in order.

# What a post may hold, all of which must come back byte for byte.
AWKWARD_TEXT = "첫 줄\nline two: 'quoted' \"double\" \\backslash\t tab, émoji 🎉"


def write_posts(browser, label, count=3):
    titles = [unique(label) for _ in range(count)]
    for title in titles:
        assert browser.create_post(title, f"{title}\n{AWKWARD_TEXT}"), f"{title} was not saved"
    return titles


def next_second(stack):
    """The next whole second, in the site's time zone as a restore takes it;
    back once it has begun."""
    moment = int(time.time()) + 1
    time.sleep(moment - time.time() + 0.05)
    zone = ZoneInfo(stack.time_zone)
    return datetime.datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M:%S")


def latest_dump(stack):
    return stack.backup("list").split()[-1]


def check_a_restore_to_a_point_in_time_brings_back_exactly_the_posts_before_it(stack):
    """A dump, posts after it, a moment, more posts; the database destroyed.
    Restored to the moment: exactly the posts before it, byte for byte, from
    the dump and the binary logs after it. Restored in full: every post."""
    browser = Browser(stack)
    assert browser.sign_up(unique("backup")).status_code == 302
    write_posts(browser, "before the dump")
    stack.backup("now")
    dump = latest_dump(stack)
    write_posts(browser, "before the moment")
    moment = next_second(stack)
    time.sleep(1)  # the posts after the moment are written in a later second
    after = write_posts(browser, "after the moment")
    stack.backup("now")  # copies the binary logs that the first dump needs
    everything = stack.stored_posts()
    stack.destroy_database()
    status, output = stack.restore(dump, moment)
    assert status == 0, f"restore to {moment} failed:\n{output}"
    before_moment = [post for post in everything if not any(title in post for title in after)]
    assert stack.stored_posts() == before_moment, f"restored to {moment}: not the posts before it"
    status, output = stack.restore(dump)
    assert status == 0, f"the full restore failed:\n{output}"
    assert stack.stored_posts() == everything, "restored in full: not every post"
    # The restarted replicas may have new addresses, which the web servers
    # look up again every 2 s, also after a lookup failed while none ran.
    serving = wait_until(
        lambda: takes_a_post(browser), "the site took no post after the restore", 10, 0.5
    )
    return {
        "posts restored to the moment": len(before_moment),
        "in full": len(everything),
        "taking posts again after": f"{serving:.1f} s",
    }


def takes_a_post(browser):
    try:
        return bool(browser.create_post(unique("after the restore")))
    except requests.RequestException:
        return False


# Ways a dump gets damaged, as shell scripts run in the backup service's
# backups folder on a copy of a good dump ($1): truncated; a byte changed
# with checksums made to match (as by a copy that rewrote them); replaced by
# a dump cut short, encrypted to the same certificate, checksums matching;
# a byte changed in a binary log.
DAMAGE = {
    "truncated": "head -c 300 $1/dump.sql.gz.cms > cut && mv cut $1/dump.sql.gz.cms",
    "a byte changed with matching checksums": (
        "printf X | dd of=$1/dump.sql.gz.cms bs=1 seek=2000 conv=notrunc"
        " && (cd $1 && sha256sum dump.sql.gz.cms > SHA256SUMS)"
    ),
    "cut short and encrypted anew": (
        "printf -- '-- MySQL dump\\nCREATE TABLE cut (id INT);\\n' | gzip"
        " | openssl cms -encrypt -binary -aes-256-gcm -outform DER -out $1/dump.sql.gz.cms"
        " $BACKUP_CERTIFICATE_FILE && (cd $1 && sha256sum dump.sql.gz.cms > SHA256SUMS)"
    ),
    "a binary log corrupted": (
        "log=$(ls $1/binlogs/*.cms | head -n 1) && printf X | dd of=$log bs=1 seek=200 conv=notrunc"
    ),
}


# Moments a restore must refuse, with why.
BAD_MOMENTS = {
    "2000-01-01 00:00:00": "is before dump",
    "yesterday": "the moment must read 'YYYY-MM-DD HH:MM:SS'",
    "2026-02-30 12:00:00": "there is no moment",
}


def check_a_damaged_dump_or_a_bad_moment_is_refused_and_the_live_database_left_untouched(stack):
    browser = Browser(stack)
    assert browser.sign_up(unique("backup")).status_code == 302
    write_posts(browser, "in the dump")
    stack.backup("now")
    write_posts(browser, "after the dump", 1)
    good = latest_dump(stack)
    stack.backup("now")  # gives the good dump a binary log
    damaged = "00000000T000000Z"  # sorts first, so it is never the latest
    before = stack.stored_posts()
    for damage, script in DAMAGE.items():
        stack.backup_shell(f"rm -rf {damaged} && cp -rp {good} {damaged}")
        stack.backup_shell(f"set -- {damaged} && {script}")
        try:
            status, output = stack.restore(damaged)
        finally:
            stack.backup_shell(f"rm -rf {damaged}")
        assert status != 0 and "damaged" in output, f"{damage}: not refused:\n{output}"
        assert stack.stored_posts() == before, f"{damage}: the live database changed"
        assert site_answers(stack), f"{damage}: the site stopped answering"
    for moment, reason in BAD_MOMENTS.items():
        status, output = stack.restore(good, moment)
        assert status != 0 and reason in output, f"a restore to {moment!r}: not refused:\n{output}"
        assert stack.stored_posts() == before, f"a restore to {moment!r}: the database changed"
        assert site_answers(stack), f"a restore to {moment!r}: the site stopped answering"
    return {"refused": ", ".join([*DAMAGE, *BAD_MOMENTS])}


def check_a_dump_being_written_is_not_taken_for_a_good_one(stack):
    """A dump is written in a hidden folder and renamed once it checks out.
    Until then the listing, the healthcheck and a restore ignore it, even
    when it is the newest folder there."""
    stack.backup("now")
    good = latest_dump(stack)
    partial = ".partial-99991231T235959Z"
    stack.backup_shell(f"cp -rp {good} {partial} && touch {partial}/dump.sql.gz.cms")
    try:
        listed = stack.backup("list").split()
        health = stack.backup("health")
        status, output = stack.restore(partial)
    finally:
        stack.backup_shell(f"rm -rf {partial}")
    assert listed[-1] == good and partial not in listed, listed
    assert health.startswith(f"backup: last good dump {good},"), health
    assert status != 0 and f"no dump named '{partial}'" in output, output
    return {"ignored": partial}


BACKUPS = [
    check_a_dump_being_written_is_not_taken_for_a_good_one,
    check_a_damaged_dump_or_a_bad_moment_is_refused_and_the_live_database_left_untouched,
    check_a_restore_to_a_point_in_time_brings_back_exactly_the_posts_before_it,
]


# The stack under Compose -----------------------------------------------------


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

    # What the checks ask of any stack.

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

    def kill_proxy(self, name):
        self.compose("kill", name)

    def start_proxy(self, name):
        self.compose("start", name)
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
        code = hold + f"time.sleep({seconds}); cursor.execute('COMMIT')"
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


def check_migrations_ran_exactly_once(stack):
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


def check_the_app_talks_to_the_database_over_tls(stack):
    code = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute(\"SHOW SESSION STATUS LIKE 'Ssl_version'\"); print(c.fetchone()[1])"
    )
    version = stack.django(code).strip()
    assert version.startswith("TLSv1."), f"the app's database link is not encrypted: {version!r}"


def check_writes_leave_no_idle_connection_to_a_replica(stack):
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


def check_each_database_user_may_do_its_job_and_no_more(stack):
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


def logs_time(ahead=0):
    """Now, `ahead` seconds on, as `docker compose logs --since/--until` take it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ahead))


def chosen_checks(stack, failover=False, abuse=False, backups=False):
    """The checks for `stack`, with what each option adds."""
    checks = REQUEST_FLOW + HTTPS * stack.tls + COMPOSE_ONLY
    return checks + FAILOVER * failover + ABUSE * abuse + BACKUPS * backups


def run_checks(stack, checks):
    """Run each check; print what it found; return how many failed. A failed
    check also prints how to see what the services logged while it ran."""
    failed = 0
    for check in checks:
        started, since = time.monotonic(), logs_time()
        try:
            figures = check(stack)
        except Exception as error:  # noqa: BLE001 (report every check, then fail)
            failed += 1
            print(f"FAIL {check.__name__}: {type(error).__name__}: {error}", flush=True)
            window = f"--since {since} --until {logs_time(ahead=1)}"
            print(f"     its logs: docker compose logs --timestamps {window}", flush=True)
            continue
        took = f"({time.monotonic() - started:.1f} s)"
        details = ", ".join(f"{name} {value}" for name, value in (figures or {}).items())
        print(f"ok   {check.__name__} {took}{': ' + details if details else ''}", flush=True)
    return failed


def confirm(options):
    """Name the stack the checks are about to change, and ask (or take --yes).
    Nothing is asked, and nothing done, when no stack runs here."""
    try:
        running = ComposeStack.docker("compose", "ps", "--services", "--status", "running")
        project = json.loads(ComposeStack.docker("compose", "config", "--format", "json"))["name"]
    except RuntimeError as error:
        sys.exit(f"check_stack: run it in the project's folder; {error}".rstrip())
    running = running.split()
    if "haproxy" not in running:
        sys.exit(
            f"check_stack: the stack {project} is not running here; "
            "start it first: docker compose up -d --wait"
        )
    harm = ["signs up users and writes posts"]
    harm += ["kills and restarts containers"] * options.failover
    harm += ["attacks the site"] * options.abuse
    harm += ["destroys and restores the database"] * options.backups
    what = f"this {', '.join(harm)} on the stack {project}"
    if options.yes:
        return
    if not sys.stdin.isatty():
        sys.exit(f"check_stack: {what}; confirm with --yes")
    if input(f"check_stack: {what}. Go on? [y/N] ").strip().lower() not in {"y", "yes"}:
        sys.exit("check_stack: nothing done")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--failover", action="store_true", help="also kill and restart services under load"
    )
    parser.add_argument(
        "--backups",
        action="store_true",
        help="also back up, destroy and restore the database (its data is lost!)",
    )
    parser.add_argument(
        "--abuse", action="store_true", help="also attack the site, one hostile client at a time"
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask first: the checks sign up users and write posts, and the options "
        "above kill containers, attack the site or destroy the database",
    )
    parser.add_argument(
        "--backup-key",
        type=Path,
        default=Path("backup-private-key.pem"),
        help="the backups' private key, which --backups restores with "
        "(default: %(default)s, where the bake wrote it)",
    )
    options = parser.parse_args()
    if not __debug__:
        sys.exit("check_stack: the checks are assertions; run it without python -O")
    if not shutil.which("docker"):
        sys.exit("check_stack: the docker command is not installed")
    if options.backups and not options.backup_key.is_file():
        sys.exit(
            f"check_stack: --backups restores dumps, which needs the backups' private key: "
            f"no file {options.backup_key}; give it with --backup-key FILE"
        )
    confirm(options)
    stack = ComposeStack(backup_key=options.backup_key)
    if (options.failover or options.abuse) and not stack.client_network:
        sys.exit(
            "check_stack: --failover and --abuse play many clients, each from an address of "
            "its own, and HAProxy takes every client of this machine for one (Docker's "
            "gateway). Start the stack with checks/compose.yml, which lets these checks say "
            "whom they speak for: docker compose -f docker-compose.yml -f checks/compose.yml up"
        )
    checks = chosen_checks(stack, options.failover, options.abuse, options.backups)
    failed = run_checks(stack, checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
