"""Tier 1: every combination bakes into a coherent project; bad answers bake nothing."""

import re
import stat
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
from services import read_env

TEMPLATE = Path(__file__).resolve().parent.parent
SECRET_KEYS = {"DJANGO_SECRET_KEY", "DB_PASSWORD", "MYSQL_ROOT_PASSWORD", "HAPROXY_STATS_PASSWORD"}
# Copied verbatim on purpose (cookiecutter.json): Django templates use the
# same {{ }} / {% %} delimiters as Jinja.
VERBATIM = ["django/board/templates/*", "django/templates/*", "django/locale/*"]


def bake_on_command_line(output_dir, answers):
    """Run cookiecutter as a user does: `cookiecutter <template> key=value ...`."""
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input", "-o", str(output_dir)]
        + [f"{key}={value}" for key, value in answers.items()],
        capture_output=True,
        text=True,
        check=False,
    )


def text_files(project):
    for path in sorted(project.rglob("*")):
        if path.is_file() and path.suffix != ".mo":
            yield path.relative_to(project).as_posix(), path.read_text(encoding="utf-8")


def test_default_bake_writes_the_documented_layout(tmp_path):
    run = bake_on_command_line(tmp_path, {})
    assert run.returncode == 0, run.stderr
    project = tmp_path / "community_board"
    for folder in ("django", "nginx", "apache", "haproxy"):
        assert (project / folder).is_dir(), folder
    for name in ("docker-compose.yml", ".env", ".env.example", "README.md", ".gitignore"):
        assert (project / name).is_file(), name
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600


@pytest.mark.parametrize("proxy, other", [("apache", "nginx"), ("nginx", "apache")])
def test_answering_no_on_the_command_line_removes_that_proxy(tmp_path, proxy, other):
    run = bake_on_command_line(tmp_path, {f"use_{proxy}": "no"})
    assert run.returncode == 0, run.stderr
    project = tmp_path / "community_board"
    assert not (project / proxy).exists()
    assert (project / other).is_dir()
    for name in ("docker-compose.yml", "haproxy/haproxy.cfg"):
        assert proxy not in (project / name).read_text().lower(), name


def test_each_service_folder_has_dockerfile_entrypoint_and_template(project):
    templates = {"nginx": "nginx.conf", "apache": "httpd.conf", "haproxy": "haproxy.cfg"}
    for service, template in templates.items():
        folder = project / service
        if folder.exists():
            assert (folder / f"Dockerfile.{service}").is_file()
            assert (folder / "entrypoint.sh").stat().st_mode & stat.S_IXUSR
            assert (folder / template).is_file()
    assert (project / "django/Dockerfile.django").is_file()
    assert (project / "django/entrypoint.sh").stat().st_mode & stat.S_IXUSR


def test_unchosen_proxy_is_gone_with_every_mention_of_it(project):
    chosen = {"nginx": (project / "nginx").exists(), "apache": (project / "apache").exists()}
    assert any(chosen.values())
    for proxy in (name for name, present in chosen.items() if not present):
        mentions = [
            path for path, text in text_files(project) if re.search(proxy, text, re.IGNORECASE)
        ]
        assert mentions == [], f"{proxy} was not chosen but is mentioned in {mentions}"


def test_no_template_syntax_is_left(project):
    for path, text in text_files(project):
        assert "cookiecutter" not in text, path
        if not any(fnmatch(path, pattern) for pattern in VERBATIM):
            assert not re.search(r"\{\{|\{%|\{#", text), f"Jinja syntax left in {path}"


def test_env_holds_distinct_strong_secrets_readable_by_owner_only(project):
    env = project / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = read_env(env)
    assert set(values) == SECRET_KEYS
    assert len(set(values.values())) == len(values), "two secrets are equal"
    for key, value in values.items():
        # 64 hex digits = 256 bits; nothing a .env parser, shell or URL must quote.
        assert re.fullmatch(r"[0-9a-f]{64}", value), key
    assert read_env(project / ".env.example") == dict.fromkeys(SECRET_KEYS, "")
    assert ".env" in (project / ".gitignore").read_text().splitlines()


def test_two_bakes_get_different_secrets(cookies):
    first, second = (read_env(cookies.bake().project_path / ".env") for _ in range(2))
    assert set(first.values()).isdisjoint(second.values())


def test_mysql_80_bakes_with_an_end_of_life_warning(cookies, capfd):
    result = cookies.bake(extra_context={"mysql_version": "8.0"})
    assert result.exit_code == 0
    assert "MySQL 8.0 reached end of life" in capfd.readouterr().err
    assert "image: mysql:8.0" in (result.project_path / "docker-compose.yml").read_text()


def test_a_port_of_an_unchosen_proxy_may_equal_another(cookies):
    result = cookies.bake(extra_context={"use_apache": "no", "apache_port": "8000"})
    assert result.exit_code == 0


# The database names default to the slug; keep them valid where only the
# slug is wrong, so that exactly one problem is reported.
VALID_DB = {"db_name": "board_db", "db_user": "board_user"}
INVALID_ANSWERS = {
    "no proxy": ({"use_nginx": "no", "use_apache": "no"}, "use_nginx and use_apache are both off"),
    "proxy neither yes nor no": ({"use_nginx": "maybe"}, "use_nginx 'maybe' must be yes or no"),
    "slug with capitals": (
        {"project_slug": "Board2", **VALID_DB},
        "project_slug 'Board2' must be a lower-case",
    ),
    "slug with a dash": (
        {"project_slug": "my-board", **VALID_DB},
        "project_slug 'my-board' must be a lower-case",
    ),
    "slug starting with a digit": ({"project_slug": "2board", **VALID_DB}, "project_slug '2board'"),
    "slug is a keyword": ({"project_slug": "class", **VALID_DB}, "project_slug 'class' must be"),
    "slug shadows a module": (
        {"project_slug": "json", **VALID_DB},
        "project_slug 'json' would shadow",
    ),
    "slug shadows the app": (
        {"project_slug": "board", **VALID_DB},
        "project_slug 'board' would shadow",
    ),
    "port not a number": ({"http_port": "http"}, "http_port 'http' must be a whole number"),
    "port zero": ({"nginx_port": "0"}, "nginx_port '0' must be a whole number from 1 to 65535"),
    "port too big": ({"apache_port": "65536"}, "apache_port '65536' must be a whole number"),
    "equal ports": (
        {"nginx_port": "8001", "apache_port": "8001"},
        "apache_port and nginx_port are both 8001",
    ),
    "stats port on the site port": (
        {"haproxy_stats_port": "80"},
        "haproxy_stats_port and http_port are both 80",
    ),
    "no replicas": ({"app_replicas": "0"}, "app_replicas '0' must be a whole number of at least 1"),
    "replicas in words": ({"app_replicas": "two"}, "app_replicas 'two'"),
    "db_name with a dash": ({"db_name": "my-db"}, "db_name 'my-db' must be 1-64 characters"),
    "db_name too long": ({"db_name": "d" * 65}, "db_name 'ddd"),
    "db_user too long": ({"db_user": "u" * 33}, "db_user 'uuu"),
    "db_user root": ({"db_user": "root"}, "db_user must not be root"),
    "domain with a space": ({"domain_name": "exa mple.com"}, "domain_name 'exa mple.com' is not"),
    "domain with underscore": ({"domain_name": "my_site.com"}, "domain_name 'my_site.com'"),
    "domain starting with a dash": ({"domain_name": "-x.com"}, "domain_name '-x.com'"),
    "old python": ({"python_version": "3.9"}, "python_version '3.9' must look like 3.12"),
    "old haproxy": ({"haproxy_version": "2.4"}, "haproxy_version '2.4' must look like 3.2"),
    "unknown time zone": ({"time_zone": "Mars/Olympus"}, "time_zone 'Mars/Olympus' is not"),
    "language name": ({"language_code": "Korean"}, "language_code 'Korean' must be"),
}


@pytest.mark.parametrize("answers, message", INVALID_ANSWERS.values(), ids=INVALID_ANSWERS)
def test_invalid_answer_is_refused_with_one_line_and_writes_nothing(tmp_path, answers, message):
    run = bake_on_command_line(tmp_path, answers)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {message}"), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert list(tmp_path.iterdir()) == [], "a refused bake left files behind"


def test_several_bad_answers_are_all_reported_at_once(tmp_path):
    run = bake_on_command_line(tmp_path, {"http_port": "x", "db_user": "root", "app_replicas": "0"})
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 3, run.stderr
    assert list(tmp_path.iterdir()) == []
