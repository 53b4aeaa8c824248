"""This template repository, as its tests see it.

The prompts' answers and the files copied verbatim are read from
cookiecutter.json and hooks/answers.py, never restated, so the tests follow
the template.
"""

import importlib
import importlib.util
import itertools
import json
import re
import sys
import types
from fnmatch import fnmatch
from pathlib import Path

from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

from .commands import run

TEMPLATE = Path(__file__).resolve().parents[1]
CONTEXT = json.loads((TEMPLATE / "cookiecutter.json").read_text())
# Files cookiecutter copies without rendering (Django's own {{ }} templates).
VERBATIM = CONTEXT["_copy_without_render"]


def copied_verbatim(path):
    """Whether cookiecutter copies `path` (relative to the project) unrendered."""
    return any(fnmatch(str(path), pattern) for pattern in VERBATIM)


# use_<proxy> prompts: every combination with at least one proxy bakes.
PROXIES = [key.removeprefix("use_") for key in CONTEXT if key.startswith("use_")]
# Where a baked project records its answers (local_extensions.answers_json).
ANSWERS_FILE = ".cookiecutter.json"
PROXY_CHOICES = {
    "+".join(chosen): {f"use_{proxy}": proxy in chosen for proxy in PROXIES}
    for count in range(len(PROXIES), 0, -1)
    for chosen in itertools.combinations(PROXIES, count)
}
# The choice with every proxy: what the proxy choice does not change runs there, once.
EVERY_PROXY = next(iter(PROXY_CHOICES))


def load_module(name, path):
    """The Python file `path`, imported as module `name` from wherever it is."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# hooks/answers.py, which lists what each text prompt offers.
RULES = load_module("answers", TEMPLATE / "hooks" / "answers.py")
MYSQL_VERSIONS = RULES.SUPPORTED_MYSQL
TLS_MODES = RULES.TLS_MODES


def guides(project, suffix=".md"):
    """A baked project's README and its pages under docs/, in one language:
    ".md" English, ".ko.md" Korean."""
    pages = [project / f"README{suffix}", *sorted((project / "docs").glob(f"*{suffix}"))]
    return [page for page in pages if suffix == ".ko.md" or not page.name.endswith(".ko.md")]


def tls_answers(mode):
    """The answers of a user who picks tls `mode`: with acme, a contact the
    CA would take (the default, at example.com, is refused)."""
    return {"tls": mode} | ({"acme_email": "ops@board.kr"} if mode == "acme" else {})


PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"


def load_stack_checks():
    """The baked project's stack checks, which the Docker tier and the
    benchmark run: every public name of checks/check_stack.py and of each
    module of its stackcheck package, in one namespace.

    Copied verbatim into every bake (cookiecutter.json's _copy_without_render;
    tier 1 proves it), so the template's own files are the baked ones.
    """
    folder = PROJECT_TEMPLATE / "checks"
    sys.path.insert(0, str(folder))
    names = ["check_stack"] + [
        f"stackcheck.{path.stem}" for path in folder.glob("stackcheck/[!_]*.py")
    ]
    modules = [importlib.import_module(name) for name in names]
    return types.SimpleNamespace(
        **{
            name: value
            for module in modules
            for name, value in vars(module).items()
            if name[0] != "_"
        }
    )


def client_limits():
    """The names of HAProxy's limits per client, as its entrypoint gives them defaults."""
    entrypoint = (PROJECT_TEMPLATE / "haproxy" / "entrypoint.sh").read_text()
    return re.findall(r"^export (HAPROXY_CLIENT_\w+)=", entrypoint, re.MULTILINE)


def answers_of(project):
    """The answers a baked project was baked with, as it records them."""
    return json.loads((Path(project) / ANSWERS_FILE).read_text(encoding="utf-8"))


def proxies_of(project):
    """The proxies a baked project has, in the order the template names them."""
    answers = answers_of(project)
    return [proxy for proxy in PROXIES if answers[f"use_{proxy}"]]


def bake_on_command_line(output_dir, answers, *, check=False):
    """Run cookiecutter as a user does: `cookiecutter <template> key=value ...`."""
    return run(
        [sys.executable, "-m", "cookiecutter", TEMPLATE, "--no-input", "-o", output_dir]
        + [f"{key}={value}" for key, value in answers.items()],
        check=check,
    )


def default_answers():
    """Every prompt's default answer, rendered as `cookiecutter --no-input` would."""
    context = generate_context(context_file=TEMPLATE / "cookiecutter.json")
    answers = prompt_for_config(context, no_input=True)
    return {key: value for key, value in answers.items() if not key.startswith("_")}
