"""Tier 5: the baked stack runs for real, natively, and survives failures.

For each proxy choice the whole stack starts from its own entrypoints and
templates (harness/native.py), and the baked project's own stack checks
(checks/check_stack.py) drive it: the same checks that tier 6 runs in Docker
and that the baked project's CI runs against the official images. Each
client binds a loopback address of its own, which HAProxy sees as it is:
the one tier where no proxy in front tells HAProxy who the client is. The
default bake ends TLS in HAProxy with a self-signed certificate; on the
stack with both web servers the failover checks keep a steady stream of
GETs and POSTs going through HAProxy while a web server, an app replica or
the database goes away, and print what it cost (tier 6 runs them for every
choice), and three attacks come from one address while an honest reader
reads from another. Every other tls mode, with every proxy choice, gets the handshake,
redirect, HSTS and user-flow checks; ACME runs against Pebble, and renews
under load.
"""

import contextlib
import socket
import threading
import time

import pytest
import requests
from harness import processes, services, tls
from harness.commands import run
from harness.native import NativeStack, failover_scenarios
from harness.template import (
    EVERY_PROXY,
    PROXY_CHOICES,
    TLS_MODES,
    load_stack_checks,
    tls_answers,
)

CHECKS = load_stack_checks()
FAILOVER = failover_scenarios(CHECKS)
# Overload is met by HAProxy's queue in front of the web servers: here it
# runs once, on the stack with both (tier 6 runs it for every proxy choice,
# on the real images).
OVERLOAD = CHECKS.failover_under_overload
DEFAULT_TLS, *OTHER_TLS = TLS_MODES
# What every tls mode must keep working: the ports, the user flow with CSRF.
FLOW = [
    CHECKS.check_every_published_port_answers,
    CHECKS.check_a_user_signs_up_logs_in_and_posts,
    CHECKS.check_a_form_without_its_csrf_token_is_refused,
]


def named(check):
    return check.__name__


def assert_nothing_is_left_behind(stack):
    """Stopping a stack, whatever its tests did, ends every process and frees
    every port it used, and removes its folder."""
    for server in stack.every_server:
        group = server.process.pid
        assert processes.live_processes(group) == [], f"{server.name}: process group still runs"
        assert not processes.port_accepts(server.host, server.port), f"{server.name} still answers"
    assert not stack.layout.workdir.exists()


@pytest.fixture(scope="module", params=PROXY_CHOICES)
def stack(request, bake, mariadb):
    with NativeStack(bake(**PROXY_CHOICES[request.param]), mariadb) as running:
        yield running
    assert_nothing_is_left_behind(running)


@pytest.fixture
def healthy(stack):
    """The stack with everything running and UP, whatever the last check stopped."""
    stack.heal()
    CHECKS.seconds_until_all_up(stack)
    return stack


@pytest.mark.parametrize("check", CHECKS.REQUEST_FLOW + CHECKS.HTTPS, ids=named)
def test_request_flow(healthy, check):
    check(healthy)


def report(capsys, where, what, figures):
    """Print a scenario's figures in the test log, whatever pytest captures."""
    with capsys.disabled():
        details = ", ".join(f"{name} {value}" for name, value in figures.items())
        print(f"\n[{where}] {what}: {details}")


def run_scenario(stack, scenario, capsys):
    try:
        figures = scenario(stack)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{stack.log_tails()}") from None
    report(capsys, "+".join(stack.proxies), scenario.__name__, figures)


# Failover under load runs here on the stack with both web servers; tier 6
# runs every scenario for every proxy choice, on the images users run.
@pytest.mark.parametrize("stack", [EVERY_PROXY], indirect=True)
@pytest.mark.parametrize("scenario", FAILOVER, ids=named)
def test_failover(healthy, scenario, capsys):
    run_scenario(healthy, scenario, capsys)


@pytest.mark.parametrize("stack", [EVERY_PROXY], indirect=True)
def test_failover_under_overload(healthy, capsys):
    run_scenario(healthy, OVERLOAD, capsys)


# Hostile clients, each from a loopback address of its own, which HAProxy
# counts as it is: the limits per client do not depend on the web servers
# behind HAProxy (tier 6 runs them for every choice, told apart by the PROXY
# protocol).
@pytest.mark.parametrize("stack", [EVERY_PROXY], indirect=True)
@pytest.mark.parametrize("attack", CHECKS.ABUSE, ids=named)
def test_honest_clients_are_served_under_attack(healthy, attack, capsys):
    run_scenario(healthy, attack, capsys)


def test_no_request_fails_while_the_web_servers_reload_again_and_again(healthy, capsys):
    """Apache reloads whenever the replicas change (its entrypoint), and an
    operator reloads nginx after an edit. A reloading web server closes its
    idle connections, and HAProxy must never have sent a POST on one just
    then. Many reloads under a busy load: each opens that race for a moment."""
    workers = {name: live_workers(healthy, name) for name in healthy.proxies}
    reloads = 0
    with CHECKS.Load(healthy, clients=8, post_every=2) as load:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for name in healthy.proxies:
                healthy.reload_proxy(name)
                reloads += 1
            load.run_for(0.2)
    figures = {"reloads": reloads, **load.figures()}
    report(capsys, "+".join(healthy.proxies), "web servers reloading", figures)
    assert load.failed_gets == [] and load.failed_posts == [], figures
    CHECKS.seconds_until_all_up(healthy, timeout=5)
    for name, before in workers.items():
        assert not before & live_workers(healthy, name), f"{name} never replaced its workers"


class ReplicaThatDies:
    """Listens where a stopped replica did, reads each request whole, and
    closes the connection without an answer: a replica that dies with a
    request in hand, which it may have run already."""

    def __init__(self, host, port):
        self.requests = 0
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self.serve)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.closing.set()
        self.thread.join()
        self.listener.close()

    def serve(self):
        while not self.closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received and (chunk := connection.recv(65536)):
                    received += chunk
                if b"\r\n\r\n" in received:
                    self.answer(connection, received)

    def answer(self, connection, head):
        """Count the request, and close without an answer."""
        self.requests += 1


def test_a_post_that_reached_a_replica_is_never_sent_again(healthy):
    """Whatever a web server retries (nginx even passes a request on again
    after its peers changed, @resend), a POST that reached a replica may
    have run there: it gets a 502 and goes nowhere else."""
    for index in range(len(healthy.replicas)):
        healthy.stop_replica(index)
    port = healthy.layout.ports["app"]
    with contextlib.ExitStack() as opened:
        dying = [
            opened.enter_context(ReplicaThatDies(replica.host, port))
            for replica in healthy.replicas
        ]
        for proxy in healthy.proxies:
            before = sum(replica.requests for replica in dying)
            url = healthy.url(proxy, "/posts/new/")
            answer = requests.post(url, data={"title": "once"}, timeout=30)
            sent = sum(replica.requests for replica in dying) - before
            assert (proxy, answer.status_code, sent) == (proxy, 502, 1)


EMPTY_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class RecordingReplica(ReplicaThatDies):
    """Listens where a stopped replica did and answers 200, keeping every
    request head it got: what the app would have been told."""

    def __init__(self, host, port):
        super().__init__(host, port)
        self.heads = []

    def answer(self, connection, head):
        self.heads.append(head.decode("latin-1"))
        connection.sendall(EMPTY_ANSWER)


def test_the_app_hears_the_clients_address_from_haproxy_alone(healthy):
    """Whatever a client claims about itself (an address, a host, a scheme)
    never reaches the app: it gets exactly one address, the client's, in
    X-Forwarded-For, and HAProxy's scheme, through every web server."""
    for index in range(len(healthy.replicas)):
        healthy.stop_replica(index)
    port = healthy.layout.ports["app"]
    claims = {**CHECKS.CLAIMS, "X-Forwarded-Proto": "http"}
    with contextlib.ExitStack() as opened:
        replicas = [
            opened.enter_context(RecordingReplica(replica.host, port))
            for replica in healthy.replicas
        ]
        clients = [CHECKS.new_client(healthy) for _ in range(2 * len(healthy.proxies))]
        for address in clients:  # HAProxy's round robin: each web server in turn
            assert CHECKS.fetch(healthy, headers=claims, address=address).status_code == 200
    heads = [head for replica in replicas for head in replica.heads]
    assert len(heads) == len(clients), heads
    for head in heads:
        fields = [line.partition(":") for line in head.split("\r\n")[1:] if line]
        fields = {name.strip().lower(): value.strip() for name, _, value in fields}
        assert fields["x-forwarded-for"] in clients, head
        assert fields["x-forwarded-proto"] == "https", head
        assert CHECKS.SPOOFED not in head and "evil.example" not in head, head


@pytest.mark.parametrize("stack", [EVERY_PROXY], indirect=True)
def test_a_proxy_protocol_header_from_an_untrusted_address_is_refused(healthy):
    """Nothing is in front of this HAProxy: a client that claims another's
    address in a PROXY header gets 400, and reaches nothing."""
    marker = CHECKS.unique("proxied")
    with socket.create_connection(("127.0.0.1", healthy.layout.ports["haproxy"])) as connection:
        request = f"GET /?q={marker} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        connection.sendall(CHECKS.proxy_header("198.18.0.1", connection) + request)
        answer = CHECKS.read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    CHECKS.request_with_marker(healthy, "haproxy", CHECKS.unique("after"), {})
    assert marker not in healthy.app_logs()


def live_workers(stack, name):
    """A web server's processes but its first (the master, which stays)."""
    server = stack.servers[name]
    return set(processes.live_processes(server.process.pid)) - {server.process.pid}


# The backups do not depend on the proxies: one proxy choice runs them.
@pytest.mark.parametrize("stack", [EVERY_PROXY], indirect=True)
@pytest.mark.parametrize("check", CHECKS.BACKUPS, ids=named)
def test_backups(healthy, check, capsys):
    report(capsys, "native, MariaDB", check.__name__, check(healthy))


@pytest.mark.parametrize("stack", [EVERY_PROXY], indirect=True)
def test_backups_keep_the_last_backup_keep_dumps_and_remove_older_ones(healthy):
    backup = services.backup(healthy.layout)
    before = healthy.backup("list").split()
    for _ in range(3):
        run(["sh", backup.entrypoint, "backup", "now"], env=backup.env() | {"BACKUP_KEEP": "2"})
    kept = healthy.backup("list").split()
    assert len(kept) == 2 and min(kept) > max(before, default=""), (before, kept)


def test_the_site_certificate_verifies_for_the_domain_against_its_ca(healthy):
    tls.verified(healthy.layout.ports["https"], healthy.domain, healthy.verify)


# Every other tls mode ----------------------------------------------------------


def modes(*wanted):
    """(tls mode, proxy choice) ids for the modes wanted. How HAProxy gets its
    certificate does not depend on the web servers behind it: each mode runs
    on the stack with both (the default mode runs with every choice, above)."""
    return [f"{mode}-{EVERY_PROXY}" for mode in wanted]


CERTIFICATE_MODES = [mode for mode in OTHER_TLS if mode != "none"]


@pytest.fixture(scope="module")
def mode_stack(request, bake, mariadb):
    mode, choice = request.param.split("-", 1)
    with NativeStack(bake(**tls_answers(mode), **PROXY_CHOICES[choice]), mariadb) as running:
        CHECKS.seconds_until_all_up(running)
        yield running
    assert_nothing_is_left_behind(running)


@pytest.mark.parametrize("mode_stack", modes(*CERTIFICATE_MODES), indirect=True)
@pytest.mark.parametrize("check", FLOW + CHECKS.HTTPS, ids=named)
def test_every_tls_mode_keeps_the_user_flow_and_does_https_right(mode_stack, check):
    check(mode_stack)


@pytest.mark.parametrize("mode_stack", modes(*CERTIFICATE_MODES), indirect=True)
def test_every_tls_mode_serves_a_certificate_that_verifies_for_the_domain(mode_stack):
    tls.verified(mode_stack.layout.ports["https"], mode_stack.domain, mode_stack.verify)


@pytest.mark.parametrize("mode_stack", modes("none"), indirect=True)
@pytest.mark.parametrize("check", FLOW, ids=named)
def test_plain_http_for_another_tls_terminator_keeps_the_user_flow(mode_stack, check):
    assert not mode_stack.tls and "https" not in mode_stack.layout.ports
    check(mode_stack)


@pytest.mark.parametrize("mode_stack", modes("acme"), indirect=True)
def test_acme_renewal_swaps_the_certificate_with_no_failed_request(mode_stack, capsys):
    port = mode_stack.layout.ports["https"]
    before = tls.verified(port, mode_stack.domain, mode_stack.verify)
    with CHECKS.Load(mode_stack) as load:
        load.run_for(1)
        mode_stack.renew_certificate(days=100_000)  # sooner than any expiry: renew now
        load.run_for(1)
    after = tls.verified(port, mode_stack.domain, mode_stack.verify)
    figures = load.figures()
    assert after != before, "the served certificate did not change"
    assert load.failed_gets == [] and load.failed_posts == [], figures
    report(capsys, "+".join(mode_stack.proxies), "ACME renewal under load", figures)
