"""The request flow through every published port, and the page cache."""

import itertools
import re
import time

from .clients import (
    FROM_HTTPS,
    PASSWORD,
    TIMEOUT,
    Browser,
    as_haproxy_would,
    fetch,
    fields,
    logged_line,
    new_client,
    plain_http_ports,
    request_with_marker,
    stylesheet,
    unique,
    wait_until,
    ways_in,
)
from .limits import (
    assert_plain_error_page,
    check_a_request_at_the_limits_is_served,
    check_a_server_error_page_names_the_request_for_the_user_to_quote,
    check_error_pages_are_plain_and_name_no_server,
    check_oversized_requests_are_refused_before_django,
    check_slow_clients_are_cut_off,
)
from .stack import Stack


def check_every_published_port_answers(stack: Stack):
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


def check_health_endpoints_answer_200(stack: Stack):
    own = [("haproxy", "/haproxy-health")] + [(name, "/proxy-health") for name in stack.proxies]
    # The compose healthcheck probes HAProxy over plain HTTP: never redirected.
    own += [("haproxy-http", "/haproxy-health")] * stack.tls
    for name, path in own:
        status = fetch(stack, name, path, allow_redirects=False).status_code
        assert status == 200, f"{path} on {name}'s port: {status}"
    for path in ("/healthz", "/readyz"):
        status = fetch(stack, path=path).status_code
        assert status == 200, f"{path}: {status}"


def check_a_user_signs_up_logs_in_and_posts(stack: Stack):
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


def check_a_form_without_its_csrf_token_is_refused(stack: Stack):
    browser = Browser(stack)
    browser.get("/accounts/login/")
    response = browser.post("/accounts/login/", data={"username": "nobody", "password": PASSWORD})
    assert response.status_code == 403, f"a POST without its token answered {response.status_code}"


def check_static_files_come_from_the_web_servers(stack: Stack):
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


def check_the_stats_page_and_metrics_want_the_password(stack: Stack):
    for path in ("/", "/metrics"):
        assert fetch(stack, "stats", path).status_code == 401, f"{path} without a password"
        wrong = fetch(stack, "stats", path, auth=("admin", "wrong"))
        assert wrong.status_code == 401, f"{path} with a wrong password"
    right = fetch(stack, "stats", auth=("admin", stack.stats_password))
    assert right.status_code == 200, f"stats with the password: {right.status_code}"
    # HAProxy's Prometheus exporter: each web server instance's state, as a gauge.
    metrics = fetch(stack, "stats", "/metrics", auth=("admin", stack.stats_password))
    assert metrics.status_code == 200, f"/metrics with the password: {metrics.status_code}"
    for name in stack.proxies:
        gauge = rf'haproxy_server_status{{[^}}]*server="{name}\d*"[^}}]*state="UP"}} (\d)'
        up = re.findall(gauge, metrics.text)
        assert up and set(up) == {"1"}, f"/metrics has an instance of {name} not UP: {up}"


# What a client may claim about where it comes from, all of it dropped by HAProxy.
SPOOFED = "6.6.6.6"
CLAIMS = {
    "X-Forwarded-For": SPOOFED,
    "X-Real-IP": SPOOFED,
    "Forwarded": f"for={SPOOFED}",
    "True-Client-IP": SPOOFED,
    "X-Forwarded-Host": "evil.example",
}


def check_forwarded_headers_reach_django_as_haproxy_saw_them(stack: Stack):
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


def check_one_request_id_follows_a_request_through_every_tier(stack: Stack):
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


def check_web_servers_pass_on_the_scheme_haproxy_set(stack: Stack):
    for name in stack.proxies:
        line = request_with_marker(stack, name, unique("scheme"), FROM_HTTPS)
        assert fields(line)["scheme"] == "https", f"{name}: {line}"


def check_the_login_redirect_ends_on_the_login_page(stack: Stack):
    response = fetch(stack, path="/posts/new/")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert response.url == stack.url(path="/accounts/login/?next=/posts/new/"), response.url


def check_trace_is_refused_and_no_server_shows_its_version(stack: Stack):
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


# The page cache (docs/limits.md, "Page cache") ---------------------------------

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


def check_no_reader_ever_gets_another_readers_page(stack: Stack):
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


def check_a_new_post_reaches_anonymous_readers_within_the_cache_lifetime(stack: Stack):
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
