"""Tier 3: each entrypoint renders a config its real server accepts, or refuses to start.

Every service's own entrypoint.sh runs outside a container with test values
(only ports and paths differ from the container's) and a command that
validates instead of serving. Debian's nginx, apache2 and haproxy stand in
for the images' servers.
"""

import re
import stat
import subprocess

import pytest
import services
from conftest import COMBINATIONS

DOMAIN = "board.example.org"
PROXIES = ("nginx", "apache")


def collected_static(workdir):
    return workdir / "collected-static"


def build(name, project, workdir):
    # The proxies serve a static folder that exists (a volume in Compose);
    # Django collects into one that the refusal tests expect never to appear.
    static_root = workdir / "static"
    static_root.mkdir()
    backends = {"backend_hosts": ["127.0.0.11", "127.0.0.12"], "backend_port": 18100}
    if name == "nginx":
        return services.nginx(project, workdir, port=18080, static_root=static_root, **backends)
    if name == "apache":
        return services.apache(
            project, workdir, port=18081, domain=DOMAIN, static_root=static_root, **backends
        )
    if name == "haproxy":
        proxies = {proxy: ("127.0.0.1", 18080 + i) for i, proxy in enumerate(PROXIES)}
        return services.haproxy(
            project,
            workdir,
            port=18090,
            stats_port=18091,
            stats_password="0123456789abcdef",
            domain=DOMAIN,
            proxies={proxy: proxies[proxy] for proxy in PROXIES if (project / proxy).exists()},
        )
    return services.django(
        project, workdir, bind="127.0.0.1:18100", static_root=collected_static(workdir)
    )


def cases(names):
    """(combination, service) pairs for the services each combination bakes."""
    return [
        pytest.param((combination, name), id=f"{combination}-{name}")
        for combination, answers in COMBINATIONS.items()
        for name in names
        if name not in PROXIES or answers[f"use_{name}"]
    ]


@pytest.fixture
def service(request, bake_combination, tmp_path):
    combination, name = request.param
    return build(name, bake_combination(combination), tmp_path)


def run_entrypoint(service, command, **env_changes):
    return subprocess.run(
        ["sh", str(service.entrypoint), *command],
        env=service.env(**env_changes),
        cwd=service.workdir,
        capture_output=True,
        text=True,
        check=False,
    )


RENDERING = cases(["nginx", "apache", "haproxy"])
ALL = cases(["nginx", "apache", "haproxy", "django"])


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_renders_a_config_its_server_accepts(service):
    result = run_entrypoint(service, ["true"])
    assert result.returncode == 0, result.stderr
    # Checked again here, independently of the entrypoint's own check.
    check = subprocess.run(
        service.check, env=service.env(), capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    text = service.rendered.read_text()
    assert "${" not in text, "a placeholder was left unrendered"
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("service", RENDERING, indirect=True)
def test_entrypoint_refuses_a_config_its_server_rejects(service, tmp_path):
    listen_port = next(name for name in service.required if name.endswith("_PORT"))
    service.required[listen_port] = "99999"
    marker = tmp_path / "served"
    result = run_entrypoint(service, ["touch", str(marker)])
    assert result.returncode != 0, "the server's checker accepted port 99999"
    assert not marker.exists(), "the command ran on a rejected config"


def assert_refuses_without_each_required_variable(service, tmp_path):
    marker = tmp_path / "served"
    for variable in service.required:
        for change in ({"without": [variable]}, {"empty": [variable]}):
            result = run_entrypoint(service, ["touch", str(marker)], **change)
            assert result.returncode != 0, f"started with {change}"
            assert variable in result.stderr, f"{change}: {result.stderr}"
            assert not marker.exists(), f"{change}: the command ran anyway"
            if service.rendered is not None:
                assert not service.rendered.exists(), f"{change}: a config was rendered"
            assert not collected_static(tmp_path).exists(), f"{change}: static files were collected"


@pytest.mark.parametrize("service", ALL, indirect=True)
def test_each_missing_or_empty_variable_stops_the_entrypoint_before_it_writes(service, tmp_path):
    assert service.required
    assert_refuses_without_each_required_variable(service, tmp_path)


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_django_entrypoint_with_a_database_host_requires_its_credentials(
    combination, bake_combination, tmp_path
):
    database = {"DB_HOST": "127.0.0.1", "DB_NAME": "board", "DB_USER": "board", "DB_PASSWORD": "x"}
    service = services.django(
        bake_combination(combination),
        tmp_path,
        bind="127.0.0.1:18100",
        static_root=collected_static(tmp_path),
        database=database,
    )
    assert {"DB_NAME", "DB_USER", "DB_PASSWORD"} <= set(service.required)
    assert_refuses_without_each_required_variable(service, tmp_path)


@pytest.mark.parametrize("service", cases(["nginx"]), indirect=True)
def test_nginx_own_variables_survive_rendering(service):
    assert run_entrypoint(service, ["true"]).returncode == 0
    text = service.rendered.read_text()
    for variable in ("$http_host", "$remote_addr", "$proxy_add_x_forwarded_for", "$scheme"):
        assert variable in text, variable
    # The scheme HAProxy set is passed on, not overwritten with nginx's own.
    assert "proxy_set_header X-Forwarded-Proto $forwarded_proto;" in text
    assert "$http_x_forwarded_proto" in text


@pytest.mark.parametrize("service", cases(["nginx"]), indirect=True)
def test_nginx_spreads_over_every_replica_and_retries_on_connection_errors(service):
    assert run_entrypoint(service, ["true"]).returncode == 0
    text = service.rendered.read_text()
    servers = re.findall(r"^\s*server (\S+) max_fails=1", text, re.MULTILINE)
    assert servers == ["127.0.0.11:18100", "127.0.0.12:18100"]
    assert re.search(r"proxy_next_upstream error timeout;", text)
    assert re.search(r"keepalive \d+;", text)


@pytest.mark.parametrize("service", cases(["apache"]), indirect=True)
def test_apache_balances_over_every_replica_and_preserves_the_host(service):
    assert run_entrypoint(service, ["true"]).returncode == 0
    text = service.rendered.read_text()
    members = re.findall(r'BalancerMember "http://([^"]+)"', text)
    assert members == ["127.0.0.11:18100", "127.0.0.12:18100"]
    assert "ProxyPreserveHost On" in text
    assert re.search(r"^User www-data$", text, re.MULTILINE)
    assert "# ..." not in text, "a module list must not be elided"


@pytest.mark.parametrize("service", cases(["apache"]), indirect=True)
def test_apache_refuses_a_backend_it_cannot_resolve(service):
    service.required["BACKEND_HOST"] = "no-such-host.invalid"
    result = run_entrypoint(service, ["true"])
    assert result.returncode != 0
    assert "no-such-host.invalid" in result.stderr


@pytest.mark.parametrize("service", cases(["haproxy"]), indirect=True)
def test_haproxy_checks_each_chosen_proxy_with_an_allowed_host(service):
    assert run_entrypoint(service, ["true"]).returncode == 0
    text = service.rendered.read_text()
    chosen = [proxy for proxy in PROXIES if f"{proxy.upper()}_HOST" in service.required]
    assert re.findall(r"^\s*server (\w+) ", text, re.MULTILINE) == chosen
    assert f"hdr Host {DOMAIN}" in text
    assert re.search(r"^\s*daemon\b", text, re.MULTILINE) is None
    assert "master-worker" in text


@pytest.mark.parametrize("service", cases(["haproxy"]), indirect=True)
def test_haproxy_config_with_the_stats_password_is_private(service):
    assert run_entrypoint(service, ["true"]).returncode == 0
    assert stat.S_IMODE(service.rendered.stat().st_mode) == 0o600
