"""Tier 3: each entrypoint renders a config its real server accepts, or refuses to start.

Every service's entrypoint.sh runs in its own image (harness/images.py),
built from a baked project by Compose, one `docker run` at a time, with test
values for the settings a user gives it. Its command is the server's version
flag (`nginx -v`...): it starts the server binary and exits at once, so the
entrypoint does all its setup, and any setup it skips shows. The images
build FROM the stand-ins for the official ones (harness/standins.py).
"""

import re
import stat
import sys
from pathlib import Path

import pytest

from harness import tls
from harness.commands import clean_env, run
from harness.images import ProjectImages
from harness.services import SERVICES, Layout
from harness.standins import ANSWERS
from harness.template import EVERY_PROXY, PROXY_CHOICES, client_limits, proxies_of, tls_answers

DOMAIN = "board.example.org"
PORTS = {
    "nginx": 18080,
    "apache": 18081,
    "nginx-status": 18082,
    "apache-status": 18083,
    "haproxy": 18090,
    "stats": 18091,
    "haproxy-metrics": 18094,
    "https": 18092,
    "acme": 18093,
    "app": 18100,
    "app-metrics": 18101,
}
REPLICAS = ["127.0.0.11", "127.0.0.12"]
# Debian's www-data, as which the httpd image's children run.
WWW_DATA = 33


def layout(project, workdir):
    built = Layout(project, workdir, PORTS, domain=DOMAIN, replica_hosts=REPLICAS)
    # The proxies serve a static folder that exists (a volume in Compose).
    built.static_root.mkdir(parents=True, exist_ok=True)
    return built


@pytest.fixture(scope="session")
def project_images(engine, images):
    """The images of each baked project, each built when a test first runs
    it; their containers on one internal network."""
    network = "django-ha-tier3"
    engine.docker("network", "create", "--internal", network)
    made = {}

    def of(project):
        if project not in made:
            made[project] = ProjectImages(engine, project, network)
        return made[project]

    yield of
    engine.docker("network", "rm", network)


@pytest.fixture
def in_image(project_images):
    """A service of SERVICES, made to run in its project's image."""

    def make(name, built):
        service = SERVICES[name](built)
        service.images = project_images(built.project)
        return service

    return make


def cases(*names):
    """(proxy choice, service) for every service each proxy choice bakes."""
    return [
        pytest.param((choice, name), id=f"{choice}-{name}")
        for choice, answers in PROXY_CHOICES.items()
        for name in names
        if answers.get(f"use_{name}", True)
    ]


@pytest.fixture
def service(request, bake, tmp_path, in_image):
    choice, name = request.param
    return in_image(name, layout(bake(**PROXY_CHOICES[choice], **ANSWERS), tmp_path))


@pytest.fixture
def django(bake, tmp_path, in_image):
    return in_image("django", layout(bake(**ANSWERS), tmp_path))


def run_entrypoint(service, command, *, user=None, **env_changes):
    """The image's entrypoint with `command`; env_changes: Service.env's."""
    env = service.env(**env_changes)
    return service.images.run(service, command, env, user=user)


def run_checker(service):
    """The server's own checker, in the image, on the rendered file."""
    command, *arguments = service.check
    return service.images.run(service, arguments, service.env(), entrypoint=command)


RENDERING = cases("nginx", "apache", "haproxy")


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_renders_a_config_its_server_accepts(service, log_format):
    service.settings["LOG_FORMAT"] = log_format
    result = run_entrypoint(service, service.version)
    assert result.returncode == 0, result.stderr
    # Checked again here, independently of the entrypoint's own check.
    checked = run_checker(service)
    assert checked.returncode == 0, checked.stderr
    text = service.rendered.read_text()
    assert "${" not in text, "a placeholder was left unrendered"
    assert "{{" not in text and "{%" not in text


# Each server's log formats, and what in them would write the path as the
# client sent it, a password reset link's token and all.
LOG_FORMATS = {
    "nginx": (r"log_format \w+ [^;]*;", r"\$request\b|\$request_uri\b"),
    "apache": (r"^LogFormat .*$", r"%r|%U"),
    "haproxy": (r"^\s*log-format .*$", r"%\{\+Q\}r|%r\b|capture\.req\.uri"),
}


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_every_log_format_writes_the_path_with_a_reset_links_token_masked(service, log_format):
    service.settings["LOG_FORMAT"] = log_format
    formats, raw_path = LOG_FORMATS[service.name]
    found = re.findall(formats, rendered(service), re.MULTILINE)
    assert found, "no log format found"
    assert [line for line in found if re.search(raw_path, line)] == []


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_refuses_a_log_format_it_does_not_know_before_it_writes(service):
    service.settings["LOG_FORMAT"] = "xml"
    result = run_entrypoint(service, service.version)
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or text, not 'xml'" in result.stderr, result.stderr
    assert not service.rendered.exists()


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_refuses_a_config_its_server_rejects(service):
    listen_port = next(name for name in service.required if name.endswith("_PORT"))
    service.required[listen_port] = "99999"
    result = run_entrypoint(service, service.version)
    assert result.returncode != 0, "the server started on a config its checker rejects"


def assert_refuses_without_each_required_variable(service, command=None):
    for variable in service.required:
        for change in ({"without": [variable]}, {"empty": [variable]}):
            result = run_entrypoint(service, command or service.version, **change)
            assert result.returncode != 0, f"started with {change}"
            assert f"{variable} must be set and non-empty" in result.stderr, f"{change}"
            if service.rendered is not None:
                assert not service.rendered.exists(), f"{change}: a config was rendered"
            collected = service.workdir / "static" / "staticfiles.json"
            assert not collected.exists(), f"{change}: static files were collected"
    for variable in (name for name in service.required if name.endswith("_FILE")):
        # A secret's file that is not there is refused by name too.
        kept = service.required[variable]
        service.required[variable] = str(service.workdir / "no-such-secret")
        result = run_entrypoint(service, command or service.version)
        service.required[variable] = kept
        assert result.returncode != 0, f"started without the file {variable} names"
        assert f"{variable} must name a readable, non-empty file" in result.stderr


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_each_missing_or_empty_variable_stops_the_entrypoint_before_it_writes(service):
    assert service.required
    assert_refuses_without_each_required_variable(service)


def test_django_entrypoint_stops_without_its_secret_key_before_it_writes(django):
    assert list(django.required) == ["DJANGO_SECRET_KEY_FILE"]
    django.settings["DJANGO_COLLECTSTATIC"] = "1"
    assert_refuses_without_each_required_variable(django)


def test_django_entrypoint_with_a_database_host_requires_its_credentials(django):
    password = str(django.required["DJANGO_SECRET_KEY_FILE"])  # any readable file
    database = {"DB_HOST": "127.0.0.1", "DB_NAME": "board", "DB_USER": "board"}
    database["DB_PASSWORD_FILE"] = password
    django.required |= {name: value for name, value in database.items() if name != "DB_HOST"}
    django.settings |= {"DB_HOST": "127.0.0.1", "DJANGO_COLLECTSTATIC": "1"}
    assert_refuses_without_each_required_variable(django)


# The Django and backup entrypoints are the same whatever the proxies: one bake
# is enough for them.
EVERY_SERVICE = [
    *RENDERING,
    *(pytest.param((EVERY_PROXY, name), id=name) for name in ("django", "backup")),
]


@pytest.fixture
def backup(bake, tmp_path, in_image):
    return in_image("backup", layout(bake(**ANSWERS), tmp_path))


def backups_written(backup):
    return list(Path(backup.settings["BACKUP_DIR"]).iterdir())


def test_backup_stops_on_a_missing_empty_or_non_numeric_setting_before_it_writes(backup):
    assert_refuses_without_each_required_variable(backup, ["backup", "now"])
    for name in ("BACKUP_INTERVAL", "BACKUP_KEEP", "BINLOG_INTERVAL"):
        for value in ("0", "-1", "1h", "07"):
            backup.required[name] = value
            result = run_entrypoint(backup, ["backup", "now"])
            assert result.returncode != 0, f"{name}={value}"
            assert f"{name} must be a whole number above 0" in result.stderr, f"{name}={value}"
        backup.required[name] = "60"
    assert backups_written(backup) == []


def test_a_backup_that_cannot_reach_the_database_fails_loudly_and_writes_nothing(backup):
    result = run_entrypoint(backup, ["backup", "now"])
    assert result.returncode != 0
    assert "backup: cannot reach the database at 127.0.0.1:1" in result.stderr
    assert backups_written(backup) == []


@pytest.mark.parametrize("service", EVERY_SERVICE, indirect=True)
def test_any_other_command_runs_as_it_is_with_nothing_set_up(service):
    # `docker compose run <service> sh`: no variable needed, nothing rendered.
    result = run_entrypoint(service, ["sh", "-c", "echo a shell"], empty=list(service.required))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a shell\n"
    assert result.stderr == ""
    if service.rendered is not None:
        assert not service.rendered.exists()


def rendered(service):
    assert run_entrypoint(service, service.version).returncode == 0
    return service.rendered.read_text()


@pytest.mark.parametrize("service", cases("nginx"), indirect=True)
def test_nginx_own_variables_survive_rendering(service):
    text = rendered(service)
    for variable in ("$http_host", "$remote_addr", "$scheme"):
        assert variable in text, variable
    # The scheme HAProxy set is passed on, not overwritten with nginx's own.
    assert "proxy_set_header X-Forwarded-Proto $forwarded_proto;" in text
    assert "$http_x_forwarded_proto" in text


@pytest.mark.parametrize("service", cases("nginx"), indirect=True)
def test_nginx_spreads_over_every_replica_and_retries_on_connection_errors(service):
    text = rendered(service)
    servers = re.findall(r"^\s*server (\S+) max_fails=1 ", text, re.MULTILINE)
    assert servers == [f"{host}:{PORTS['app']}" for host in REPLICAS]
    # When every replica is skipped at once, nginx still tries them all.
    backups = re.findall(r"^\s*server (\S+) max_fails=0 backup;", text, re.MULTILINE)
    assert backups == servers
    assert re.search(r"proxy_next_upstream error timeout;", text)
    # A fresh connection per request: a stopping replica refuses it (retried).
    assert not re.search(r"^\s*keepalive \d+;", text, re.MULTILINE)


def first_nameserver(service):
    """The first DNS server the image's /etc/resolv.conf names."""
    resolv = run_entrypoint(service, ["cat", "/etc/resolv.conf"]).stdout
    return re.search(r"^nameserver\s+(\S+)", resolv, re.M)[1]


@pytest.mark.parametrize("service", cases("nginx", "haproxy"), indirect=True)
def test_names_are_resolved_by_the_dns_server_the_container_was_given(service):
    # Docker's own under Compose, the cluster's on Kubernetes: whichever
    # /etc/resolv.conf names, unless the variable says otherwise.
    variable, line = {
        "nginx": ("NGINX_RESOLVER", r"resolver (\S+) "),
        "haproxy": ("HAPROXY_DNS", r"nameserver dns (\S+)"),
    }[service.name]
    service.settings.pop(variable, None)
    result = run_entrypoint(service, service.version)
    assert result.returncode == 0, result.stderr
    found = re.search(line, service.rendered.read_text())[1]
    assert found == first_nameserver(service) + (":53" if service.name == "haproxy" else "")


@pytest.mark.parametrize("service", cases("apache"), indirect=True)
def test_apache_balances_over_every_replica_and_preserves_the_host(service):
    text = rendered(service)
    replicas = [f"{host}:{PORTS['app']}" for host in REPLICAS]
    # Every replica twice: reads wait 2 s for an answer on a pooled
    # connection, writes 10 s on a fresh one.
    for balancer, timeout, reuse in (("reads", 2, "ttl=4"), ("writes", 10, "disablereuse=On")):
        block = re.search(rf'<Proxy "balancer://{balancer}">(.*?)</Proxy>', text, re.S)
        member = r'BalancerMember "http://([^"]+)".* timeout=(\d+) .*?(\S+)$'
        members = re.findall(member, block[1], re.MULTILINE)
        assert members == [(replica, str(timeout), reuse) for replica in replicas], balancer
    assert "ProxyPreserveHost On" in text
    assert re.search(r"^User www-data$", text, re.MULTILINE)
    assert "# ..." not in text, "a module list must not be elided"


@pytest.mark.parametrize("service", cases("apache"), indirect=True)
def test_apache_started_as_root_gives_its_children_a_folder_for_the_page_caches_locks(service):
    # mod_cache's children (www-data) make its lock files; without this they
    # could not, and Apache silently kept no page.
    assert run_entrypoint(service, service.version, user="0").returncode == 0
    locks = service.rendered.parent / "pages-lock"
    assert locks.stat().st_uid == WWW_DATA


@pytest.mark.parametrize("service", cases("apache"), indirect=True)
def test_apache_refuses_a_backend_it_cannot_resolve(service):
    service.required["BACKEND_HOST"] = "no-such-host.invalid"
    result = run_entrypoint(service, service.version)
    assert result.returncode != 0
    assert "no-such-host.invalid" in result.stderr


@pytest.mark.parametrize("service", cases("haproxy"), indirect=True)
def test_haproxy_checks_each_chosen_proxy_with_an_allowed_host(service):
    text = rendered(service)
    project = service.entrypoint.parent.parent
    # One server per instance of each chosen web server, each found by its name.
    found = re.findall(r"^\s*server-template (\w+) (\d+) ipv4@", text, re.MULTILINE)
    assert found == [(name, "2") for name in proxies_of(project)]
    assert f"hdr Host {DOMAIN}" in text
    assert re.search(r"^\s*daemon\b", text, re.MULTILINE) is None
    # Master-worker mode from the command line, as HAProxy 3.3 on asks.
    assert re.search(r"^\s*master-worker\b", text, re.MULTILINE) is None
    dockerfile = (project / "haproxy/Dockerfile.haproxy").read_text()
    assert 'CMD ["haproxy", "-W"]' in dockerfile


LIMITS = client_limits()


@pytest.mark.parametrize("service", cases("haproxy")[:1], indirect=True)
def test_haproxy_refuses_a_limit_per_client_that_is_no_whole_number_before_it_writes(service):
    for name in LIMITS:
        for value in ("0", "-1", "ten", "07", "1.5"):
            service.settings[name] = value
            result = run_entrypoint(service, service.version)
            assert result.returncode != 0, f"{name}={value!r}"
            assert f"{name} must be a whole number above 0" in result.stderr, f"{name}={value!r}"
            assert not service.rendered.exists(), f"{name}={value!r}: a config was rendered"
        service.settings.pop(name)


@pytest.mark.parametrize("service", cases("haproxy")[:1], indirect=True)
def test_haproxy_tracks_each_limit_per_client_as_set(service):
    service.settings |= {name: str(100 + number) for number, name in enumerate(LIMITS)}
    text = rendered(service)
    for number, _ in enumerate(LIMITS):
        assert re.search(rf" gt {100 + number} \}}", text), (number, text)
    # Past twice the connection limit, a client's connections are closed.
    assert "sc0_conn_cur(per_client) gt 200 }" in text


@pytest.mark.parametrize("service", cases("haproxy")[:1], indirect=True)
def test_haproxy_believes_the_proxy_protocol_from_the_trusted_proxies_only(service):
    trusted = service.rendered.parent / "trusted-proxies"
    rendered(service)
    assert trusted.read_text() == "", "a proxy is trusted though none was named"
    service.settings["HAPROXY_TRUSTED_PROXIES"] = "192.0.2.10, 10.0.0.0/8  2001:db8::/32"
    text = rendered(service)
    assert trusted.read_text().split() == ["192.0.2.10", "10.0.0.0/8", "2001:db8::/32"]
    assert f"expect-proxy layer4 if {{ src -f {service.inside(trusted)} }}" in text
    # HAProxy itself refuses what is no address (its check, before start).
    service.settings["HAPROXY_TRUSTED_PROXIES"] = "192.0.2.300"
    assert run_entrypoint(service, service.version).returncode != 0


@pytest.mark.parametrize("service", cases("haproxy"), indirect=True)
def test_haproxy_config_with_the_stats_password_is_private(service):
    rendered(service)
    assert stat.S_IMODE(service.rendered.stat().st_mode) == 0o600


# HTTPS: how HAProxy gets its certificate in each tls mode ---------------------


def readable_by_haproxy(*files):
    # As the README asks of the user's own: readable by uid 99 in the image.
    for file in files:
        file.chmod(0o644)
    return files


@pytest.fixture
def haproxy_for(bake, tmp_path, in_image):
    """HAProxy's service in a project baked with the given tls answer."""

    def make(mode):
        built = layout(bake(**tls_answers(mode), **ANSWERS), tmp_path)
        if mode == "own":
            ca = tls.self_signed(tmp_path / "ca", "test-ca", ca=True)
            built.own_certificate = readable_by_haproxy(*tls.signed_by(ca, tmp_path / "ca", DOMAIN))
        return in_image("haproxy", built), built

    return make


def certificate_fields(path, *fields):
    return run(["openssl", "x509", "-noout", *fields, "-in", path]).stdout


@pytest.mark.parametrize("mode", ["self-signed", "own", "acme"])
def test_haproxy_serves_https_with_a_private_certificate_for_the_domain(haproxy_for, mode):
    service, built = haproxy_for(mode)
    text = rendered(service)
    bind = re.search(rf"^\s*bind :{PORTS['https']} ssl crt (\S+) alpn h2,http/1.1$", text, re.M)
    assert bind and bind.group(1) == service.inside(built.certificate), text
    assert re.search(r"ssl-min-ver TLSv1.2", text)
    assert stat.S_IMODE(built.certificate.stat().st_mode) == 0o600
    assert f"DNS:{DOMAIN}" in certificate_fields(built.certificate, "-ext", "subjectAltName")


def test_tls_none_serves_plain_http_with_no_certificate(haproxy_for):
    service, built = haproxy_for("none")
    text = rendered(service)
    assert " ssl " not in text and "redirect" not in text
    assert not built.certificate.exists()


def test_a_self_signed_certificate_is_kept_then_renewed_when_30_days_are_left(
    haproxy_for, tmp_path
):
    service, built = haproxy_for("self-signed")
    rendered(service)
    first = built.certificate.read_bytes()
    rendered(service)
    assert built.certificate.read_bytes() == first, "a valid certificate was replaced"
    # One with 10 days left, as a year-old certificate would be.
    certificate, key = tls.self_signed(tmp_path / "old", DOMAIN, days=10)
    built.certificate.write_text(certificate.read_text() + key.read_text())
    rendered(service)
    renewed = certificate_fields(built.certificate, "-checkend", str(300 * 86400))
    assert renewed == "Certificate will not expire\n", "a certificate 10 days from expiry was kept"


def test_acme_mode_starts_on_a_stand_in_certificate_and_keeps_the_issued_one(haproxy_for, tmp_path):
    service, built = haproxy_for("acme")
    rendered(service)
    assert f"CN = {DOMAIN}" in certificate_fields(built.certificate, "-issuer")  # self-signed
    issued, key = tls.signed_by(tls.self_signed(tmp_path, "ca", ca=True), tmp_path, DOMAIN)
    built.certificate.write_text(issued.read_text() + key.read_text())
    rendered(service)
    assert "CN = ca" in certificate_fields(built.certificate, "-issuer"), "the issued one was lost"


@pytest.mark.parametrize("missing", ["certificate", "key"])
def test_an_own_certificate_haproxy_cannot_read_stops_it_naming_the_file(haproxy_for, missing):
    service, built = haproxy_for("own")
    path = f"/run/secrets/tls_{missing}"
    del service.files[path]  # not in tls/, so Compose mounts none
    result = run_entrypoint(service, service.version)
    assert result.returncode != 0
    assert f"cannot read {path}" in result.stderr
    assert not built.certificate.exists() and not service.rendered.exists()


def test_an_own_key_that_is_not_the_certificates_is_refused(haproxy_for, tmp_path):
    service, built = haproxy_for("own")
    _, other_key = readable_by_haproxy(*tls.self_signed(tmp_path / "other", DOMAIN))
    service.files["/run/secrets/tls_key"] = other_key
    result = run_entrypoint(service, service.version)
    assert result.returncode != 0
    assert "does not match" in result.stderr or "inconsistencies" in result.stderr, result.stderr


# The host scripts, with a stand-in `docker` that records each call and
# answers as a running stack would: what they run before they act.

DOCKER_STAND_IN = """#!/bin/sh
# One line per call, in one write: calls in a pipe run at once.
printf '%s\\n' "$(printf '%s' "$*" | tr '\\n' ' ' | sed 's/ *$//')" >> "$DOCKER_CALLS"
case "$*" in
    "compose config") echo "name: community_board" ;;
    "compose ps --quiet app") echo replica-1 ;;
    "compose ps --all --quiet app") printf 'replica-1\\nreplica-2\\n' ;;
    "compose ps --services --status running") [ -n "$DOCKER_STACK_DOWN" ] || echo haproxy ;;
    "compose config --format json") echo '{"name": "community_board"}' ;;
    "inspect --format "*" replica-2") echo "healthy 0" ;;
    "compose ps --quiet nginx" | "compose ps --all --quiet nginx") printf 'nginx-1\\nnginx-2\\n' ;;
    # HAProxy's metrics: two instances of nginx, both UP.
    "compose exec -T haproxy bash -c "*)
        echo 'haproxy_server_status{proxy="proxies",server="nginx1",state="DOWN"} 0'
        echo 'haproxy_server_status{proxy="proxies",server="nginx1",state="UP"} 1'
        echo 'haproxy_server_status{proxy="proxies",server="nginx2",state="UP"} 1' ;;
    *"$DOCKER_FAILS"*) exit 1 ;;
    # The script interrupted while this call runs. TERM, not Ctrl-C's INT:
    # a test run started in the background ignores INT, and so would the
    # script; both go to the same trap.
    *"$DOCKER_INTERRUPTED"*) kill -TERM "$PPID" ;;
    # What the backup service got on standard input: the key's first line.
    *"backup verify"* | *"backup replay"*)
        printf 'stdin: %s\\n' "$(head -n 1)" >> "$DOCKER_CALLS" ;;
esac
"""
KEY = "-----BEGIN PRIVATE KEY-----\nnot a real one\n"


@pytest.fixture
def host_script(default_project, tmp_path):
    """Run one of the project's scripts; returns (result, the docker calls)."""
    (tmp_path / "docker").write_text(DOCKER_STAND_IN)
    (tmp_path / "docker").chmod(0o755)
    calls = tmp_path / "calls"

    (tmp_path / "key.pem").write_text(KEY)

    def script(name, *args, failing="no such call", interrupted="no such call", down=False):
        """failing: the docker calls that contain it fail; interrupted: the
        script gets a SIGTERM during them; down: no stack runs. `key` in args
        is the path of a private key's file."""
        args = [str(tmp_path / "key.pem") if arg == "key" else arg for arg in args]
        calls.write_text("")
        interpreter = sys.executable if name.endswith(".py") else "sh"
        result = run(
            [interpreter, default_project / name, *args],
            env=clean_env(
                PATH=f"{tmp_path}:/usr/bin:/bin",
                DOCKER_CALLS=str(calls),
                DOCKER_FAILS=failing,
                DOCKER_INTERRUPTED=interrupted,
                DOCKER_STACK_DOWN="1" if down else "",
            ),
            input="",  # no terminal: nobody to ask
            check=False,
        )
        return result, calls.read_text().splitlines()

    return script


@pytest.mark.parametrize("name", ["deploy.sh", "restore.sh"])
def test_a_host_script_explains_itself_and_refuses_what_it_does_not_know(host_script, name):
    helped, calls = host_script(name, "--help")
    assert helped.returncode == 0 and f"./{name}" in helped.stdout, helped
    assert calls == []
    refused, calls = host_script(name, "--force")
    assert refused.returncode == 2, refused
    assert refused.stderr.count("\n") == 1 and "--help" in refused.stderr, refused.stderr
    assert calls == []


def test_the_stack_checks_say_in_one_line_when_no_stack_runs(host_script):
    refused, calls = host_script("checks/check_stack.py", down=True)
    assert refused.returncode == 1, refused
    assert refused.stderr == (
        "check_stack: the stack community_board is not running here; "
        "start it first: docker compose up -d --wait\n"
    )


def test_the_stack_checks_name_the_stack_and_what_they_do_before_they_do_it(host_script):
    refused, calls = host_script("checks/check_stack.py", "--backups", "--backup-key", "key")
    assert refused.returncode == 1, refused
    assert refused.stderr == (
        "check_stack: this signs up users and writes posts, destroys and restores the "
        "database on the stack community_board; confirm with --yes\n"
    )
    assert all(call.startswith(("compose ps", "compose config")) for call in calls), calls


@pytest.mark.parametrize(
    ("failing", "summary"),
    [
        ("compose build", "deploy: FAILED: the build failed (above); nothing changed"),
        ("compose run", "deploy: FAILED: the migrations failed (above); the old replicas keep"),
    ],
)
def test_a_deploy_whose_build_or_migration_fails_says_so_in_one_line(host_script, failing, summary):
    failed, calls = host_script("deploy.sh", failing=failing)
    assert failed.returncode == 1 and failed.stderr.startswith(summary), failed
    assert not any(call.startswith("compose up") for call in calls), calls


def test_a_deploy_interrupted_while_new_replicas_start_removes_them_and_keeps_the_old(
    host_script,
):
    interrupted, calls = host_script("deploy.sh", interrupted="compose up")
    assert interrupted.returncode == 130, interrupted
    assert "removing new replica replica-2" in interrupted.stderr
    assert calls[-2:] == ["stop replica-2", "rm replica-2"], calls
    assert "stop replica-1" not in calls


def test_a_deploy_interrupted_while_old_replicas_stop_finishes_stopping_them(host_script):
    interrupted, calls = host_script("deploy.sh", interrupted="stop replica-1")
    assert interrupted.returncode == 130, interrupted
    assert "stopping the old ones first" in interrupted.stderr
    assert "rm replica-1" in calls and "stop replica-2" not in calls, calls


def test_a_web_server_rollout_stops_each_instance_only_once_haproxy_has_every_one_up(
    host_script,
):
    rolled, calls = host_script("deploy.sh", "nginx")
    assert rolled.returncode == 0, rolled
    assert "deploy: done; 2 nginx instances run the new image" in rolled.stdout
    # HAProxy asked, from inside its container, how many instances it has UP.
    asked = "compose exec -T haproxy bash"
    steps = [asked if call.startswith(asked) else call for call in calls]
    steps = [step for step in steps if not step.startswith("compose ps")]
    up = "compose up --detach --no-deps --no-recreate --scale nginx=2 nginx"
    assert steps == [
        asked,
        "compose build nginx",
        *(up, asked),
        *("stop nginx-1", "rm nginx-1", up, asked),
        *("stop nginx-2", "rm nginx-2", up, asked),
    ], calls


def test_a_web_server_rollout_interrupted_finishes_the_instance_it_replaces_and_stops(
    host_script,
):
    interrupted, calls = host_script("deploy.sh", "nginx", interrupted="stop nginx-1")
    assert interrupted.returncode == 130, interrupted
    assert "instances not replaced keep the old config" in interrupted.stderr
    # nginx-1's replacement started and came UP in HAProxy; nginx-2 untouched.
    replaced = calls[calls.index("rm nginx-1") :]
    assert any(call.startswith("compose up") for call in replaced), calls
    assert replaced[-1].startswith("compose exec -T haproxy bash"), calls
    assert "stop nginx-2" not in calls, calls


def test_a_web_server_rollout_refuses_a_name_haproxy_balances_over_no_instance_of(host_script):
    refused, calls = host_script("deploy.sh", "apache")
    assert refused.returncode == 2, refused
    assert refused.stderr.startswith("deploy: HAProxy balances over no web server named 'apache'")
    assert [call.split(" -c")[0] for call in calls] == ["compose exec -T haproxy bash"]


def test_restore_checks_the_dump_then_asks_before_it_stops_anything(host_script):
    moment = "2026-12-06 09:00:00"
    refused, calls = host_script("restore.sh", "--key", "key", "full-1.sql.gz", moment)
    assert refused.returncode == 2
    assert "replaces the database of community_board; confirm with --yes" in refused.stderr
    assert calls == [
        f"compose exec -T backup /entrypoint.sh backup verify full-1.sql.gz {moment}",
        "stdin: -----BEGIN PRIVATE KEY-----",
        "compose config",
    ]
    restored, calls = host_script("restore.sh", "--yes", "--key", "key", "full-1.sql.gz", moment)
    assert restored.returncode == 0, restored
    replay = f"compose exec -T backup /entrypoint.sh backup replay full-1.sql.gz {moment}"
    as_root = next(call for call in calls if call.startswith("compose exec -T db bash -c"))
    # The two ends of one pipe: started together, in either order.
    stopped, dumped = (
        calls.index("compose stop app"),
        calls.index("compose exec -T backup /entrypoint.sh backup now"),
    )
    assert stopped < min(calls.index(replay), calls.index(as_root))
    assert max(calls.index(replay), calls.index(as_root)) < dumped
    assert "sql_log_bin=0" in as_root and "MYSQL_ROOT_PASSWORD_FILE" in as_root
    assert calls.count("stdin: -----BEGIN PRIVATE KEY-----") == 2, "the key reached the replay"
    assert calls[-1].startswith("compose up"), calls


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--yes", "full-1"], "give their private key with --key FILE"),
        (["--yes", "--key", "/nonexistent.pem", "full-1"], "no private key to read"),
        (["--yes", "full-1", "--key"], "--key needs the private key's file"),
    ],
)
def test_a_restore_without_a_readable_key_is_refused_before_anything_runs(
    host_script, args, refusal
):
    refused, calls = host_script("restore.sh", *args)
    assert refused.returncode == 2 and refusal in refused.stderr, refused
    assert calls == []


@pytest.mark.parametrize("failing", ["backup replay", "exec -T db"])
def test_a_restore_whose_replay_fails_at_either_end_leaves_the_app_stopped(host_script, failing):
    failed, calls = host_script(
        "restore.sh", "--yes", "--key", "key", "full-1.sql.gz", failing=failing
    )
    assert failed.returncode == 1, failed
    assert "FAILED; the app stays stopped" in failed.stderr
    assert "compose stop app" in calls
    assert not any(call.startswith("compose up") for call in calls), calls
