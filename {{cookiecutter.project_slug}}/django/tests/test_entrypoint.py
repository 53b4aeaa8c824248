"""entrypoint.sh, run natively: check the environment, wait, collect, exec."""

import os
import sys

import pytest

from .processes import DJANGO_DIR, child_env, run

ENTRYPOINT = str(DJANGO_DIR / "entrypoint.sh")


def entrypoint_env(**changes):
    # `python` in the script is the interpreter running these tests.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return child_env(**{"PATH": path, "DJANGO_SECRET_KEY": "x" * 50, **changes})


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        (
            {"DB_HOST": "db", "DB_NAME": "board", "DB_USER": "board", "DB_PASSWORD": ""},
            "DB_PASSWORD",
        ),
        ({"DB_HOST": "db", "DB_NAME": "board", "DB_USER": None, "DB_PASSWORD": "x"}, "DB_USER"),
        ({"DB_HOST": "db", "DB_NAME": None, "DB_USER": "board", "DB_PASSWORD": "x"}, "DB_NAME"),
    ],
)
def test_stops_before_anything_runs_when_a_required_variable_is_missing(tmp_path, changes, missing):
    marker = tmp_path / "ran"
    result = run(["sh", ENTRYPOINT, "touch", str(marker)], entrypoint_env(**changes))
    assert result.returncode != 0
    assert f"{missing} must be set and non-empty" in result.stderr
    assert not marker.exists()


def test_collects_static_files_then_becomes_the_command(tmp_path):
    static_root = tmp_path / "staticfiles"
    env = entrypoint_env(DB_HOST=None, STATIC_ROOT=str(static_root))
    # Started from elsewhere: the script moves to its own folder first.
    result = run(["sh", ENTRYPOINT, "sh", "-c", 'echo "command ran in $PWD"'], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (static_root / "staticfiles.json").is_file()
    assert f"command ran in {DJANGO_DIR}" in result.stdout


def test_skips_collectstatic_when_told_to(tmp_path):
    static_root = tmp_path / "staticfiles"
    env = entrypoint_env(DB_HOST=None, STATIC_ROOT=str(static_root), DJANGO_COLLECTSTATIC="0")
    result = run(["sh", ENTRYPOINT, "true"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not static_root.exists()


def test_a_failed_database_wait_stops_the_start(tmp_path):
    marker = tmp_path / "ran"
    # Nothing listens on port 9 (discard) of loopback: every attempt is refused.
    env = entrypoint_env(
        DB_HOST="127.0.0.1",
        DB_PORT="9",
        DB_NAME="board",
        DB_USER="board",
        DB_PASSWORD="x",
        DB_WAIT_TIMEOUT="1",
    )
    result = run(["sh", ENTRYPOINT, "touch", str(marker)], env)
    assert result.returncode != 0
    assert "still unreachable" in result.stderr
    assert not marker.exists()
