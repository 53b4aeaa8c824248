"""Tier 5: the baked project, as written, in a real Docker Engine, under failure.

For each proxy choice, a baked project's docker-compose.yml runs unchanged
on a private Docker Engine (harness/engine.py) with `compose up --build
--wait`; its images build FROM stand-ins for the official images
(harness/standins.py). Only ports and the build network differ
(harness/compose.py). The baked project's own checks/check_stack.py then
drives it: the request flow, and failover under load (a web server killed,
replicas stopped and killed, the database restarted, HAProxy crashed). Posts
survive `down` and `up`; `down --volumes` leaves nothing; the engine leaves
nothing on the host. The Kubernetes dev overlay's pods run as their manifests
say (harness/pods.py) and serve the site.

The bakes answer mysql_version 9.7 and python_version 3.13: the version lines
Debian carries, so that each stand-in runs the line its name promises (the
README says what that leaves unproven for the other choices).
"""

import contextlib
import http.client
import importlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import warnings
from collections import Counter
from functools import partial
from urllib.parse import quote, urlsplit

import pytest
import requests
import yaml
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from urllib3.exceptions import InsecureRequestWarning

import local_extensions
from harness import standins, tls
from harness.browser import chromium, relay
from harness.commands import run, tool
from harness.compose import ComposeProject
from harness.pods import Pods
from harness.processes import free_port, trouble
from harness.standins import ANSWERS
from harness.template import (
    EVERY_PROXY,
    PROXIES,
    PROXY_CHOICES,
    TEMPLATE,
    load_stack_checks,
    proxies_of,
    tls_answers,
)

CHECKS = load_stack_checks()
# What does not depend on the proxy choice runs once, on the stack with every
# proxy (every service there is).
ONE_CHOICE = [EVERY_PROXY]
# Stand-ins that run an older line than their name: Debian carries none
# newer (CONTRIBUTING.md, "The stand-ins").
OLDER_LINES = {"prom/prometheus": "3.5"}
# How each image's server tells its version.
VERSION_COMMANDS = {
    "nginx": ["nginx", "-v"],
    "httpd": ["httpd", "-v"],
    "haproxy": ["haproxy", "-v"],
    "python": ["python", "--version"],
    "mysql": ["mysqld", "--version"],
    # Their entrypoint is the server itself.
    "prom/prometheus": ["--version"],
    "prom/alertmanager": ["--version"],
    "nginx/nginx-prometheus-exporter": ["--version"],
    "lusitaniae/apache_exporter": ["--version"],
    "prom/mysqld-exporter": ["--version"],
    "prom/node-exporter": ["--version"],
    "prom/blackbox-exporter": ["--version"],
}


@pytest.fixture(scope="module", params=PROXY_CHOICES)
def stack(request, bake, engine, images):
    """A baked project's stack, up and healthy (its images build FROM `images`).
    The one with every proxy runs the monitoring profile too: its scenarios
    run with Prometheus scraping."""
    baked = bake(**PROXY_CHOICES[request.param], **ANSWERS)
    project = ComposeProject(engine, baked, monitoring=request.param == EVERY_PROXY)
    with project:
        yield project
    assert project.left_behind() == {}


def drive(stack, monkeypatch):
    """checks/check_stack.py's own Compose driver, pointed at `stack`."""
    for name, value in stack.engine.env(**stack.env()).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(stack.project)
    driver = CHECKS.ComposeStack(backup_key=stack.project / "backup-private-key.pem")
    assert isinstance(driver, CHECKS.Stack), "the Compose driver misses one of Stack's members"
    return driver


@pytest.fixture
def shipped_driver(stack, monkeypatch):
    return drive(stack, monkeypatch)


@pytest.fixture
def shipped_acme_driver(acme_stack, monkeypatch):
    return drive(acme_stack[0], monkeypatch)


def test_every_image_a_project_names_has_a_stand_in(bake, images):
    names, _ = images
    project = bake(**ANSWERS)  # both proxies: every image there is
    named = [
        line.split()[1]
        for dockerfile in project.glob("*/Dockerfile.*")
        for line in dockerfile.read_text().splitlines()
        if line.startswith("FROM ")
    ]
    for compose_file in ("docker-compose.yml", "monitoring/compose.yml"):
        named += re.findall(r"image: (\S+)", (project / compose_file).read_text())
    assert set(named) <= set(names)


def test_each_stand_in_runs_the_version_line_its_name_promises(engine, images, capsys):
    names, build_seconds = images
    seen = {}
    for image in (name for name in names if not name.startswith("django-ha/")):
        repository, tag = image.split(":")
        command = VERSION_COMMANDS[repository]
        answer = engine.docker("run", "--rm", "--network", "none", image, *command)
        version = re.search(r"(\d+\.\d+\.\d+)", answer.stdout + answer.stderr).group(1)
        seen[image] = version
        line = OLDER_LINES.get(repository, re.search(r"\d+\.\d+", tag).group())
        assert version.startswith(line + "."), (image, version)
    with capsys.disabled():
        runs = ", ".join(f"{image} runs {version}" for image, version in seen.items())
        print(f"\nstand-ins (built, or found cached, in {build_seconds:.1f} s): {runs}")


def test_the_readme_names_an_engine_and_compose_no_newer_than_those_proven_here(bake, engine):
    readme = (bake(**ANSWERS) / "README.md").read_text()
    engine_minimum = int(re.search(r"Docker Engine (\d+) or newer", readme).group(1))
    compose_minimum = re.search(r"Compose plugin (\d+)\.(\d+) or newer", readme).groups()
    assert engine.version >= (engine_minimum, 0)
    compose = engine.docker("compose", "version", "--short").stdout.strip()
    assert tuple(map(int, compose.split(".")[:2])) >= tuple(map(int, compose_minimum))


def test_a_fresh_debian_machine_bakes_with_the_readmes_commands(engine, images):
    readme = (TEMPLATE / "README.md").read_text()
    section = readme.split("## The two commands", 1)[1]
    bake_block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    # The bake; starting the stack is what the rest of this tier proves.
    commands = [line for line in bake_block.splitlines() if "docker compose" not in line]
    script = [
        "set -e",
        # What the README says a fresh Debian machine lacks.
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends python3-venv git openssl",
        "cp -r /template /django-ha && cd /django-ha",
        *commands,
        "cd ~/sites/community_board && test -f docker-compose.yml && test -s secrets/DB_PASSWORD",
        # The answers and the commit, for `cruft update`.
        "grep -q '\"use_apache\": true' .cruft.json",
    ]
    certificates = standins.HOST_CERTIFICATES / "ca-certificates.crt"
    engine.docker(
        "run",
        "--rm",
        "--network=host",
        f"--volume={TEMPLATE}:/template:ro",
        # This machine only: its outbound TLS is intercepted.
        f"--volume={certificates}:/host-ca.crt:ro",
        "--env=PIP_CERT=/host-ca.crt",
        "django-ha/debian:trixie",
        "bash",
        "-c",
        "\n".join(script),
        timeout=600,
    )


def troubles_in_logs(stack, windows):
    """Each service's log lines that say something went wrong in each time
    window ("--since X --until Y"), to explain a failure that happened then."""
    services = stack.compose("config", "--services").stdout.split()
    troubles = []
    for window in windows:
        for service in services:
            log = stack.compose("logs", "--no-color", "--timestamps", *window.split(), service)
            heading = f"\n--- {service}, {window}: lines that say something went wrong ---"
            troubles += [heading, *trouble(log.stdout)]
    return "\n".join(troubles)


def windows_of_failed_checks(printed):
    """The time windows that check_stack.py printed for its failed checks."""
    return re.findall(r"its logs: docker compose logs --timestamps (.+)", printed)


# A stack with one web server runs every check of the request flow and, of
# the failover scenarios, the one its single web server changes: an
# instance of it killed, the other left to serve. Every other scenario
# happens behind the web servers (replicas stopped, frozen, restarted in
# turn; the database restarting or away; overload) or in front of them
# (HAProxy crashing): the stack with both runs those, each web server
# carrying part of the load through the same config as when alone.
ONLY_WITH_ONE_WEB_SERVER = [CHECKS.failover_when_a_web_server_is_killed]


def test_the_stack_passes_its_own_checks_with_failover(stack, shipped_driver, capsys):
    checks = CHECKS.chosen_checks(shipped_driver, failover=True)
    if len(shipped_driver.proxies) == 1:
        checks = [
            check
            for check in checks
            if not check.__name__.startswith("failover_") or check in ONLY_WITH_ONE_WEB_SERVER
        ]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        failed = CHECKS.run_checks(shipped_driver, checks)
    with capsys.disabled():
        proxies = "+".join(shipped_driver.proxies)
        timings = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in stack.timings.items())
        print(f"\n[{proxies}] {timings}\n{printed.getvalue()}")
    windows = windows_of_failed_checks(printed.getvalue())
    assert failed == 0, printed.getvalue() + troubles_in_logs(stack, windows)


# Each web server's graceful reload, as `docker compose kill -s` sends it to
# the server's first process (the config read again, requests in flight
# finished by the old workers), and the name its processes run under.
RELOADS = {"nginx": ("SIGHUP", "(nginx)"), "apache": ("SIGUSR1", "(httpd)")}


def web_server_workers(stack, name):
    """The process IDs of a web server's workers: its first process's
    children that run the server (the kernel's table: no tool needed)."""
    table = stack.compose("exec", "-T", name, "sh", "-c", "cat /proc/[0-9]*/stat || true")
    rows = [line.split() for line in table.stdout.splitlines()]
    return {row[0] for row in rows if row[3] == "1" and row[1] == RELOADS[name][1]}


def test_no_request_fails_while_the_web_servers_reload_again_and_again(
    stack, shipped_driver, capsys
):
    """A web server closes its idle connections when it reloads (Apache
    whenever the replicas change), and HAProxy must never have sent a
    request on one just then. Graceful reloads for 8 s under a busy load:
    each opens that race for a moment."""
    proxies = shipped_driver.proxies
    workers = {name: web_server_workers(stack, name) for name in proxies}
    reloads, since = 0, CHECKS.logs_time()
    with CHECKS.Load(shipped_driver, clients=8, post_every=2) as load:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            for name in proxies:
                stack.compose("kill", "--signal", RELOADS[name][0], name)
                reloads += 1
            load.run_for(0.2)
    figures = {"reloads": reloads, **assert_no_failed_request(stack, load, since)}
    assert figures["posts saved twice"] == 0, figures
    CHECKS.seconds_until_all_up(shipped_driver, timeout=5)
    for name, before in workers.items():
        assert not before & web_server_workers(stack, name), f"{name} never replaced its workers"
    with capsys.disabled():
        print(f"\n[{'+'.join(proxies)}] web servers reloading: {figures}")


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_shell_in_any_container_needs_no_settings(stack):
    # `docker compose run <service> sh`: the entrypoint sets nothing up, so
    # even an empty required variable does not stop it.
    required = {"app": "DJANGO_SECRET_KEY", "haproxy": "HAPROXY_PORT", "backup": "DB_HOST"}
    required |= {proxy: f"{proxy.upper()}_PORT" for proxy in proxies_of(stack.project)}
    for service, variable in required.items():
        shell = stack.compose(
            "run", "--rm", "--no-deps", "--env", f"{variable}=", service, "sh", "-c", "echo a shell"
        )
        assert shell.stdout.strip().endswith("a shell"), (service, shell.stdout, shell.stderr)


# Hostile clients, each attack from an address of its own (a PROXY protocol
# header, checks/compose.yml) while an honest reader reads from another. The
# limits are HAProxy's and the app's, whatever the web servers behind: the
# stack with both runs them, as `check_stack.py --abuse` would.
@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
@pytest.mark.parametrize("attack", CHECKS.ABUSE, ids=lambda attack: attack.__name__)
def test_honest_clients_are_served_while_one_address_attacks(shipped_driver, attack, capsys):
    figures = attack(shipped_driver)
    with capsys.disabled():
        details = ", ".join(f"{name} {value}" for name, value in figures.items())
        print(f"\n[Docker] {attack.__name__}: {details}")


# What reaches a replica, and what is believed from a client -------------------

# A stand-in for every app replica, in the app's own image on the app network
# under the replicas' name: it logs each request's head as one JSON string,
# then answers 200 ("record"), or closes the connection unanswered ("die"), as
# a replica that dies with a request in hand, which it may have run already.
STAND_IN_REPLICA = r"""
import json, socket, sys, uuid
port, mode = int(sys.argv[1]), sys.argv[2]
with socket.create_server(("", port)) as listener:
    while True:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and (chunk := connection.recv(65536)):
                head += chunk
            if b"\r\n\r\n" in head:
                print(json.dumps(head.partition(b"\r\n\r\n")[0].decode("latin-1")), flush=True)
                # A page named "public" is answered public for a minute;
                # "cookie", with a new cookie too.
                target = head.split(b" ", 2)[1]
                extra = b"Cache-Control: public, max-age=60\r\n" * (b"public" in target)
                extra += b"Set-Cookie: r=%s\r\n" % uuid.uuid4().hex.encode() * (b"cookie" in target)
                if mode == "record":
                    connection.sendall(b"HTTP/1.1 200 OK\r\n%sContent-Length: 0\r\n\r\n" % extra)
"""


def app_image(stack, driver):
    """The image the app replicas run (Python, and nothing of the stack's)."""
    inspect = ("inspect", "--format", "{{.Image}}", driver.containers("app")[0])
    return stack.engine.docker(*inspect).stdout.strip()


@contextlib.contextmanager
def replicas_replaced(stack, driver, mode):
    """Every app replica stopped and two stand-ins serving under their name
    (somewhere a request could be sent again), once each web server has sent
    them a request; yields what they have logged so far. Afterwards the
    replicas are back, and every web server serves."""
    names = [f"{stack.name}-stand-in-replica-{number}" for number in (1, 2)]
    # Where the web servers send the app's requests.
    port = driver.config["services"][driver.proxies[0]]["environment"]["BACKEND_PORT"]
    image = app_image(stack, driver)
    stack.compose("stop", "app")
    try:
        network = ["--network", f"{stack.name}_app", "--network-alias", "app"]
        command = ["python", "-c", STAND_IN_REPLICA, port, mode]
        for name in names:
            stack.engine.docker("run", "--detach", "--name", name, *network, image, *command)

        def heads(*of):
            logs = [stack.engine.docker("logs", name).stdout for name in of or names]
            return [json.loads(line) for log in logs for line in log.splitlines()]

        for proxy in driver.proxies:
            marker = CHECKS.unique(f"probe-{proxy}")

            def reached_both(proxy=proxy, marker=marker):
                CHECKS.fetch(driver, proxy, f"/?{marker}", headers=CHECKS.as_haproxy_would(driver))
                return all(any(marker in head for head in heads(name)) for name in names)

            CHECKS.wait_until(reached_both, f"{proxy} never reached both stand-ins", 30, 0.2)
        yield heads
    finally:
        stack.engine.docker("rm", "--force", *names, check=False)
        stack.compose("start", "app")
        for container in driver.replicas:
            driver.wait_until_healthy(container)
        for proxy in driver.proxies:

            def serves(proxy=proxy):
                headers = CHECKS.as_haproxy_would(driver)
                return CHECKS.fetch(driver, proxy, "/readyz", headers=headers).status_code == 200

            CHECKS.wait_until(serves, f"{proxy} did not find the replicas again", 30, 0.5)


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_post_that_reached_a_replica_is_never_sent_again(stack, shipped_driver):
    """Whatever a web server retries (nginx even passes a request on again
    after its peers changed, @resend), a POST that reached a replica may
    have run there: it gets a 502 and goes nowhere else."""
    with replicas_replaced(stack, shipped_driver, "die") as heads:
        for proxy in shipped_driver.proxies:
            marker = CHECKS.unique("once")
            answer = CHECKS.fetch(
                shipped_driver,
                proxy,
                f"/posts/new/?{marker}",
                method="POST",
                data={"title": "once"},
                headers=CHECKS.as_haproxy_would(shipped_driver),
                timeout=30,
            )
            sent = [head for head in heads() if marker in head]
            assert (proxy, answer.status_code, len(sent)) == (proxy, 502, 1), sent


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_the_app_hears_the_clients_address_from_haproxy_alone(stack, shipped_driver):
    """Whatever a client claims about itself (an address, a host, a scheme)
    never reaches the app: it gets exactly one address, the client's, in
    X-Forwarded-For, and HAProxy's scheme, through every web server."""
    claims = {**CHECKS.CLAIMS, "X-Forwarded-Proto": "http"}
    sent = {}
    with replicas_replaced(stack, shipped_driver, "record") as heads:
        # HAProxy's round robin: each web server in turn.
        for _ in range(2 * len(shipped_driver.proxies)):
            address, marker = CHECKS.new_client(shipped_driver), CHECKS.unique("claims")
            answer = CHECKS.fetch(
                shipped_driver, path=f"/?{marker}", headers=claims, address=address
            )
            assert answer.status_code == 200, answer.text[:200]
            sent[marker] = address
        logged = heads()
    for marker, address in sent.items():
        (head,) = [head for head in logged if marker in head]
        fields = [line.partition(":") for line in head.split("\r\n")[1:]]
        fields = {name.strip().lower(): value.strip() for name, _, value in fields}
        assert fields["x-forwarded-for"] == address, head
        assert fields["x-forwarded-proto"] == "https", head
        assert CHECKS.SPOOFED not in head and "evil.example" not in head, head


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_web_server_keeps_a_public_answer_but_never_one_that_sets_a_cookie(stack, shipped_driver):
    """Whatever the app marks it: stand-ins answer a page public for a
    minute, with or without a new cookie each time. Each web server keeps
    the first and answers it again; the second it passes on every time, so
    no reader ever gets another's cookie."""
    headers = CHECKS.as_haproxy_would(shipped_driver)
    with replicas_replaced(stack, shipped_driver, "record") as heads:
        for proxy in shipped_driver.proxies:
            public, cookie = CHECKS.unique("public"), CHECKS.unique("public-cookie")
            answers = {
                marker: [
                    CHECKS.fetch(shipped_driver, proxy, f"/?{marker}", headers=headers)
                    for _ in range(3)
                ]
                for marker in (public, cookie)
            }
            reached = Counter(marker for head in heads() for marker in answers if marker in head)
            assert reached[public] == 1, f"{proxy} passed a kept page on {reached[public]} times"
            assert CHECKS.from_the_cache(answers[public][-1]), answers[public][-1].headers
            assert reached[cookie] == 3, f"{proxy} kept a page that sets a cookie"
            given = {answer.headers["Set-Cookie"] for answer in answers[cookie]}
            assert len(given) == 3, f"{proxy} gave one cookie to two readers: {given}"


# A client on the edge network, which HAProxy does not trust: it claims to be
# another in a PROXY protocol header (version 1, text), and prints the answer.
UNTRUSTED_CLIENT = r"""
import socket, sys
host, port, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with socket.create_connection((host, port), timeout=10) as connection:
    connection.sendall(
        b"PROXY TCP4 198.18.0.1 10.0.0.1 40000 80\r\n"
        + f"GET /?q={marker} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    )
    print(connection.recv(4096).decode("latin-1").partition("\r\n")[0])
"""


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_proxy_protocol_header_from_an_untrusted_address_is_refused(stack, shipped_driver):
    """HAProxy believes a PROXY header only from the addresses it was told
    to (here this machine's gateway, checks/compose.yml): a container beside
    it that claims another's address gets 400, and reaches nothing."""
    marker = CHECKS.unique("proxied")
    port = shipped_driver.config["services"]["haproxy"]["environment"]["HAPROXY_PORT"]
    network = ["--network", f"{stack.name}_edge"]
    command = ["python", "-c", UNTRUSTED_CLIENT, "haproxy", port, marker]
    image = app_image(stack, shipped_driver)
    answer = stack.engine.docker("run", "--rm", *network, image, *command).stdout
    assert answer.startswith("HTTP/1.1 400 "), answer
    CHECKS.request_with_marker(shipped_driver, "haproxy", CHECKS.unique("after"), {})
    assert marker not in shipped_driver.app_logs()


# Least privilege, as the running containers show it ---------------------------

# What each container's first process may do, from the kernel's own account.
PROBE = (
    "id -u; grep -E '^(CapEff|NoNewPrivs):' /proc/1/status; "
    "touch /probe 2>&1 || true; awk '$2 == \"00000000\"' /proc/net/route | wc -l"
)


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_every_container_runs_unprivileged_on_a_read_only_root(stack):
    services = stack.compose("ps", "--services", "--status", "running").stdout.split()
    assert {"db", "app", "haproxy", *proxies_of(stack.project)} <= set(services)
    for service in services:
        probe = stack.compose("exec", "-T", service, "sh", "-c", PROBE).stdout.splitlines()
        uid, capabilities, no_new_privileges, touched, default_routes = probe
        assert uid != "0", f"{service} runs as root"
        assert capabilities.split() == ["CapEff:", "0000000000000000"], (service, capabilities)
        assert no_new_privileges.split() == ["NoNewPrivs:", "1"], (service, no_new_privileges)
        assert "Read-only file system" in touched, (service, touched)
        # Only the edge, alerts and mail networks reach out: a container on
        # the internal networks alone has no route off them at all.
        reaches_out = service in (
            "app",
            "haproxy",
            "acme",
            "prometheus",
            "alertmanager",
            *proxies_of(stack.project),
        )
        assert (default_routes != "0") == reaches_out, (service, default_routes)


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_every_tier_logs_each_request_as_one_json_object_named_alike(shipped_driver):
    """docker-compose.yml sets LOG_FORMAT=json: HAProxy's, each web server's,
    Gunicorn's and Django's lines parse, and name the same request alike,
    whatever a client puts in what they log."""
    driver = shipped_driver
    marker = f"json-{secrets.token_hex(4)}"
    # A client that tries to write fields of its own into the lines.
    forger = {"User-Agent": 'x", "status": 999, "request_id": "forged\\'}
    response = CHECKS.fetch(driver, path=f"/?q={marker}", headers=forger)
    assert response.status_code == 200, response.status_code
    web_servers = {name: partial(driver.server_logs, name) for name in driver.proxies}
    # Each web server once directly (as HAProxy would say, over HTTPS), so
    # that each one's format is read.
    for name in driver.proxies:
        direct = CHECKS.fetch(driver, name, f"/?q={marker}-{name}", headers=CHECKS.FROM_HTTPS)
        assert direct.status_code == 200, (name, direct.status_code)
        line = json.loads(CHECKS.logged_line(web_servers[name], f"{marker}-{name}", name))
        assert (line["service"], line["path"], line["status"]) == (
            name,
            f"/?q={marker}-{name}",
            200,
        )
        assert isinstance(line["duration_ms"], int) and line["client"], line

    def through(logs, tier):
        """The one line of `logs` for the request through HAProxy."""
        # HAProxy's JSON writes a slash as \\/, which JSON allows.
        return json.loads(CHECKS.logged_line(logs, f'{marker}"', tier))

    lines = {"haproxy": through(partial(driver.server_logs, "haproxy"), "haproxy")}
    lines["app"] = through(driver.app_logs, "app")
    web = [through(logs, name) for name, logs in web_servers.items() if f'{marker}"' in logs()]
    assert len(web) == 1, web
    lines[web[0]["service"]] = web[0]
    for tier, line in lines.items():
        assert line["service"] == tier and line["request_id"] == response.headers["X-Request-ID"]
        assert line.get("user_agent", forger["User-Agent"]) == forger["User-Agent"], line
        assert (line["method"], line["path"], line["status"]) == ("GET", f"/?q={marker}", 200)
        assert isinstance(line["duration_ms"], int) and line["time"], (tier, line)
    missing = CHECKS.fetch(driver, path=f"/{marker}/")
    django = json.loads(CHECKS.logged_line(driver.app_logs, f"Not Found: /{marker}/", "app"))
    assert django["request_id"] == missing.headers["X-Request-ID"] and django["level"] == "WARNING"


# Metrics and alerts: the monitoring profile, up in the stack with every proxy


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_the_alert_rules_pass_their_unit_tests_in_the_prometheus_image(stack):
    """As docs/monitoring.md says to run them, in the images the profile runs."""
    blackbox = "--config.file=/etc/blackbox_exporter/blackbox.yml"
    for service, command, success in (
        (
            "prometheus",
            ["promtool", "check", "config", "/etc/prometheus/prometheus.yml"],
            "SUCCESS",
        ),
        ("prometheus", ["promtool", "test", "rules", "/etc/prometheus/alerts.test.yml"], "SUCCESS"),
        (
            "alertmanager",
            ["amtool", "check-config", "/etc/alertmanager/alertmanager.yml"],
            "SUCCESS",
        ),
        ("blackbox-exporter", ["/bin/blackbox_exporter", "--config.check", blackbox], "file is ok"),
    ):
        result = stack.compose(
            "run",
            "--rm",
            "--no-deps",
            "--entrypoint",
            command[0],
            service,
            *command[1:],
            check=False,
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert success in result.stdout + result.stderr, (command, result.stdout, result.stderr)


def get_json(url):
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_for(what, condition, timeout):
    """Seconds until condition() is true; fails after `timeout` seconds."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"no {what} within {timeout} s"
        time.sleep(1)
    return time.monotonic() - started


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_every_tier_is_scraped_and_a_stopped_replica_raises_its_alert_until_it_is_back(
    stack, shipped_driver, capsys
):
    prometheus = f"http://127.0.0.1:{shipped_driver.published('prometheus', 9090)}"
    alertmanager = f"http://127.0.0.1:{shipped_driver.published('alertmanager', 9093)}"
    replicas = len(shipped_driver.replicas)

    exporters = ["nginx", "apache", "mysql", "node", "blackbox"]
    jobs = ["alertmanager", "haproxy", "prometheus", *exporters] + ["app"] * replicas
    # What each exporter reads, read: a server's status, the backups' state,
    # the disk, the site over HTTPS and its certificate.
    readings = [
        "nginx_up == 1",
        "apache_up == 1",
        "mysql_up == 1",
        "mysql_global_variables_max_connections > 0",
        "backup_last_dump_timestamp_seconds > 0",
        'node_filesystem_size_bytes{mountpoint="/backups"} > 0',
        "probe_success == 1",
        "probe_ssl_earliest_cert_expiry > time()",
    ]

    def targets():
        found = get_json(f"{prometheus}/api/v1/targets?state=active")["data"]["activeTargets"]
        return [(target["labels"]["job"], target["health"]) for target in found]

    def read(query):
        found = get_json(f"{prometheus}/api/v1/query?query={quote(query)}")["data"]["result"]
        return len(found) == 1

    def unread():
        """The targets Prometheus does not scrape, and the readings it lacks."""
        up = targets()
        missing = [f"{job} {health}" for job, health in up if health != "up"]
        if sorted(job for job, _ in up) != sorted(jobs):
            missing.append(f"jobs {sorted(job for job, _ in up)}")
        return missing + [query for query in readings if not read(query)]

    def alerting():
        alerts = get_json(f"{alertmanager}/api/v2/alerts?active=true")
        return {alert["labels"]["alertname"] for alert in alerts}

    try:
        up = wait_for("target up", lambda: not unread(), timeout=60)
    except AssertionError:
        raise AssertionError(f"not read after 60 s: {unread()}") from None
    # An earlier test on this stack replaced its replicas and may have
    # raised the alert: with every replica answering, it must clear first.
    earlier = wait_for("earlier alert cleared", lambda: "AppReplicaMissing" not in alerting(), 120)
    shipped_driver.stop_replica(0)
    try:
        fired = wait_for("AppReplicaMissing", lambda: "AppReplicaMissing" in alerting(), 150)
    finally:
        shipped_driver.start_replica(0)
    cleared = wait_for("clear", lambda: "AppReplicaMissing" not in alerting(), timeout=150)
    with capsys.disabled():
        print(
            f"\n[monitoring] every target up after {up:.0f} s (an earlier alert cleared after"
            f" {earlier:.0f} s); a stopped replica's alert in Alertmanager after {fired:.0f} s,"
            f" cleared {cleared:.0f} s after it was back"
        )


def test_no_secret_shows_in_docker_inspect_or_any_process_environment(stack, shipped_driver):
    folder = stack.project / "secrets"
    # Those with a value (EMAIL_PASSWORD is empty until its owner fills it in).
    secrets = {path.name: path.read_text() for path in folder.iterdir() if path.stat().st_size}
    ids = stack.compose("ps", "--quiet").stdout.split()
    inspected = stack.engine.docker("inspect", *ids).stdout
    for service in stack.compose("ps", "--services", "--status", "running").stdout.split():
        # Every process's environment, as the service's user reads it (all
        # its servers run as that user; processes that end meanwhile skipped).
        script = 'for f in /proc/[0-9]*/environ; do cat "$f" 2>/dev/null; done; true'
        environments = stack.compose("exec", "-T", service, "sh", "-c", script).stdout
        assert "PATH=" in environments, service
        for name, value in secrets.items():
            assert value not in environments, (service, name)
    for name, value in secrets.items():
        assert value not in inspected, name
    # ... while the services do use them: the stats page wants its password.
    password = secrets["HAPROXY_STATS_PASSWORD"]
    assert CHECKS.fetch(shipped_driver, "stats", auth=("admin", password)).status_code == 200


def rewrite_secret(secret, text):
    """A secret's file written anew in place, as the README does it: the
    container mounts this very file, and would not see a new one."""
    secret.chmod(0o600)
    secret.write_text(text)
    secret.chmod(0o444)


# HAProxy's own reload in its running container (docs/runbook.md).
HAPROXY_RELOAD = ("exec", "-T", "haproxy", "/entrypoint.sh", "reload")


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_new_app_password_rolls_out_under_load_with_no_failed_request_then_the_old_one_stops(
    stack, shipped_driver, capsys
):
    """docs/least-privilege.md, "Database users": a new password in secrets/, users.sh
    (the old one stays valid beside it), ./deploy.sh, users.sh forget-old."""
    secret = stack.project / "secrets/DB_PASSWORD"
    old = secret.read_text()
    since = CHECKS.logs_time()
    users = ("exec", "-T", "db", "/docker-entrypoint-initdb.d/users.sh")
    with CHECKS.Load(shipped_driver) as load:
        load.run_for(1)
        rewrite_secret(secret, secrets.token_hex(32))
        stack.compose(*users)
        deploy = stack.run("sh", "deploy.sh")
        stack.compose(*users, "forget-old")
        load.run_for(1)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    figures = assert_no_failed_request(stack, load, since)
    CHECKS.check_each_database_user_may_do_its_job_and_no_more(shipped_driver)
    app_user, _ = shipped_driver.database_users()["APP"]
    status, output = shipped_driver.sql_as(app_user, old, "SELECT 1")
    assert status != 0 and "ERROR 1045" in output, output
    with capsys.disabled():
        print(f"\n[{'+'.join(proxies_of(stack.project))}] app password rotated: {figures}")


def kept_alive(driver):
    """An HTTPS connection to the site that has had one answer and stays
    open, idle, as a browser keeps one for its next request."""
    connection = http.client.HTTPSConnection(driver.domain, timeout=CHECKS.TIMEOUT)
    connection.sock = CHECKS.open_socket(driver, "haproxy")
    connection.request("GET", "/healthz")
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200 and answer.getheader("Connection") != "close", answer.headers
    return connection


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_new_stats_password_is_taken_by_a_reload_under_load_with_no_failed_request(
    stack, shipped_driver, capsys
):
    """docs/runbook.md: a new password in secrets/, then `entrypoint.sh
    reload` in the running HAProxy. The old password is refused at once, and
    HAProxy, the site's one front door, never restarts."""
    secret = stack.project / "secrets/HAPROXY_STATS_PASSWORD"
    old, new = secret.read_text(), secrets.token_hex(32)
    before = started(stack, ["haproxy"])

    def stats_page(password):
        return CHECKS.fetch(shipped_driver, "stats", auth=("admin", password)).status_code

    since = CHECKS.logs_time()
    with CHECKS.Load(shipped_driver) as load:
        load.run_for(1)
        rewrite_secret(secret, "")
        refused = stack.compose(*HAPROXY_RELOAD, check=False)
        kept = stats_page(old)
        rewrite_secret(secret, new)
        load.run_for(1)
        idle = kept_alive(shipped_driver)
        reload = stack.compose(*HAPROXY_RELOAD)
        load.run_for(2)
        # A request on a connection the old process held idle through the
        # reload: answered, then the connection closed, not closed under it.
        idle.request("GET", "/healthz")
        after = idle.getresponse()
        assert (after.status, after.getheader("Connection")) == (200, "close"), after.headers
    # An empty password is refused before HAProxy is asked anything.
    assert refused.returncode != 0
    assert "HAPROXY_STATS_PASSWORD_FILE must name a readable, non-empty file" in refused.stderr
    assert kept == 200
    assert "reloading on the checked config" in reload.stdout, reload.stdout + reload.stderr
    figures = assert_no_failed_request(stack, load, since)
    assert started(stack, ["haproxy"]) == before, "HAProxy restarted"
    assert (stats_page(new), stats_page(old)) == (200, 401)
    with capsys.disabled():
        print(f"\n[{'+'.join(proxies_of(stack.project))}] stats password reloaded: {figures}")


# Scaling and deploying, under a steady load of GETs and POSTs ----------------


def started(stack, services):
    """When each service's containers started, and how often they restarted."""
    ids = [i for service in services for i in stack.compose("ps", "-q", service).stdout.split()]
    fields = "{{.Name}} {{.State.StartedAt}} {{.RestartCount}}"
    return set(stack.engine.docker("inspect", "--format", fields, *ids).stdout.splitlines())


def page_requests(stack, container):
    """How many page requests (not healthchecks) a replica's access log holds."""
    log = stack.engine.docker("logs", container).stdout
    lines = (CHECKS.fields(line) for line in log.splitlines())
    return sum(1 for logged in lines if (logged.get("method"), logged.get("path")) == ("GET", "/"))


def assert_no_failed_request(stack, load, since):
    """No request of `load` (on check_stack's driver for `stack`) failed, and
    no acknowledged post was lost; else what the services logged from `since`
    on: what a rare failure leaves to go by."""
    figures = load.figures()
    window = f"--since {since} --until {CHECKS.logs_time(ahead=1)}"
    failed = load.failed_gets or load.failed_posts or figures["saved posts lost"]
    assert not failed, f"{figures}{troubles_in_logs(stack, [window])}"
    return figures


def scale_app(stack, replicas):
    """As the README scales: no proxy or database restarted, no replica recreated."""
    stack.compose(
        "up", "--detach", "--no-deps", "--no-recreate", "--scale", f"app={replicas}", "app"
    )


def test_scale_out_reaches_every_new_replica_without_restarting_a_proxy(
    stack, shipped_driver, capsys
):
    proxies = ["haproxy", *proxies_of(stack.project)]
    before = started(stack, proxies)
    old = set(shipped_driver.containers("app"))
    since = CHECKS.logs_time()
    with CHECKS.Load(shipped_driver) as load:
        load.run_for(1)
        scale_app(stack, 4)
        new = set(shipped_driver.containers("app")) - old
        for container in new:
            shipped_driver.wait_until_healthy(container)
        reached = CHECKS.wait_until(
            lambda: all(page_requests(stack, container) for container in new),
            "a new replica got no request",
            timeout=10,
            interval=0.2,
        )
        scale_app(stack, 2)
        load.run_for(2)
    assert set(shipped_driver.containers("app")) == old, "scaling in did not remove the new ones"
    assert started(stack, proxies) == before, "a web server or HAProxy was restarted"
    figures = assert_no_failed_request(stack, load, since)
    with capsys.disabled():
        print(
            f"\n[{'+'.join(proxies[1:])}] scaled 2 -> 4 -> 2: every new replica served within "
            f"{reached:.2f} s of being healthy; {figures}"
        )


def test_a_deploy_rolls_new_code_onto_every_replica_with_no_failed_request(
    stack, shipped_driver, capsys
):
    base = stack.project / "django/templates/base.html"
    base.write_text(base.read_text().replace("</footer>", "release-two</footer>"))
    old = set(shipped_driver.containers("app"))
    since = CHECKS.logs_time()
    with CHECKS.Load(shipped_driver) as load:
        load.run_for(1)
        deploy = stack.run("sh", "deploy.sh")
        load.run_for(1)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    replicas = shipped_driver.containers("app")
    assert len(replicas) == 2 and not old & set(replicas), replicas
    built = stack.engine.docker("image", "inspect", "--format", "{{.Id}}", f"{stack.name}-app")
    images = stack.engine.docker("inspect", "--format", "{{.Image}}", *replicas).stdout.split()
    assert set(images) == {built.stdout.strip()}, "a replica runs an old image"
    for _ in range(4):
        assert "release-two" in CHECKS.fetch(shipped_driver).text
    figures = assert_no_failed_request(stack, load, since)
    with capsys.disabled():
        print(f"\n[{'+'.join(proxies_of(stack.project))}] deploy: {figures}")


# The runbook's rollouts (docs/runbook.md), under load ---------------------------


# On the stack whose only web server is nginx: were its two instances ever
# out at once, the site would have nothing to serve with.
@pytest.mark.parametrize("stack", ["nginx"], indirect=True)
def test_a_web_server_config_edit_rolls_out_one_instance_at_a_time_with_no_failed_request(
    stack, shipped_driver, capsys
):
    """`./deploy.sh nginx`, as the runbook says: each instance replaced by one
    on the new config while the other serves."""
    marker = CHECKS.unique("edited")
    config = stack.project / "nginx/nginx.conf"
    config.write_text(f"# {marker}\n{config.read_text()}")
    old = set(shipped_driver.containers("nginx"))
    since = CHECKS.logs_time()
    with CHECKS.Load(shipped_driver) as load:
        load.run_for(1)
        deploy = stack.run("sh", "deploy.sh", "nginx")
        load.run_for(1)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert deploy.stdout.count("replacing nginx instance") == len(old), deploy.stdout
    new = shipped_driver.containers("nginx")
    assert len(new) == len(old) and not old & set(new), (old, new)
    for container in new:
        template = stack.engine.docker("exec", container, "cat", "/etc/nginx/templates/nginx.conf")
        assert marker in template.stdout, f"{container} runs the old config"
    assert CHECKS.instance_states(shipped_driver, "nginx") == ["UP"] * len(old)
    figures = assert_no_failed_request(stack, load, since)
    with capsys.disabled():
        print(f"\n[runbook] nginx config rolled out: {figures}")


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_minor_database_upgrade_recreating_its_container_fails_no_get_and_loses_no_post(
    stack, shipped_driver, capsys
):
    """`docker compose up -d db` with a new image tag recreates the database
    container on its volume; here the same image, recreated. The app waits
    for it (docs/limits.md, "The database away"), as for a restart."""
    old = shipped_driver.containers("db")
    recreate = partial(stack.compose, "up", "--detach", "--force-recreate", "db")
    figures = CHECKS.database_away_under_load(shipped_driver, recreate, "database recreate")
    assert shipped_driver.containers("db") != old, "the database was not recreated"
    with capsys.disabled():
        print(f"\n[runbook] database recreated: {figures}")


def global_status(driver, *names):
    """MySQL's global status variables `names`, read as the monitoring user."""
    user, password = driver.database_users()["MONITOR"]
    wanted = ", ".join(f"'{name}'" for name in names)
    query = f"SHOW GLOBAL STATUS WHERE Variable_name IN ({wanted})"
    status, output = driver.sql_as(user, password, query, in_database=False)
    assert status == 0, output
    return {
        name: int(value) for name, value in (line.split("\t") for line in output.splitlines()[1:])
    }


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_five_replicas_under_overload_hold_no_more_database_connections_than_sized_for(
    stack, shipped_driver, capsys
):
    replicas = 5
    environment = shipped_driver.config["services"]["app"]["environment"]
    per_replica = int(environment["GUNICORN_WORKERS"]) * int(environment["GUNICORN_THREADS"])
    (limit,) = [
        int(arg.split("=")[1])
        for arg in shipped_driver.config["services"]["db"]["command"]
        if arg.startswith("--max-connections=")
    ]
    scale_app(stack, replicas)
    try:
        for container in shipped_driver.containers("app"):
            shipped_driver.wait_until_healthy(container)
        figures = CHECKS.overload(shipped_driver, 256)
        used = global_status(
            shipped_driver, "Max_used_connections", "Connection_errors_max_connections"
        )
    finally:
        scale_app(stack, 2)
    # One connection per thread (local_extensions.sizing), and the spare
    # for the backups, the monitoring user and this check.
    sized = replicas * per_replica + local_extensions.DATABASE_SPARE
    assert used["Connection_errors_max_connections"] == 0, used
    assert used["Max_used_connections"] <= min(sized, limit), (used, sized, limit)
    with capsys.disabled():
        print(
            f"\n{replicas} replicas under 256 connections at once: at most "
            f"{used['Max_used_connections']} database connections (sized for {sized}, "
            f"MySQL allows {limit}); {figures}"
        )


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_deploy_whose_replicas_fail_their_healthcheck_leaves_the_old_ones_serving(
    stack, shipped_driver
):
    config = stack.project / "django/gunicorn.conf.py"
    working = config.read_text()
    config.write_text(working + '\nraise RuntimeError("a broken release")\n')
    old = set(shipped_driver.containers("app"))
    try:
        since = CHECKS.logs_time()
        with CHECKS.Load(shipped_driver) as load:
            load.run_for(1)
            deploy = stack.run("sh", "deploy.sh")
            load.run_for(1)
    finally:
        config.write_text(working)
    assert deploy.returncode != 0
    assert "a new replica failed its healthcheck; the old replicas keep serving" in deploy.stderr
    assert set(shipped_driver.containers("app")) == old
    assert_no_failed_request(stack, load, since)


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_deploy_interrupted_while_new_replicas_start_leaves_the_old_ones_serving(
    stack, shipped_driver, capsys
):
    # Interrupted as CI cancels a job, or Ctrl-C in a terminal: the whole
    # process group gets the signal. TERM here, as a test run started in the
    # background ignores INT, and so would deploy.sh; both go to one trap.
    old = set(shipped_driver.containers("app"))
    since = CHECKS.logs_time()
    with CHECKS.Load(shipped_driver) as load:
        load.run_for(1)
        deploy = subprocess.Popen(  # noqa: S603 (our own arguments)
            ["sh", "deploy.sh"],  # noqa: S607
            cwd=stack.project,
            env=stack.engine.env(**stack.env()),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        lines = []
        for line in deploy.stdout:
            lines.append(line)
            if line.startswith("deploy: starting"):
                time.sleep(2)  # the new replicas are being created and started
                os.killpg(deploy.pid, signal.SIGTERM)
                break
        output = "".join(lines) + deploy.stdout.read()
        assert deploy.wait(timeout=300) == 130, output
        load.run_for(1)
    assert "removing the new replicas, the old ones keep serving" in output, output
    assert set(shipped_driver.containers("app")) == old, output
    # Reads never fail and no acknowledged post is lost. A write that
    # reached a new replica as it was removed may fail (Apache answers 502
    # rather than send it on; seen once in 712 writes): docs/design.md says so.
    figures = load.figures()
    window = f"--since {since} --until {CHECKS.logs_time(ahead=1)}"
    failed = load.failed_gets or figures["saved posts lost"]
    assert not failed, f"{figures}{troubles_in_logs(stack, [window])}"
    with capsys.disabled():
        print(f"\n[{'+'.join(proxies_of(stack.project))}] interrupted deploy: {figures}")


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_new_secret_key_rolled_out_as_the_guide_says_logs_nobody_out(stack, shipped_driver):
    """docs/design.md, "Secrets": the new key first, the old one after it."""
    browser = CHECKS.Browser(shipped_driver)
    user = CHECKS.unique("member")
    assert browser.sign_up(user).status_code == 302
    assert browser.log_in(user).status_code == 302
    guide = (stack.project / "docs/design.md").read_text()
    commands = re.search(r"\{ openssl rand -hex 32;.*?deploy\.sh\n", guide, re.DOTALL).group()
    key = stack.project / "secrets/DJANGO_SECRET_KEY"
    old = key.read_text()
    rolled = stack.run("sh", "-c", commands)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    new, *rest = key.read_text().splitlines()
    assert rest == [old] and new != old
    # Still logged in: the form to write a post, not the log-in page.
    answer = browser.get("/posts/new/", allow_redirects=False)
    assert answer.status_code == 200, (answer.status_code, answer.headers.get("Location"))


def sign_up_with_an_address(driver, prefix):
    """A new member who gave an address at sign-up: (name, address)."""
    member, address = CHECKS.unique(prefix), f"{CHECKS.unique('inbox')}@example.com"
    assert CHECKS.Browser(driver).sign_up(member, address).status_code == 302
    return member, address


def ask_for_a_reset_link(driver, address):
    asked = CHECKS.Browser(driver).submit("/accounts/password_reset/", {"email": address})
    assert asked.headers.get("Location") == "/accounts/password_reset/done/", asked.status_code


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_without_a_mail_server_a_reset_link_is_one_json_line_in_the_apps_log(stack, shipped_driver):
    """docs/mail.md: until EMAIL_URL names a server, each message goes
    to the app's log, one line like every other (LOG_FORMAT=json)."""
    _, address = sign_up_with_an_address(shipped_driver, "member")
    since = CHECKS.logs_time()
    ask_for_a_reset_link(shipped_driver, address)

    def logged():
        log = stack.compose("logs", "--no-log-prefix", "--since", since, "app").stdout
        lines = [json.loads(line) for line in log.splitlines()]  # each one JSON object
        return [line["message"] for line in lines if address in line.get("message", "")]

    CHECKS.wait_until(logged, "the mail is not in the log", 10, 0.5)
    (message,) = logged()
    assert re.search(r"https?://\S+/accounts/reset/\S+/", message), message


# A real SMTP server: aiosmtpd, from this virtualenv, in a container of the
# app's image on the stack's mail network; it prints each message it takes.
MAIL_SERVER_PACKAGES = ("aiosmtpd", "public", "attr", "attrs")


@contextlib.contextmanager
def mail_server(stack, driver):
    """docs/mail.md: EMAIL_URL in .env, ./deploy.sh, with an SMTP server
    on the mail network; yields what it has received so far (one text)."""
    name = f"{stack.name}-mail-server"
    mounts = []
    for package in MAIL_SERVER_PACKAGES:
        folder = os.path.dirname(importlib.import_module(package).__file__)
        mounts += ["--volume", f"{folder}:/mail-server/{package}:ro"]
    command = ["python", "-u", "-m", "aiosmtpd", "--nosetuid", "--listen", "0.0.0.0:2525"]
    command += ["--class", "aiosmtpd.handlers.Debugging"]
    env = stack.project / ".env"
    stack.engine.docker(
        "run", "--detach", "--name", name, "--network", f"{stack.name}_mail",
        *mounts, "--env", "PYTHONPATH=/mail-server", "--entrypoint", command[0],
        app_image(stack, driver), *command[1:],
    )  # fmt: skip
    try:
        env.write_text(f"EMAIL_URL=smtp://{name}:2525\n")
        deploy = stack.run("sh", "deploy.sh")
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        # Nginx learns the new replicas' addresses within 3 s (docs/design.md,
        # "Graceful stops"); a read sent meanwhile to an old one waits 2 s
        # for its connection. A test that times an honest reader starts after.
        time.sleep(3)
        yield lambda: stack.engine.docker("logs", name).stdout
    finally:
        stack.engine.docker("rm", "--force", name, check=False)
        env.unlink(missing_ok=True)


def reset_links(mail, address):
    """The reset links mailed to `address`, in the order sent."""
    messages = mail.split("---------- MESSAGE FOLLOWS ----------")[1:]
    mine = [m for m in messages if re.search(rf"^To: {re.escape(address)}$", m, re.M)]
    return [re.search(r"^https?://\S+/accounts/reset/\S+/$", m, re.M).group() for m in mine]


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_mailed_reset_link_sets_a_new_password_and_strangers_asking_again_send_no_more(
    stack, shipped_driver, capsys
):
    """A member asks for a link; two strangers, each from an address of its
    own, ask for the member's again and again while an honest reader reads.
    The member's inbox gets one link (one per interval, docs/limits.md, "Limits
    per client"), which, followed through the stack, sets a new password."""
    driver = shipped_driver
    member, address = sign_up_with_an_address(driver, "member")
    with mail_server(stack, driver) as mail:
        ask_for_a_reset_link(driver, address)
        CHECKS.wait_until(lambda: reset_links(mail(), address), "no mail came", 30, 0.5)
        strangers = [CHECKS.Browser(driver, CHECKS.attacker(driver)) for _ in range(2)]
        with CHECKS.Reader(driver) as reader:
            for stranger in strangers:
                stranger.get("/accounts/password_reset/").raise_for_status()
            answers = Counter(
                stranger.send("/accounts/password_reset/", {"email": address}).status_code
                for _ in range(10)
                for stranger in strangers
            )
        time.sleep(2)  # a mail sent late would be in by now
        links = reset_links(mail(), address)
    figures = {**reader.figures(), "the strangers' asks got": dict(answers), "links": len(links)}
    reader.assert_served(figures, p99_at_most=1)
    assert answers == {302: 20} and len(links) == 1, figures

    (link,) = links
    public_host = driver.config["services"]["app"]["environment"]["DJANGO_PUBLIC_HOST"]
    assert urlsplit(link).netloc == public_host, link
    browser = CHECKS.Browser(driver)
    form = browser.get(urlsplit(link).path, allow_redirects=False)
    assert form.status_code == 302, form.status_code  # to the form, the token in the session
    new_password = secrets.token_hex(12)
    choose = {"new_password1": new_password, "new_password2": new_password}
    done = browser.submit(form.headers["Location"], choose)
    assert done.headers.get("Location") == "/accounts/reset/done/", done.status_code
    logged_in = CHECKS.Browser(driver).submit(
        "/accounts/login/", {"username": member, "password": new_password}
    )
    assert logged_in.status_code == 302, logged_in.status_code
    # The token is in no log: HAProxy's, each web server's (each asked for
    # the link once more, so that each logged it), the app's.
    path = urlsplit(link).path
    for name in driver.proxies:
        headers = {"Host": driver.domain, **CHECKS.FROM_HTTPS}
        CHECKS.fetch(driver, name, path, headers=headers, allow_redirects=False)
    logs = {name: driver.server_logs(name) for name in ["haproxy", *driver.proxies]}
    logs["app"] = driver.app_logs()
    uid, token = path.split("/")[-3:-1]
    # Each logged the link's path, masked (HAProxy's JSON writes / as \/).
    masked = re.compile(rf"reset\\?/{re.escape(uid)}\\?/\.\.\.\\?/")
    assert [name for name, text in logs.items() if not masked.search(text)] == []
    assert [name for name, text in logs.items() if token in text] == [], "the token was logged"
    with capsys.disabled():
        print(f"\n[{'+'.join(proxies_of(stack.project))}] reset links: {figures}")


# The Kubernetes manifests' pods: the dev overlay with every proxy. The
# server stand-in is MySQL's Debian line (module docstring); Kubernetes runs
# the 8.4 the bake names, which the operator also runs: the db image builds
# FROM the stand-in under that name.
KUBERNETES_ANSWERS = {"kubernetes": True, "python_version": "3.13"}
KUBERNETES_MYSQL = "mysql:8.4"
# Settled in this order on a cluster too (init containers wait for the
# database, the migrations and the app).
KUBERNETES_ORDER = ("db", "migrate", "app", *PROXIES, "haproxy")


def test_the_kubernetes_pods_run_as_their_manifests_say_and_serve_the_site(
    bake, engine, images, tmp_path
):
    # Unprivileged users, read-only roots, no capabilities, emptyDirs for
    # what they write, the static files from init containers, the cluster's
    # DNS from /etc/resolv.conf, probes with their Host: all as written.
    project = bake(**KUBERNETES_ANSWERS)
    built = ComposeProject(engine, project)
    images = ["db", "app", *proxies_of(project), "haproxy"]
    engine.docker("tag", "mysql:9.7", KUBERNETES_MYSQL)
    try:
        built.timed("build", "build", *images)
    finally:
        engine.docker("rmi", KUBERNETES_MYSQL)
    for service in images:
        image = f"{built.name}-{service}"
        engine.docker("tag", image, f"{image}:dev")
    rendered = run([tool("kubectl"), "kustomize", project / "k8s/overlays/dev"]).stdout
    objects = list(yaml.safe_load_all(rendered))
    workloads = {o["metadata"]["name"]: o for o in objects if "template" in o.get("spec", {})}
    assert set(workloads) <= set(KUBERNETES_ORDER), "every pod is started"
    secrets = {path.name: path.read_text() for path in (project / "secrets").iterdir()}
    with Pods(engine, objects, secrets, tmp_path) as pods:
        for name in KUBERNETES_ORDER:
            if name in workloads:
                pods.start(workloads[name])
        http, https = pods.ports["haproxy"][8080], pods.ports["haproxy"][8443]
        host = {"Host": "localhost"}
        redirect = requests.get(
            f"http://127.0.0.1:{http}/", headers=host, allow_redirects=False, timeout=10
        )
        assert (redirect.status_code, redirect.headers["Location"]) == (301, "https://localhost/")
        # Each HAProxy pod made its own self-signed certificate at start:
        # nothing to verify it against.
        site = f"https://127.0.0.1:{https}"
        with warnings.catch_warnings(action="ignore", category=InsecureRequestWarning):
            page = requests.get(f"{site}/", headers=host, timeout=10, verify=False)  # noqa: S501
            assert page.status_code == 200
            css = re.search(r'href="(/static/[^"]+\.css)"', page.text).group(1)
            static = requests.get(site + css, headers=host, timeout=10, verify=False)  # noqa: S501
        assert static.status_code == 200
        assert static.headers["Server"] in {"nginx", "Apache"}, "served by a web server, not Django"


# ACME, against Pebble ----------------------------------------------------------

ACME_DOMAIN = "board.test"
# Pebble beside the stack, as the CA; HAProxy answers to the domain's name
# on the edge network, where Pebble asks for the HTTP-01 challenge.
PEBBLE = f"""
services:
  pebble:
    image: django-ha/pebble
    networks: [edge]
    ports: ["127.0.0.1:{{management}}:15000"]
    volumes: [pebble:/pebble]
  haproxy:
    networks: !override
      edge:
        aliases: [{ACME_DOMAIN}]
  acme:
    environment:
      ACME_DIRECTORY: https://pebble:14000/dir
      LEGO_CA_CERTIFICATES: /pebble/cert.pem
    volumes: [pebble:/pebble:ro]
    depends_on: [pebble]
volumes:
  pebble:
"""


@pytest.fixture(scope="module")
def acme_stack(bake, engine, images):
    answers = {**ANSWERS, **tls_answers("acme"), "domain_name": ACME_DOMAIN}
    management = free_port()
    project = ComposeProject(engine, bake(**answers), extra=PEBBLE.format(management=management))
    with project:
        yield project, management
    assert project.left_behind() == {}


def served_serial(driver, root):
    """The serial of the certificate HAProxy serves, verified against `root`,
    to a client the checks' driver connects (HAProxy believes its PROXY header)."""
    https = driver.ports["haproxy"]
    connection = CHECKS.connect(driver, "127.0.0.1", https)
    return tls.verified(https, ACME_DOMAIN, root, connection)


def pebble_root(stack, management, tmp_path):
    # Pebble's own API, on loopback: what it answers is then checked, as the
    # served certificate must verify against it.
    url = f"https://127.0.0.1:{management}/roots/0"
    with warnings.catch_warnings(action="ignore", category=InsecureRequestWarning):
        answer = requests.get(url, verify=False, timeout=10)  # noqa: S501
    answer.raise_for_status()
    root = tmp_path / "pebble-root.crt"
    root.write_text(answer.text)
    return root


def test_acme_issues_on_first_start_then_renews_under_load_and_survives_restarts(
    acme_stack, shipped_acme_driver, tmp_path, capsys
):
    stack, management = acme_stack
    root = pebble_root(stack, management, tmp_path)
    issued = served_serial(shipped_acme_driver, root)  # from Pebble, for the domain: it verifies
    checks = stack.check_stack()
    assert checks.returncode == 0, checks.stdout + checks.stderr
    since = CHECKS.logs_time()
    with CHECKS.Load(shipped_acme_driver) as load:
        load.run_for(1)
        renewal = stack.compose("exec", "-T", "acme", "/entrypoint.sh", "acme", "renew", "100000")
        load.run_for(1)
    renewed = served_serial(shipped_acme_driver, root)
    figures = assert_no_failed_request(stack, load, since)
    assert renewed != issued, renewal.stdout + renewal.stderr
    stack.compose("restart", "haproxy")
    stack.compose("up", "--wait", "haproxy")
    assert served_serial(shipped_acme_driver, root) == renewed, (
        "the certificate did not survive a restart"
    )
    with capsys.disabled():
        print(f"\n[acme] issued by Pebble at first start; renewal under load: {figures}")


def test_a_failed_acme_order_is_loud_in_the_log_and_the_site_keeps_its_certificate(
    acme_stack, shipped_acme_driver, tmp_path
):
    stack, management = acme_stack
    root = pebble_root(stack, management, tmp_path)
    serving = served_serial(shipped_acme_driver, root)
    # As on a first start, with no certificate from the CA yet, and a CA that
    # refuses the order: here its directory is not found. (An unreachable CA
    # fails the same way, after lego's retries: minutes.)
    stack.compose("exec", "-T", "acme", "rm", "-r", "/var/lib/haproxy/tls/lego/certificates")
    tried = stack.compose(
        "exec",
        "-T",
        "--env",
        "ACME_DIRECTORY=https://pebble:14000/no-such-directory",
        "acme",
        "timeout",
        "20",  # renew-forever never ends: long enough for one failed try
        "/entrypoint.sh",
        "acme",
        "renew-forever",
        check=False,
    )
    assert "acme: FAILED to get a certificate for board.test" in tried.stderr, tried.stderr
    assert served_serial(shipped_acme_driver, root) == serving


# Backups, on a real MySQL ------------------------------------------------------


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_backups_are_private_and_the_healthcheck_tells_the_age_of_the_last_one(
    stack, shipped_driver
):
    (container,) = shipped_driver.containers("backup")
    health = stack.engine.docker("inspect", "--format", "{{json .State.Health}}", container)
    health = json.loads(health.stdout)
    assert health["Status"] == "healthy", health
    assert re.match(r"backup: last good dump \d{8}T\d{6}Z, \d+ s ago", health["Log"][-1]["Output"])
    # A post, then a second dump, which copies the first one's binary logs:
    # every kind of file is there, and the post is in them.
    browser = CHECKS.Browser(shipped_driver)
    assert browser.sign_up(CHECKS.unique("owner")).status_code == 302
    (title,) = CHECKS.write_posts(browser, "kept secret", 1)
    shipped_driver.backup("now")
    listing = stack.compose("exec", "-T", "backup", "find", "/backups", "-printf", "%m %u %p\n")
    assert re.search(r"/binlogs/binlog\.\d+\.cms$", listing.stdout, re.MULTILINE), listing.stdout
    # Every dump is its owner's alone. Others may pass through /backups,
    # not list it, to metrics/, the backups' state for Prometheus: times
    # and sizes (below), readable by all.
    readable = {"/backups": "711", "/backups/metrics": "755"}
    for line in listing.stdout.splitlines():
        mode, owner, path = line.split()
        assert owner == "mysql", line
        if path in readable:
            assert mode == readable[path], line
        elif not path.startswith("/backups/metrics/"):
            assert mode in {"600", "700"}, line
    metrics = stack.compose("exec", "-T", "backup", "cat", "/backups/metrics/backup.prom").stdout
    assert re.fullmatch(r"(# .*\n|backup_\w+ \d+\n)+", metrics), metrics
    # Encrypted before they reach the volume: the post's title is in no file
    # there, and no dump is plain gzip or a log MySQL could read.
    found = stack.compose("exec", "-T", "backup", "grep", "-rl", title, "/backups", check=False)
    assert found.returncode == 1 and found.stdout == "", found.stdout
    files = [line.split()[2] for line in listing.stdout.splitlines() if line.endswith(".cms")]
    for path in files:
        plain = stack.compose("exec", "-T", "backup", "gzip", "--test", path, check=False)
        assert plain.returncode != 0, f"{path} is plain gzip"


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_dump_restores_only_with_the_backups_private_key(stack, shipped_driver, tmp_path):
    shipped_driver.backup("now")
    dump = CHECKS.latest_dump(shipped_driver)
    before = shipped_driver.stored_posts()
    generate = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    wrong = {
        "another key": (
            stack.compose("exec", "-T", "backup", *generate).stdout,
            "not the private key of the certificate the backups are encrypted to",
        ),
        "the certificate itself": (
            (stack.project / "secrets/BACKUP_CERTIFICATE").read_text(),
            "no private key",
        ),
    }
    for name, (text, refusal) in wrong.items():
        shipped_driver.backup_key = tmp_path / "key.pem"
        shipped_driver.backup_key.write_text(text)
        status, output = shipped_driver.restore(dump)
        assert status != 0 and refusal in output, f"{name}: {output}"
        assert shipped_driver.stored_posts() == before, f"{name}: the database changed"


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
@pytest.mark.parametrize("check", CHECKS.BACKUPS, ids=lambda check: check.__name__)
def test_backups_on_mysql(stack, shipped_driver, check, capsys):
    figures = check(shipped_driver)
    with capsys.disabled():
        details = ", ".join(f"{name} {value}" for name, value in (figures or {}).items())
        print(f"\n[Docker, MySQL] {check.__name__}: {details}")


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_backups_keep_the_last_backup_keep_dumps_and_remove_older_ones(stack, shipped_driver):
    before = shipped_driver.backup("list").split()
    for _ in range(3):
        stack.compose(
            "exec", "-T", "--env", "BACKUP_KEEP=2", "backup", "/entrypoint.sh", "backup", "now"
        )
    kept = shipped_driver.backup("list").split()
    assert len(kept) == 2 and min(kept) > max(before, default=""), (before, kept)


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_posts_survive_down_and_up(stack, shipped_driver):
    before = shipped_driver.stored_titles()
    assert before, "the checks saved no post"
    stack.down()
    stack.up()
    assert shipped_driver.stored_titles() == before


# Every tls answer ---------------------------------------------------------------
# The default (self-signed) runs on every stack above, ACME against Pebble:
# here the README's way to trust a self-signed certificate, then the user's
# own certificate on a stack of its own, and no TLS on the IPv6 stack below.
# How HAProxy gets its certificate does not depend on the web servers behind
# it, so those stacks have one proxy choice each. Each runs what every tls
# answer must keep working: the ports, the user flow with CSRF, and HTTPS
# done right where there is HTTPS.
FLOW = [
    CHECKS.check_every_published_port_answers,
    CHECKS.check_a_user_signs_up_logs_in_and_posts,
    CHECKS.check_a_form_without_its_csrf_token_is_refused,
]


@pytest.mark.parametrize("stack", ONE_CHOICE, indirect=True)
def test_a_self_signed_certificate_copied_out_as_the_readme_says_verifies_for_the_domain(
    stack, shipped_driver, tmp_path
):
    site = tmp_path / "site.crt"
    copy = ("exec", "-T", "haproxy", "openssl", "x509", "-in", "/var/lib/haproxy/tls/site.pem")
    site.write_text(stack.compose(*copy).stdout)
    https = shipped_driver.ports["haproxy"]
    connection = CHECKS.connect(shipped_driver, "127.0.0.1", https)
    tls.verified(https, shipped_driver.domain, site, connection)


# The browser walk (README.md's screenshots come from it) -------------------
WINDOWS = {"desktop": (1280, 900), "phone": (390, 844)}
SCREENSHOTS = TEMPLATE / "docs"


class Walk:
    """A member's walk through the board in Chromium, page by page; each page
    is checked as it loads: the stylesheet applied, every resource over
    HTTPS, and nothing in the console."""

    def __init__(self, browser, site):
        self.browser, self.site = browser, site

    def open(self, path):
        self.browser.get(self.site + path)
        return self.checked()

    def click(self, selector):
        """Clicks what `selector` finds and waits until the next page has
        loaded: a page without the mark this one gets. (Selenium's own
        staleness_of asks the old page's node, which chromedriver sometimes
        answers, mid-navigation, with an error that is no staleness.)"""
        self.browser.execute_script("window.walkedAway = true")
        self.browser.find_element(By.CSS_SELECTOR, selector).click()
        WebDriverWait(self.browser, 10, ignored_exceptions=[WebDriverException]).until(
            lambda browser: browser.execute_script(NEXT_PAGE_LOADED)
        )
        return self.checked()

    def fill(self, fields, submit="main form button[type=submit]"):
        for name, value in fields.items():
            field = self.browser.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        return self.click(submit)

    def checked(self):
        page = self.browser.execute_script(PAGE_FACTS)
        logs = self.browser.get_log("browser")
        assert page["background"] == "rgb(245, 246, 248)", ("no stylesheet", page)
        assert all(url.startswith("https://") for url in page["resources"]), page
        assert not [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")], logs
        return page


NEXT_PAGE_LOADED = "return !window.walkedAway && document.readyState === 'complete'"

# What a page says of itself: where it is, its language, its body's
# background (board.css's), the resources it loaded and its visible text.
PAGE_FACTS = """
return {
    url: location.href,
    lang: document.documentElement.lang,
    background: getComputedStyle(document.body).backgroundColor,
    resources: performance.getEntriesByType("resource").map(entry => entry.name),
    text: document.body.innerText,
};
"""


def walk_the_board(walk, member):
    """Sign up, log out and in, post, comment, edit, delete, switch to
    Korean, log out; the post with its comment, for the screenshot (the list
    would show whatever other tests posted on the stack before)."""
    walk.open("/")
    walk.click("a[href='/accounts/signup/']")
    password = secrets.token_hex(12)
    fields = {"username": member, "email": f"{member}@example.com"}
    page = walk.fill(fields | {"password1": password, "password2": password})
    assert f"Signed in as {member}" in page["text"], page["text"]
    walk.click("header form[action='/accounts/logout/'] button")
    walk.click("a[href^='/accounts/login/']")
    page = walk.fill({"username": member, "password": password})
    assert f"Signed in as {member}" in page["text"], page["text"]

    walk.click("a[href='/posts/new/']")
    title = f"Hello from {member}"
    page = walk.fill({"title": title, "content": "Written in a real browser."})
    assert title in page["text"] and "/posts/" in page["url"], page
    page = walk.fill({"content": "And a comment."})
    assert "And a comment." in page["text"], page["text"]
    # From the page's top: the answer to a comment lands at the comments.
    walk.browser.execute_script("window.scrollTo(0, 0)")
    screenshot = walk.browser.get_screenshot_as_png()
    walk.open("/")
    walk.click(f"a[href='{urlsplit(page['url']).path}']")
    walk.click("a[href$='/edit/']")
    page = walk.fill({"title": f"{title}, edited"})
    assert f"{title}, edited" in page["text"], page["text"]
    walk.click("a.danger")
    page = walk.click("main form button.danger")
    assert title not in page["text"], page["text"]

    walk.browser.find_element(By.CSS_SELECTOR, "#language option[value='ko']").click()
    page = walk.click("header form.language button")
    assert page["lang"] == "ko" and "로그아웃" in page["text"], page
    page = walk.click("header form[action='/accounts/logout/'] button")
    assert "로그인" in page["text"] and member not in page["text"], page["text"]
    return screenshot


def test_a_member_walks_the_board_in_chromium_on_a_desktop_and_a_phone(
    stack, shipped_driver, tmp_path
):
    """Through HAProxy over HTTPS, its self-signed certificate trusted as
    docs/https.md says (exported, imported as a CA), on every proxy choice; from
    an address of its own (the test stack's PROXY protocol, harness/browser.py)."""
    certificate = tmp_path / "site.crt"
    copy = ("exec", "-T", "haproxy", "openssl", "x509", "-in", "/var/lib/haproxy/tls/site.pem")
    certificate.write_text(stack.compose(*copy).stdout)
    domain, address = shipped_driver.domain, CHECKS.new_client(shipped_driver)
    with relay(shipped_driver.ports["haproxy"], partial(CHECKS.proxy_header, address)) as port:
        for window, size in WINDOWS.items():
            with chromium(tmp_path / window, certificate, domain, size) as browser:
                walk = Walk(browser, f"https://{domain}:{port}")
                screenshot = walk_the_board(walk, CHECKS.unique(window))
            if set(proxies_of(stack.project)) == set(PROXIES):
                (SCREENSHOTS / f"board-{window}.png").write_bytes(screenshot)


def put_own_certificate(project, folder):
    """A certificate for the site's domain from a CA of the user's, in tls/
    as the README says (the key readable by HAProxy's user alone); the CA's file."""
    haproxy = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]["haproxy"]
    ca = tls.self_signed(folder, "test-ca", ca=True)
    certificate, key = tls.signed_by(ca, folder, haproxy["environment"]["DOMAIN_NAME"])
    shutil.copy(certificate, project / "tls" / "fullchain.pem")
    private = shutil.copy(key, project / "tls" / "privkey.pem")
    os.chown(private, 99, -1)
    os.chmod(private, 0o600)
    return ca[0]


def test_the_users_own_certificate_is_served_verifies_and_keeps_the_user_flow(
    bake, engine, images, tmp_path, monkeypatch
):
    # A project name of its own: a stack beside the module's others.
    answers = {**ANSWERS, **tls_answers("own"), "project_name": "Own Certificate"}
    baked = bake(**answers, **PROXY_CHOICES["nginx"])
    # Baked projects are shared: the user's certificate goes into a copy.
    project = tmp_path / baked.name
    shutil.copytree(baked, project, symlinks=True)
    ca = put_own_certificate(project, tmp_path)
    stack = ComposeProject(engine, project)
    with stack:
        driver = drive(stack, monkeypatch)
        https = driver.ports["haproxy"]
        tls.verified(https, driver.domain, ca, CHECKS.connect(driver, "127.0.0.1", https))
        for check in FLOW + CHECKS.HTTPS:
            check(driver)
        # Renewed in place, as the README says: a reload serves it, and HAProxy
        # never restarts.
        before = started(stack, ["haproxy"])
        (tmp_path / "renewed").mkdir()
        renewed = put_own_certificate(project, tmp_path / "renewed")
        stack.compose(*HAPROXY_RELOAD)

        def served_renewed():
            connection = CHECKS.connect(driver, "127.0.0.1", https)
            with contextlib.suppress(ssl.SSLCertVerificationError):
                return tls.verified(https, driver.domain, renewed, connection)

        CHECKS.wait_until(served_renewed, "the renewed certificate is not served", 5)
        assert started(stack, ["haproxy"]) == before, "HAProxy restarted"
    assert stack.left_behind() == {}


# The project's networks with IPv6 on as well, as a daemon's
# default-network-opts can make every new network: each name then has an
# IPv6 address beside its IPv4 one, while the servers listen on IPv4.
DUAL_STACK = """
networks:
  edge:
    enable_ipv6: true
    ipam: {config: [{subnet: "fd00:0:0:1::/64"}]}
  app:
    enable_ipv6: true
    ipam: {config: [{subnet: "fd00:0:0:2::/64"}]}
  data:
    enable_ipv6: true
    ipam: {config: [{subnet: "fd00:0:0:3::/64"}]}
"""


@pytest.fixture(scope="module")
def dual_stack(bake, engine, images):
    """Every proxy, tls=none (for another TLS terminator in front), on
    networks with IPv6 as well."""
    # A project name of its own: a stack beside the module's others.
    answers = {**ANSWERS, **tls_answers("none"), "project_name": "Dual Stack"}
    stack = ComposeProject(engine, bake(**PROXY_CHOICES[EVERY_PROXY], **answers), extra=DUAL_STACK)
    with stack:
        yield stack
    assert stack.left_behind() == {}


@pytest.fixture
def dual_stack_driver(dual_stack, monkeypatch):
    return drive(dual_stack, monkeypatch)


def test_on_networks_with_ipv6_as_well_every_web_server_stays_up_and_serves(
    dual_stack, dual_stack_driver
):
    addresses = dual_stack.compose("exec", "-T", "haproxy", "getent", "ahosts", "nginx").stdout
    assert ":" in addresses, f"nginx has no IPv6 address: {addresses}"
    # Past HAProxy's `hold valid` (5 s): the addresses it asked Docker's
    # DNS for at run time are in use, not only those it started with.
    deadline = time.monotonic() + 8
    instances = [
        f"{name}{number}"
        for name in dual_stack_driver.proxies
        for number in range(1, local_extensions.WEB_SERVER_INSTANCES + 1)
    ]
    while time.monotonic() < deadline:
        assert CHECKS.proxy_states(dual_stack_driver) == dict.fromkeys(instances, "UP")
        time.sleep(0.5)
    assert CHECKS.times_marked_down(dual_stack_driver) == dict.fromkeys(instances, 0)


def test_with_tls_none_haproxy_publishes_plain_http_alone_and_keeps_the_user_flow(
    dual_stack_driver,
):
    haproxy = dual_stack_driver.config["services"]["haproxy"]
    published = {port["target"] for port in haproxy["ports"]}
    plain = {int(haproxy["environment"][name]) for name in ("HAPROXY_PORT", "HAPROXY_STATS_PORT")}
    assert not dual_stack_driver.tls and published == plain, haproxy["ports"]
    for check in FLOW:
        check(dual_stack_driver)


def test_down_with_volumes_leaves_nothing(stack):
    stack.down("--volumes")
    assert stack.left_behind() == {}
