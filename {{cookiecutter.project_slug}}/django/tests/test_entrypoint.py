"""entrypoint.sh, run natively: require, check and wait, collect, exec."""

import os
import sys

import pytest

from .processes import DJANGO_DIR, child_env, run

ENTRYPOINT = str(DJANGO_DIR / "entrypoint.sh")


SECRET = "<a file holding a secret>"


def entrypoint_env(folder, **changes):
    """The entrypoint's environment; SECRET in a change stands for a file in
    `folder` that holds a secret, as Compose mounts one."""
    secret = folder / "secret"
    secret.write_text("x" * 50)
    # `python` in the script is the interpreter running these tests.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {"PATH": path, "DJANGO_SECRET_KEY_FILE": SECRET, **changes}
    return child_env(**{k: str(secret) if v == SECRET else v for k, v in env.items()})


def management_command_that_touches(marker):
    """A Django command the entrypoint prepares for; it leaves `marker` if it ran."""
    return ["python", "manage.py", "shell", "-c", f"open({str(marker)!r}, 'w').close()"]


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"DJANGO_SECRET_KEY_FILE": ""}, "DJANGO_SECRET_KEY_FILE"),
        (
            {"DB_HOST": "db", "DB_NAME": "board", "DB_USER": "board", "DB_PASSWORD_FILE": ""},
            "DB_PASSWORD_FILE",
        ),
        (
            {"DB_HOST": "db", "DB_NAME": "board", "DB_USER": None, "DB_PASSWORD_FILE": SECRET},
            "DB_USER",
        ),
        (
            {"DB_HOST": "db", "DB_NAME": None, "DB_USER": "board", "DB_PASSWORD_FILE": SECRET},
            "DB_NAME",
        ),
    ],
)
def test_stops_before_anything_runs_when_a_required_variable_is_missing(tmp_path, changes, missing):
    marker = tmp_path / "ran"
    command = ["sh", ENTRYPOINT, *management_command_that_touches(marker)]
    result = run(command, entrypoint_env(tmp_path, **changes))
    assert result.returncode != 0
    assert f"{missing} must be set and non-empty" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("variable", ["DJANGO_SECRET_KEY_FILE", "DB_PASSWORD_FILE"])
def test_stops_before_anything_runs_when_a_secret_file_is_missing(tmp_path, variable):
    marker = tmp_path / "ran"
    command = ["sh", ENTRYPOINT, *management_command_that_touches(marker)]
    database = {"DB_HOST": "db", "DB_NAME": "board", "DB_USER": "board"}
    changes = {"DB_PASSWORD_FILE": SECRET, **database, variable: "/nowhere"}
    result = run(command, entrypoint_env(tmp_path, **changes))
    assert result.returncode != 0
    assert f"{variable} must name a readable, non-empty file, not '/nowhere'" in result.stderr
    assert not marker.exists()


def test_collects_static_files_then_becomes_the_command(tmp_path):
    static_root = tmp_path / "staticfiles"
    env = entrypoint_env(tmp_path, DB_HOST=None, STATIC_ROOT=str(static_root))
    code = "import os; print('command ran in', os.getcwd())"
    # Started from elsewhere: the script moves to its own folder first.
    result = run(["sh", ENTRYPOINT, "python", "manage.py", "shell", "-c", code], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (static_root / "staticfiles.json").is_file()
    assert f"command ran in {DJANGO_DIR}" in result.stdout


def test_a_system_check_error_stops_the_start(tmp_path):
    marker = tmp_path / "ran"
    # Collecting into a folder that is also a source is an error (staticfiles.E002).
    env = entrypoint_env(tmp_path, DB_HOST=None, STATIC_ROOT=str(DJANGO_DIR / "static"))
    # `shell` runs no system checks of its own: only the entrypoint's can stop it.
    result = run(["sh", ENTRYPOINT, *management_command_that_touches(marker)], env)
    assert result.returncode != 0
    assert "staticfiles.E002" in result.stderr
    assert not marker.exists()


def test_skips_collectstatic_when_told_to(tmp_path):
    static_root = tmp_path / "staticfiles"
    env = entrypoint_env(
        tmp_path, DB_HOST=None, STATIC_ROOT=str(static_root), DJANGO_COLLECTSTATIC="0"
    )
    result = run(["sh", ENTRYPOINT, "python", "manage.py", "check"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not static_root.exists()


def test_a_failed_database_wait_stops_the_start(tmp_path):
    marker = tmp_path / "ran"
    # Nothing listens on port 9 (discard) of loopback: every attempt is refused.
    env = entrypoint_env(
        tmp_path,
        DB_HOST="127.0.0.1",
        DB_PORT="9",
        DB_NAME="board",
        DB_USER="board",
        DB_PASSWORD_FILE=SECRET,
        DB_WAIT_TIMEOUT="1",
    )
    result = run(["sh", ENTRYPOINT, *management_command_that_touches(marker)], env)
    assert result.returncode != 0
    assert "still unreachable" in result.stderr
    assert not marker.exists()


def test_any_other_command_runs_as_it_is(tmp_path):
    # `docker compose run app sh`: a shell, with nothing checked or collected.
    static_root = tmp_path / "staticfiles"
    env = entrypoint_env(tmp_path, DJANGO_SECRET_KEY_FILE="", STATIC_ROOT=str(static_root))
    result = run(["sh", ENTRYPOINT, "sh", "-c", "echo a shell"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a shell\n"
    assert not static_root.exists()
