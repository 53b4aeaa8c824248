"""Jinja helpers for this template (cookiecutter loads them via _extensions).

A yes/no prompt does not always arrive as a boolean: cookiecutter 2.7 turns
`use_nginx=no` on the command line into False, 2.6 passes the string "no".
Templates ask `{% if cookiecutter.use_nginx is yes %}` and get the same
answer either way.

`quoted` writes an answer as a double-quoted string that YAML and TOML read
back as exactly the text typed: unquoted, YAML would read `null`, `yes` or
`0123` as something else.

`address_list` writes a list of addresses answered with commas or spaces
as one space-separated line; `host_port_address` writes an address as
Compose's `ports` take it (IPv6 in brackets).

`sizing(app_replicas)` is how big each tier is for that many replicas:
the arithmetic that docker-compose.yml, haproxy.cfg and both READMEs render.

`answers_json` writes the answers as the bake read them, in the types
cookiecutter.json declares (a yes/no prompt's answer as a boolean, a port as
a number, whichever way it arrived), for the baked project's own record.

`hooks_dir` is this template's hooks folder, absolute: cookiecutter runs a
rendered copy of each hook from a temporary folder, inside the new project,
and names the template as it was given (`cookiecutter .`).
"""

import importlib.util
import json
from pathlib import Path

from jinja2.ext import Extension

# Resolved when cookiecutter imports this module, before it changes folders.
TEMPLATE_DIR = Path(__file__).resolve().parent
HOOKS_DIR = TEMPLATE_DIR / "hooks"
PROMPTS = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))


def _answer_rules():
    """hooks/answers.py, loaded by its path: its folder is no package, and
    cookiecutter puts this template last on sys.path, where any other module
    named `hooks` would come first."""
    spec = importlib.util.spec_from_file_location("answers", HOOKS_DIR / "answers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WEB_SERVER_INSTANCES = _answer_rules().WEB_SERVER_INSTANCES

YES = {"1", "true", "t", "yes", "y", "on"}
NO = {"0", "false", "f", "no", "n", "off"}


def is_yes(value):
    return str(value).strip().lower() in YES


def yes_no(value):
    """The answer as "yes" or "no"; anything else unchanged, for the pre-gen hook to refuse."""
    text = str(value).strip().lower()
    return "yes" if text in YES else "no" if text in NO else str(value)


def quoted(value):
    """A JSON string: valid YAML and TOML, non-ASCII text kept readable."""
    return json.dumps(str(value), ensure_ascii=False)


def address_list(value):
    """A list of addresses answered with commas or spaces, space-separated."""
    return " ".join(str(value).replace(",", " ").split())


def host_port_address(value):
    """An address as Compose's ports take it: an IPv6 one in brackets."""
    return f"[{value}]" if ":" in str(value) else str(value)


def answers_json(context):
    """Every prompt's answer in the type of its default in cookiecutter.json,
    as JSON. Cookiecutter's own keys (`_template`, `_output_dir`: paths on the
    baking machine) are left out."""
    kinds = {bool: is_yes, int: int}
    answers = {
        key: kinds.get(type(default), str)(context[key])
        for key, default in PROMPTS.items()
        if not key.startswith("_")
    }
    return json.dumps(answers, indent=2, ensure_ascii=False)


# A replica may use one CPU (docker-compose.yml): Gunicorn's 2 x CPUs + 1
# workers, each with a few threads for requests that wait on MySQL.
GUNICORN_WORKERS = 3
GUNICORN_THREADS = 4
# Requests a web server answers without the app: static files, its own pages.
WEB_SERVER_SPARE = 8
# Connections beside the app's: migrate, backup, an admin, monitor's 3.
DATABASE_SPARE = 10
MYSQL_DEFAULT_MAX_CONNECTIONS = 151


def sizing(app_replicas):
    """Each tier's limits for `app_replicas` replicas.

    - app_threads: the requests all replicas work on at once.
    - web_server_instances: how many instances each chosen web server runs.
    - web_server_maxconn: HAProxy's `maxconn` per web server instance. Each
      one alone (the others down) can keep every app thread busy; past it,
      requests queue in HAProxy, in order, not in a backlog.
    - mysql_max_connections: every thread keeps one connection, and a
      deploy runs twice the replicas for a while; never below MySQL's own.
    """
    app_threads = int(app_replicas) * GUNICORN_WORKERS * GUNICORN_THREADS
    return {
        "gunicorn_workers": GUNICORN_WORKERS,
        "gunicorn_threads": GUNICORN_THREADS,
        "app_threads": app_threads,
        "web_server_instances": WEB_SERVER_INSTANCES,
        "web_server_maxconn": app_threads + WEB_SERVER_SPARE,
        "mysql_max_connections": max(
            MYSQL_DEFAULT_MAX_CONNECTIONS, 2 * app_threads + DATABASE_SPARE
        ),
    }


class TemplateHelpers(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.tests["yes"] = is_yes
        environment.filters["yes_no"] = yes_no
        environment.filters["quoted"] = quoted
        environment.filters["address_list"] = address_list
        environment.filters["host_port_address"] = host_port_address
        environment.filters["answers_json"] = answers_json
        environment.globals["hooks_dir"] = str(HOOKS_DIR)
        environment.globals["sizing"] = sizing
