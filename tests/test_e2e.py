"""Tier 5: the baked stack runs for real, natively, and survives failures.

For each proxy choice the whole stack starts from its own entrypoints and
templates (tests/stack.py) and is driven over HTTP like a browser would.
The failover tests keep a steady stream of GETs and POSTs going through
HAProxy while a proxy, an app replica or the database goes away, and print
what it cost.
"""

import http.client
import re
import threading
import time
import uuid

import native
import pytest
import requests
from conftest import PROXY_CHOICES
from stack import CLIENT_TIMEOUT, NativeStack

PASSWORD = "correct-horse-battery-staple-42"
POST_PATH = re.compile(r"^/posts/(\d+)/$")


@pytest.fixture(scope="module", params=PROXY_CHOICES)
def stack(request, bake_combination):
    with NativeStack(bake_combination(f"{request.param}-mysql8.4")) as running:
        yield running


@pytest.fixture
def healthy(stack):
    """The stack with everything running and UP, whatever the last test stopped."""
    stack.heal()
    return stack


class Browser:
    """A client that keeps cookies and sends the CSRF token like a browser."""

    def __init__(self, site_url):
        self.base_url = site_url.rstrip("/")  # also the Origin a browser sends
        self.session = requests.Session()

    def get(self, path, **options):
        return self.session.get(self.base_url + path, timeout=CLIENT_TIMEOUT, **options)

    def submit(self, path, fields):
        """GET the form (for the CSRF cookie), then POST it; the answer is not followed."""
        self.get(path).raise_for_status()
        return self.session.post(
            self.base_url + path,
            data={"csrfmiddlewaretoken": self.session.cookies["csrftoken"], **fields},
            headers={"Origin": self.base_url, "Referer": self.base_url + path},
            allow_redirects=False,
            timeout=CLIENT_TIMEOUT,
        )

    def sign_up(self, username):
        fields = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
        return self.submit("/accounts/signup/", fields)

    def log_in(self, username):
        return self.submit("/accounts/login/", {"username": username, "password": PASSWORD})

    def create_post(self, title):
        """The new post's path if the app said it was saved, else None."""
        response = self.submit("/posts/new/", {"title": title, "content": f"Body of {title}"})
        location = response.headers.get("Location", "")
        return location if response.status_code == 302 and POST_PATH.match(location) else None


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stored_titles(stack):
    name = stack.project.name
    query = f"SELECT title FROM `{name}`.board_post"  # noqa: S608 (our own slug)
    return set(stack.mariadb.sql(query).splitlines())


# The request flow ---------------------------------------------------------


def test_every_published_port_answers_200(healthy):
    for name in ["haproxy", *healthy.proxies]:
        response = requests.head(healthy.url(name), timeout=CLIENT_TIMEOUT)
        assert response.status_code == 200, name


def test_health_endpoints_used_by_the_healthchecks_answer_200(healthy):
    own = {"haproxy": "/haproxy-health", "nginx": "/nginx-health", "apache": "/apache-health"}
    for name in ["haproxy", *healthy.proxies]:
        response = requests.get(healthy.url(name, own[name]), timeout=CLIENT_TIMEOUT)
        assert response.status_code == 200, name
    for path in ("/healthz", "/readyz"):
        assert requests.get(healthy.url(path=path), timeout=CLIENT_TIMEOUT).status_code == 200


def test_a_user_signs_up_logs_in_and_posts_through_haproxy(healthy):
    username, title = unique("user"), unique("first post")
    signed_up = Browser(healthy.url()).sign_up(username)
    assert signed_up.status_code == 302, signed_up.text

    browser = Browser(healthy.url())
    assert browser.log_in(username).status_code == 302
    assert username in browser.get("/").text
    post_path = browser.create_post(title)
    assert post_path, "the post was not saved"

    for name in ["haproxy", *healthy.proxies]:
        page = requests.get(healthy.url(name, post_path), timeout=CLIENT_TIMEOUT)
        assert page.status_code == 200, name
        assert title in page.text, name


def test_a_form_post_without_its_csrf_token_is_refused(healthy):
    browser = Browser(healthy.url())
    browser.get("/accounts/login/")
    response = browser.session.post(
        healthy.url(path="/accounts/login/"),
        data={"username": "nobody", "password": PASSWORD},
        timeout=CLIENT_TIMEOUT,
    )
    assert response.status_code == 403


def test_static_files_come_from_the_proxies_with_cache_headers(healthy):
    page = requests.get(healthy.url(), timeout=CLIENT_TIMEOUT).text
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
    # HAProxy alternates between the proxies: ask it a few times, and each one directly.
    for name in ["haproxy"] * 4 + healthy.proxies:
        response = requests.get(
            healthy.url(name, stylesheet), headers={"Accept-Encoding": "gzip"}, timeout=5
        )
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith("text/css"), name
        max_age = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        assert max_age and int(max_age.group(1)) >= 7 * 86400, (name, response.headers)
    assert "/static/" not in healthy.app_logs(), "a static file reached Django"


def test_stats_page_wants_the_generated_password(healthy):
    stats = healthy.url("stats")
    assert requests.get(stats, timeout=CLIENT_TIMEOUT).status_code == 401
    wrong = requests.get(stats, auth=("admin", "wrong"), timeout=CLIENT_TIMEOUT)
    assert wrong.status_code == 401
    password = healthy.secrets["HAPROXY_STATS_PASSWORD"]
    assert requests.get(stats, auth=("admin", password), timeout=CLIENT_TIMEOUT).status_code == 200


def request_from(address, port, path, headers):
    """GET from a chosen loopback source address, so the client is recognisable."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=CLIENT_TIMEOUT, source_address=(address, 0)
    )
    connection.request("GET", path, headers={"Host": f"localhost:{port}", **headers})
    status = connection.getresponse().status
    connection.close()
    return status


def app_log_line(stack, marker):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in stack.app_logs().splitlines():
            if marker in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"{marker} never reached the app's access log")


def test_forwarded_headers_reach_django_as_the_clients(healthy):
    # Whatever the client claims is replaced by what HAProxy saw.
    spoofed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
    for _ in healthy.proxies:  # once per proxy behind HAProxy's round robin
        marker = unique("forwarded")
        assert request_from("127.0.0.99", healthy.ports["haproxy"], f"/?q={marker}", spoofed) == 200
        line = app_log_line(healthy, marker)
        forwarded_for = re.search(r'xff="([^"]*)"', line).group(1).split(", ")
        assert forwarded_for[0] == "127.0.0.99", line
        assert "6.6.6.6" not in forwarded_for, line
        assert 'xfp="http"' in line, line


def test_proxies_pass_on_the_scheme_haproxy_set(healthy):
    for name in healthy.proxies:
        marker = unique(f"scheme-{name}")
        assert (
            request_from(
                "127.0.0.1", healthy.ports[name], f"/?q={marker}", {"X-Forwarded-Proto": "https"}
            )
            == 200
        )
        assert 'xfp="https"' in app_log_line(healthy, marker), name


def test_login_redirect_ends_on_the_login_page_without_a_loop(healthy):
    response = requests.get(healthy.url(path="/posts/new/"), timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert response.url == healthy.url(path="/accounts/login/?next=/posts/new/")


# Failover under load -------------------------------------------------------


class Load:
    """Logged-in clients sending a steady stream of GETs and POSTs through HAProxy."""

    def __init__(self, stack, clients=4, post_every=4):
        self.stack = stack
        self.post_every = post_every
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.gets = self.posts = 0
        self.failed_gets, self.failed_posts, self.acknowledged = [], [], []
        self.browsers = []
        for _ in range(clients):
            browser, username = Browser(stack.url()), unique("load")
            assert browser.sign_up(username).status_code == 302
            self.browsers.append(browser)
        self.threads = [threading.Thread(target=self.run, args=(b,)) for b in self.browsers]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def run(self, browser):
        sent = 0
        while not self.stopping.is_set():
            sent += 1
            if sent % self.post_every:
                self.get(browser)
            else:
                self.post(browser)

    def get(self, browser):
        try:
            status = browser.get("/").status_code
        except requests.RequestException as error:
            status = type(error).__name__
        with self.lock:
            self.gets += 1
            if status != 200:
                self.failed_gets.append((time.monotonic(), status))

    def post(self, browser):
        title = unique("load post")
        try:
            saved = browser.create_post(title)
        except requests.RequestException:
            saved = None
        with self.lock:
            self.posts += 1
            (self.acknowledged if saved else self.failed_posts).append(title)

    def run_for(self, seconds):
        time.sleep(seconds)

    def summary(self):
        return (
            f"GET {len(self.failed_gets)} failed of {self.gets}, "
            f"POST {len(self.failed_posts)} failed of {self.posts}"
        )


def report(stack, scenario, load, **figures):
    lost = set(load.acknowledged) - stored_titles(stack)
    extra = ", ".join(f"{name} {value:.2f} s" for name, value in figures.items())
    line = f"[{'+'.join(stack.proxies)}] {scenario}: {load.summary()}, {len(lost)} saved posts lost"
    print(f"\n{line}{', ' + extra if extra else ''}")
    return lost


def test_failover_when_a_proxy_is_killed(healthy, capsys):
    victim = healthy.proxies[0]
    with Load(healthy) as load:
        load.run_for(1.5)
        healthy.servers[victim].kill()
        to_down = healthy.seconds_until_down(victim)
        load.run_for(1.5)
        if len(healthy.proxies) == 1:
            outage = requests.get(healthy.url(), timeout=CLIENT_TIMEOUT)
    with capsys.disabled():
        lost = report(healthy, f"(a) {victim} SIGKILLed", load, DOWN_after=to_down)
    assert to_down <= 3
    assert not lost
    assert load.acknowledged, "no POST went through at all"
    if len(healthy.proxies) == 1:
        # Nothing left to fail over to: a clear page, not a hang or a reset.
        assert outage.status_code == 503
        assert "Service temporarily unavailable" in outage.text
    else:
        assert load.failed_gets == [], healthy.log_tails()


def test_failover_when_app_replicas_stop_and_die(healthy, capsys):
    first, second = healthy.replicas[:2]
    with Load(healthy) as load:
        load.run_for(1.5)
        first.stop()  # graceful: SIGTERM, in-flight requests finish
        load.run_for(2)
        first.start()
        # The proxies retry a failed replica after 2 s (fail_timeout, retry).
        load.run_for(3)
        second.kill()
        load.run_for(2)
    with capsys.disabled():
        lost = report(healthy, "(b) replica stopped, restarted, another SIGKILLed", load)
    assert load.failed_gets == [], healthy.log_tails()
    assert not lost
    assert load.acknowledged, "no POST went through at all"


def test_app_serves_again_soon_after_the_database_restarts(healthy, capsys):
    with Load(healthy) as load:
        load.run_for(1.5)
        restarted = time.monotonic()
        healthy.mariadb.restart()
        back = time.monotonic()
        while requests.get(healthy.url(), timeout=CLIENT_TIMEOUT).status_code != 200:
            assert time.monotonic() - back < 10, "the app did not serve within 10 s"
            time.sleep(0.1)
        serving = time.monotonic()
        load.run_for(1.5)
    with capsys.disabled():
        lost = report(
            healthy,
            "(c) MariaDB restarted",
            load,
            restart_took=back - restarted,
            serving_again_after=serving - back,
        )
    assert serving - back <= 10
    assert not lost
    assert load.acknowledged, "no POST went through at all"


def test_teardown_leaves_no_process_or_port_behind_even_after_a_failure(bake_combination):
    stack = NativeStack(bake_combination("both-mysql8.4"))
    with pytest.raises(RuntimeError, match="a failing test"), stack:
        groups = [server.process.pid for server in stack.every_server]
        addresses = [(server.host, server.port) for server in stack.every_server]
        raise RuntimeError("a failing test")
    for group in groups:
        assert native.live_processes(group) == [], f"process group {group} still runs"
    for host, port in addresses:
        assert not native.port_accepts(host, port), f"{host}:{port} still answers"
    assert not stack.base.exists()
