"""Tier 4: the baked Django app works.

Its own test suite passes once on SQLite and once on a real MySQL server,
in the mysql image on the private engine (harness/mysql.py; the django/
folder is the same whatever the MySQL version, and whatever the proxies but
for the expiry Nginx's cache reads, which the default bake has); a freshly
baked default project serves the board with nothing but its requirements
and the .env the template wrote. The suite owns Django's
behaviour: no test here repeats one of its tests.
"""

import importlib.metadata
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import answers
import pytest
import requests
from django.conf import global_settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.commands import clean_env, describe, run, tool
from harness.processes import Server, free_port
from harness.services import compose_app_environment
from harness.template import TEMPLATE

DATABASE = {"DB_NAME": "board", "DB_USER": "board", "DB_PASSWORD": "board-test-password"}


def test_project_suite_passes_on_sqlite_and_on_mysql(default_project, mysql):
    mysql.create_database(DATABASE["DB_NAME"], DATABASE["DB_USER"], DATABASE["DB_PASSWORD"])
    environments = {
        "SQLite": clean_env(),
        "MySQL": clean_env(DB_HOST="127.0.0.1", DB_PORT=str(mysql.port), **DATABASE),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    # Both at once: each run is one busy process on a two-core machine.
    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        runs = {
            name: pool.submit(
                run, command, cwd=default_project / "django", env=env, check=False, timeout=300
            )
            for name, env in environments.items()
        }
        results = {name: future.result() for name, future in runs.items()}

    failures = [
        f"=== on {name} ===\n{describe(command, result)}"
        for name, result in results.items()
        if result.returncode
    ]
    assert not failures, "\n".join(failures)
    # The MySQL-only tests ran rather than being skipped: the suite really
    # used MySQL.
    mysql_summary = results["MySQL"].stdout.strip().splitlines()[-1]
    assert "skipped" not in mysql_summary, results["MySQL"].stdout


def test_a_regional_language_code_passes_djangos_checks_and_translates(cookies):
    # ko-kr, as Django's own en-us: Django falls back to the language.
    project = cookies.bake(extra_context={"language_code": "ko-kr"}).project_path
    code = (
        "from django.conf import settings; from django.utils import translation; "
        "translation.activate(settings.LANGUAGE_CODE); print(translation.gettext('Log in'))"
    )
    command = [sys.executable, "manage.py"]
    env = clean_env(DJANGO_DEBUG="0")
    run([*command, "check", "--fail-level", "WARNING"], cwd=project / "django", env=env)
    shown = run([*command, "shell", "-v", "0", "-c", code], cwd=project / "django", env=env).stdout
    assert shown.strip() == "로그인"


def test_default_project_serves_the_board_after_migrate_and_runserver(cookies, tmp_path):
    # A fresh default bake and a clean environment: no DJANGO_* or DB_* at
    # all, so the secret key must come from the .env the template wrote and
    # the database is SQLite. The interpreter is the test venv, which has
    # django/requirements.txt installed and nothing set up for the app.
    result = cookies.bake()
    assert result.exception is None, result.exception
    django_dir = result.project_path / "django"
    env = clean_env()
    run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=django_dir, env=env)

    port = free_port()
    runserver = Server(
        "runserver",
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        port=port,
        cwd=django_dir,
        env=env,
        log_path=tmp_path / "runserver.log",
    )
    with runserver:
        response = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert response.status_code == 200, runserver.log_tail()
    page = response.text

    assert "<title>Community Board</title>" in page
    # Korean, the default language_code, from the compiled catalogue shipped
    # in the template (nothing ran compilemessages here).
    assert "글 목록" in page


# A user's first model, as the project's linters want it (a __str__).
NOTE_MODEL = """from django.db import models


class Note(models.Model):
    text = models.TextField()

    def __str__(self):
        return self.text
"""


def test_an_app_of_your_own_added_as_the_runbook_says_migrates_and_lints_clean(
    default_project, tmp_path
):
    """README.md, "Runbook": startapp in django/, the app in INSTALLED_APPS, a
    model, makemigrations, ruff's fixes and format for startapp's files."""
    project = tmp_path / default_project.name
    shutil.copytree(default_project, project, symlinks=True)  # bakes are shared
    django_dir, env = project / "django", clean_env()
    manage = [sys.executable, "manage.py"]
    run([*manage, "startapp", "notes"], cwd=django_dir, env=env)
    settings = django_dir / default_project.name / "settings.py"
    listed = settings.read_text().replace('    "board",\n]', '    "board",\n    "notes",\n]')
    assert '"notes"' in listed, "INSTALLED_APPS is not where the runbook says"
    settings.write_text(listed)
    (django_dir / "notes" / "models.py").write_text(NOTE_MODEL)
    run([*manage, "makemigrations", "notes"], cwd=django_dir, env=env)
    run([*manage, "migrate", "--noinput"], cwd=django_dir, env=env)
    run([*manage, "check", "--fail-level", "WARNING"], cwd=django_dir, env=env)
    run([*manage, "makemigrations", "--check", "--dry-run"], cwd=django_dir, env=env)
    # startapp's files import what they do not use yet, in another style.
    run([tool("ruff"), "check", "--no-cache", "--fix", "django/notes"], cwd=project, check=False)
    run([tool("ruff"), "format", "--no-cache", "django/notes"], cwd=project)
    run([tool("ruff"), "check", "--no-cache", "."], cwd=project)
    run([tool("ruff"), "format", "--no-cache", "--check", "."], cwd=project)


def test_check_deploy_reports_nothing_with_the_settings_compose_gives_the_app(default_project):
    # The default bake ends TLS in HAProxy, so its compose file turns on
    # Django's HTTPS protections; the secret key comes from the baked .env.
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=default_project / "django",
        env=clean_env(**compose_app_environment(default_project)),
    )
    assert result.stdout.strip() == "System check identified no issues (0 silenced).", result


@pytest.mark.parametrize("language_code", ["ja", "pt-br"])
def test_a_language_code_other_than_en_or_ko_passes_djangos_checks(default_project, language_code):
    # translation.E004 would fire if LANGUAGE_CODE were missing from LANGUAGES.
    run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=default_project / "django",
        env=clean_env(DJANGO_LANGUAGE_CODE=language_code),
    )


# The answer rules name what Django and the project's packages bring; checked
# here, where both are installed.


def test_the_languages_the_answer_rules_allow_are_djangos():
    assert {code for code, _ in global_settings.LANGUAGES} == answers.DJANGO_LANGUAGES


def requirements(path):
    """The requirements in a requirements file, following -r includes."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            found += requirements(path.parent / line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def installed_closure(wanted):
    """The distributions wanted, and all they require here, by canonical name."""
    seen, pending = set(), list(wanted)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        pending += [Requirement(r) for r in importlib.metadata.requires(name) or []]
    return seen


def test_the_slug_may_shadow_no_module_the_project_installs():
    dev = TEMPLATE / "{{cookiecutter.project_slug}}" / "django" / "requirements-dev.txt"
    distributions = installed_closure(requirements(dev))
    modules = {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if {canonicalize_name(owner) for owner in owners} & distributions
    }
    assert modules <= answers.INSTALLED_MODULES, modules - answers.INSTALLED_MODULES
