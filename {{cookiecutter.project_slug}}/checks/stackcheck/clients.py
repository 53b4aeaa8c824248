"""Clients, each from an address of its own; a steady load and what it counts;
what to ask the stack and what HAProxy saw."""

import csv
import io
import ipaddress
import json
import random
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .stack import Stack

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
# HAProxy limits what one client address may do (docs/limits.md, "Limits per
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


def new_client(stack: Stack):
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


def connect(stack: Stack, host, port, address=None, timeout=TIMEOUT):
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


def client_adapter(stack: Stack, address):
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

    def __init__(self, stack: Stack, address=None):
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

    def __init__(self, stack: Stack, address=None):
        super().__init__(stack, address)
        self.base_url = stack.url().rstrip("/")  # also the Origin a browser sends

    def get(self, path, **options):
        return self.request("GET", self.base_url + path, timeout=TIMEOUT, **options)

    def post(self, path, **options):
        return self.request("POST", self.base_url + path, timeout=TIMEOUT, **options)

    def submit(self, path, fields):
        """GET the form (for the CSRF cookie and its hidden fields), then POST
        it as a browser would; the answer is not followed."""
        page = self.get(path)
        page.raise_for_status()
        return self.send(path, hidden_fields(page.text, path) | fields)

    def send(self, path, fields):
        """POST a form whose page was fetched before."""
        return self.post(
            path,
            data={"csrfmiddlewaretoken": self.session.cookies["csrftoken"], **fields},
            headers={"Origin": self.base_url, "Referer": self.base_url + path},
            allow_redirects=False,
        )

    def sign_up(self, username, email=""):
        fields = {"username": username, "email": email}
        fields |= {"password1": PASSWORD, "password2": PASSWORD}
        return self.submit("/accounts/signup/", fields)

    def log_in(self, username):
        return self.submit("/accounts/login/", {"username": username, "password": PASSWORD})

    def create_post(self, title, content=None):
        """The new post's path if the app said it was saved, else None."""
        return saved_post(self.submit_post(title, content))

    def submit_post(self, title, content=None):
        content = f"Body of {title}" if content is None else content
        return self.submit("/posts/new/", {"title": title, "content": content})


class HiddenFields(HTMLParser):
    """The hidden fields of a page's form that posts to `path` (or to the
    page itself), which a browser sends back: the ID that saves a new post
    once (board/forms.py), say."""

    def __init__(self, path):
        super().__init__()
        self.path, self.in_form, self.fields = path, False, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            posts_here = attrs.get("action") in (None, "", self.path)
            self.in_form = posts_here and attrs.get("method", "").lower() == "post"
        elif tag == "input" and self.in_form and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def hidden_fields(page, path):
    parser = HiddenFields(path)
    parser.feed(page)
    return parser.fields


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

    def __init__(self, stack: Stack, clients=4, post_every=4):
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


def plain_http_ports(stack: Stack):
    """The published plain-HTTP ports: HAProxy's (with TLS), each web server's."""
    return ["haproxy-http"] * stack.tls + stack.proxies


def stylesheet(stack: Stack):
    """The path of the site's stylesheet, as its pages link it."""
    return re.search(r'href="(/static/[^"]+\.css)"', fetch(stack).text).group(1)


def tls_context(stack: Stack):
    """A client's TLS settings for the site: its CA when the stack knows it."""
    context = ssl.create_default_context(cafile=stack.verify or None)
    if not stack.verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def as_haproxy_would(stack: Stack):
    """Headers for a request straight to a web server, as if through HAProxy."""
    return FROM_HTTPS if stack.tls else {}


def ways_in(stack: Stack):
    """(port, headers) of each way into the site: HAProxy's, and each web
    server's own port with what HAProxy would add."""
    return [("haproxy", {})] + [(name, as_haproxy_would(stack)) for name in stack.proxies]


# What HAProxy sees -------------------------------------------------------------


def web_server_stats(stack: Stack):
    """{server: its row of HAProxy's stats CSV, in the `proxies` backend}: one
    server per web server instance, its web server's name and a number."""
    response = fetch(stack, "stats", "/;csv", auth=("admin", stack.stats_password))
    response.raise_for_status()
    rows = csv.DictReader(io.StringIO(response.text.lstrip("# ")))
    return {
        row["svname"]: row
        for row in rows
        if row["pxname"] == "proxies" and row["svname"] != "BACKEND"
    }


def proxy_states(stack: Stack):
    """{server: status} of HAProxy's `proxies` backend."""
    return {name: row["status"] for name, row in web_server_stats(stack).items()}


def times_marked_down(stack: Stack):
    """{server: how often HAProxy's checks have marked it DOWN since start}."""
    return {name: int(row["chkdown"] or 0) for name, row in web_server_stats(stack).items()}


def instance_states(stack: Stack, web_server):
    """The states of `web_server`'s instances in HAProxy."""
    return [
        status
        for name, status in proxy_states(stack).items()
        if name.rstrip("0123456789") == web_server
    ]


def seconds_until_down(stack: Stack, web_server, timeout=10):
    """Until an instance of `web_server` is out: DOWN by its checks ("DOWN 1/2"
    is still down, on its way back up), or in maintenance once its address is
    gone from DNS."""
    return wait_until(
        lambda: any(s.startswith(("DOWN", "MAINT")) for s in instance_states(stack, web_server)),
        f"no instance of {web_server} DOWN",
        timeout,
    )


def seconds_until_all_up(stack: Stack, timeout=60):
    # Exactly "UP": "UP 1/2" is a server on its way down (or not yet checked).
    return wait_until(
        lambda: all(status == "UP" for status in proxy_states(stack).values()),
        "not every web server instance UP in HAProxy",
        timeout,
    )


def site_answers(stack: Stack):
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


def logs_time(ahead=0):
    """Now, `ahead` seconds on, as `docker compose logs --since/--until` take it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ahead))


# What the logs say ------------------------------------------------------------


def request_with_marker(stack: Stack, name, marker, headers, address=None):
    """GET /?q=<marker> on a published port, from a client at `address` (a
    fresh one if None), and the app's access log line for it."""
    status = fetch(stack, name, f"/?q={marker}", headers=headers, address=address).status_code
    assert status == 200, f"GET through {name}: {status}"
    return logged_line(stack.app_logs, marker, "the app's access log")


# What a log line says, in either LOG_FORMAT (docs/monitoring.md, "Logs"): a JSON
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
