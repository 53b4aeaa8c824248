"""Run this project's commands in a child process, as the entrypoint would.

Settings are read once, when the process starts; a child process is the only
honest way to test how an environment turns into settings.
"""

import os
import subprocess
import sys
from pathlib import Path

DJANGO_DIR = Path(__file__).resolve().parent.parent


def child_env(**changes):
    """This process's environment with `changes` applied (None removes a variable)."""
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(command, env, timeout=120):
    return subprocess.run(  # noqa: S603 (our own commands, no shell)
        command,
        cwd=DJANGO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage(*args, env):
    return run([sys.executable, "manage.py", *args], env)
