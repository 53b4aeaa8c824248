"""Tier 5: the baked stack runs for real, natively, and survives failures.

For each proxy choice the whole stack starts from its own entrypoints and
templates (harness/native.py), and the baked project's own stack checks
(checks/check_stack.py) drive it over HTTP: the same checks that tier 6 runs
in Docker and that the baked project's CI runs against the official images.
The failover checks keep a steady stream of GETs and POSTs going through
HAProxy while a web server, an app replica or the database goes away, and
print what it cost.
"""

import pytest
from harness import processes
from harness.native import NativeStack
from harness.template import PROXY_CHOICES, load_stack_checks

CHECKS = load_stack_checks()
# Outside Docker no restart policy brings a crashed HAProxy back: that
# scenario runs in tier 6 only.
FAILOVER = [s for s in CHECKS.FAILOVER if s is not CHECKS.failover_when_haproxy_crashes]


@pytest.fixture(scope="module", params=PROXY_CHOICES)
def stack(request, bake, mariadb):
    with NativeStack(bake(**PROXY_CHOICES[request.param]), mariadb) as running:
        yield running
    assert_nothing_is_left_behind(running)


def assert_nothing_is_left_behind(stack):
    """Stopping a stack, whatever its tests did, ends every process and frees
    every port it used, and removes its folder."""
    for server in stack.every_server:
        group = server.process.pid
        assert processes.live_processes(group) == [], f"{server.name}: process group still runs"
        assert not processes.port_accepts(server.host, server.port), f"{server.name} still answers"
    assert not stack.layout.workdir.exists()


@pytest.fixture
def healthy(stack):
    """The stack with everything running and UP, whatever the last check stopped."""
    stack.heal()
    CHECKS.seconds_until_all_up(stack)
    return stack


@pytest.mark.parametrize("check", CHECKS.REQUEST_FLOW, ids=lambda check: check.__name__)
def test_request_flow(healthy, check):
    check(healthy)


@pytest.mark.parametrize("scenario", FAILOVER, ids=lambda scenario: scenario.__name__)
def test_failover(healthy, scenario, capsys):
    try:
        figures = scenario(healthy)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{healthy.log_tails()}") from None
    with capsys.disabled():
        details = ", ".join(f"{name} {value}" for name, value in figures.items())
        print(f"\n[{'+'.join(healthy.proxies)}] {scenario.__name__}: {details}")
