"""Tier 3: each entrypoint renders a config its real server accepts, or refuses to start.

Every service's own entrypoint.sh runs outside a container with test values
(only ports and paths differ from the container's). Its command is the
server's version flag (`nginx -v`...): it starts the server binary and
exits at once, so the entrypoint does all its setup, and any setup it skips
shows. Debian's nginx, apache2 and haproxy stand in for the images' servers.
"""

import re
import stat

import pytest
from harness.commands import run
from harness.services import SERVICES, Layout
from harness.template import PROXY_CHOICES, proxies_of

DOMAIN = "board.example.org"
PORTS = {"nginx": 18080, "apache": 18081, "haproxy": 18090, "stats": 18091, "app": 18100}
REPLICAS = ["127.0.0.11", "127.0.0.12"]


def layout(project, workdir):
    built = Layout(project, workdir, PORTS, domain=DOMAIN, replica_hosts=REPLICAS)
    # The proxies serve a static folder that exists (a volume in Compose).
    built.static_root.mkdir(parents=True, exist_ok=True)
    return built


def cases(*names):
    """(proxy choice, service) for every service each proxy choice bakes."""
    return [
        pytest.param((choice, name), id=f"{choice}-{name}")
        for choice, answers in PROXY_CHOICES.items()
        for name in names
        if answers.get(f"use_{name}", True)
    ]


@pytest.fixture
def service(request, bake, tmp_path):
    choice, name = request.param
    return SERVICES[name](layout(bake(**PROXY_CHOICES[choice]), tmp_path))


@pytest.fixture
def django(default_project, tmp_path):
    return SERVICES["django"](layout(default_project, tmp_path))


def run_entrypoint(service, command, **env_changes):
    return run(
        ["sh", service.entrypoint, *command],
        env=service.env(**env_changes),
        cwd=service.workdir,
        check=False,
    )


RENDERING = cases("nginx", "apache", "haproxy")


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_renders_a_config_its_server_accepts(service):
    result = run_entrypoint(service, service.version)
    assert result.returncode == 0, result.stderr
    # Checked again here, independently of the entrypoint's own check.
    run(service.check, env=service.env())
    text = service.rendered.read_text()
    assert "${" not in text, "a placeholder was left unrendered"
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_refuses_a_config_its_server_rejects(service):
    listen_port = next(name for name in service.required if name.endswith("_PORT"))
    service.required[listen_port] = "99999"
    result = run_entrypoint(service, service.version)
    assert result.returncode != 0, "the server started on a config its checker rejects"


def assert_refuses_without_each_required_variable(service):
    for variable in service.required:
        for change in ({"without": [variable]}, {"empty": [variable]}):
            result = run_entrypoint(service, service.version, **change)
            assert result.returncode != 0, f"started with {change}"
            assert f"{variable} must be set and non-empty" in result.stderr, f"{change}"
            if service.rendered is not None:
                assert not service.rendered.exists(), f"{change}: a config was rendered"
            collected = service.workdir / "static" / "staticfiles.json"
            assert not collected.exists(), f"{change}: static files were collected"


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_each_missing_or_empty_variable_stops_the_entrypoint_before_it_writes(service):
    assert service.required
    assert_refuses_without_each_required_variable(service)


def test_django_entrypoint_stops_without_its_secret_key_before_it_writes(django):
    assert list(django.required) == ["DJANGO_SECRET_KEY"]
    django.settings["DJANGO_COLLECTSTATIC"] = "1"
    assert_refuses_without_each_required_variable(django)


def test_django_entrypoint_with_a_database_host_requires_its_credentials(django):
    database = {"DB_HOST": "127.0.0.1", "DB_NAME": "board", "DB_USER": "board", "DB_PASSWORD": "x"}
    django.required |= {name: value for name, value in database.items() if name != "DB_HOST"}
    django.settings |= {"DB_HOST": "127.0.0.1", "DJANGO_COLLECTSTATIC": "1"}
    assert_refuses_without_each_required_variable(django)


# The Django image is the same whatever the proxies: one bake is enough for it.
EVERY_SERVICE = [*RENDERING, pytest.param((next(iter(PROXY_CHOICES)), "django"), id="django")]


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
    for variable in ("$http_host", "$remote_addr", "$proxy_add_x_forwarded_for", "$scheme"):
        assert variable in text, variable
    # The scheme HAProxy set is passed on, not overwritten with nginx's own.
    assert "proxy_set_header X-Forwarded-Proto $forwarded_proto;" in text
    assert "$http_x_forwarded_proto" in text


@pytest.mark.parametrize("service", cases("nginx"), indirect=True)
def test_nginx_spreads_over_every_replica_and_retries_on_connection_errors(service):
    text = rendered(service)
    servers = re.findall(r"^\s*server (\S+) max_fails=1", text, re.MULTILINE)
    assert servers == [f"{host}:{PORTS['app']}" for host in REPLICAS]
    assert re.search(r"proxy_next_upstream error timeout;", text)
    assert re.search(r"keepalive \d+;", text)


@pytest.mark.parametrize("service", cases("apache"), indirect=True)
def test_apache_balances_over_every_replica_and_preserves_the_host(service):
    text = rendered(service)
    members = re.findall(r'BalancerMember "http://([^"]+)"', text)
    assert members == [f"{host}:{PORTS['app']}" for host in REPLICAS]
    assert "ProxyPreserveHost On" in text
    assert re.search(r"^User www-data$", text, re.MULTILINE)
    assert "# ..." not in text, "a module list must not be elided"


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
    assert re.findall(r"^\s*server (\w+) ", text, re.MULTILINE) == proxies_of(project)
    assert f"hdr Host {DOMAIN}" in text
    assert re.search(r"^\s*daemon\b", text, re.MULTILINE) is None
    assert "master-worker" in text


@pytest.mark.parametrize("service", cases("haproxy"), indirect=True)
def test_haproxy_config_with_the_stats_password_is_private(service):
    rendered(service)
    assert stat.S_IMODE(service.rendered.stat().st_mode) == 0o600
