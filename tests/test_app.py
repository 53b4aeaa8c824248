"""Tier 4: the baked Django app works.

Its own test suite passes for every baked combination, on SQLite and on a real
MariaDB server; and a freshly baked default project serves the board with
nothing but its requirements and the .env the template wrote.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from native import MariaDB, Server, free_port

DATABASE = {"DB_NAME": "board", "DB_USER": "board", "DB_PASSWORD": "board-test-password"}


def clean_env(**extra):
    """This environment minus anything that configures Django, the database,
    Gunicorn or pytest, so a baked project sees only what a test gives it."""
    prefixes = ("DJANGO_", "DB_", "GUNICORN_", "PYTEST_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    # Leave the baked tree as baked: other tiers lint and scan it afterwards.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run(command, cwd, env, timeout=300):
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = f"$ {' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result.returncode, output


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    with MariaDB(tmp_path_factory.mktemp("mariadb")) as server:
        server.create_database(DATABASE["DB_NAME"], DATABASE["DB_USER"], DATABASE["DB_PASSWORD"])
        yield server


def test_project_suite_passes_on_sqlite_and_on_mariadb(project, mariadb):
    environments = {
        "SQLite": clean_env(),
        "MariaDB": clean_env(DB_HOST="127.0.0.1", DB_PORT=str(mariadb.port), **DATABASE),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    # Both at once: each run is one busy process, and tier 4 runs the suite
    # twelve times, so this halves its time on a two-core machine.
    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        runs = {
            name: pool.submit(run, command, project / "django", env)
            for name, env in environments.items()
        }
        results = {name: future.result() for name, future in runs.items()}

    failures = [f"=== on {name} ===\n{output}" for name, (code, output) in results.items() if code]
    assert not failures, "\n".join(failures)
    # The MySQL-only tests ran rather than being skipped: the suite really
    # used MariaDB.
    mariadb_summary = results["MariaDB"][1].strip().splitlines()[-1]
    assert "skipped" not in mariadb_summary, results["MariaDB"][1]


def test_default_project_serves_the_board_after_migrate_and_runserver(cookies, tmp_path):
    # A fresh default bake and a clean environment: no DJANGO_* or DB_* at
    # all, so the secret key must come from the .env the template wrote and
    # the database is SQLite. The interpreter is the test venv, which has
    # django/requirements.txt installed and nothing set up for the app.
    result = cookies.bake()
    assert result.exception is None, result.exception
    django_dir = result.project_path / "django"
    env = clean_env()

    code, output = run([sys.executable, "manage.py", "migrate", "--noinput"], django_dir, env)
    assert code == 0, output

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


@pytest.mark.parametrize("language_code", ["ja", "pt-br"])
def test_a_language_code_other_than_en_or_ko_passes_djangos_checks(cookies, language_code):
    # translation.E004 would fire if LANGUAGE_CODE were missing from LANGUAGES.
    result = cookies.bake(extra_context={"language_code": language_code, "time_zone": "UTC"})
    assert result.exception is None, result.exception
    code, output = run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        result.project_path / "django",
        clean_env(),
    )
    assert code == 0, output
