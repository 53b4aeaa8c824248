"""Refuse answers that would bake a broken project.

Cookiecutter runs this before any file is written and removes the (still
empty) project folder when it exits non-zero. Every problem is reported as one
line naming the prompt, so a user can fix all answers in one go.
"""

import keyword
import re
import sys
import zoneinfo

# Each answer arrives as a JSON string literal, which is also a valid Python
# one: a quote or backslash in an answer cannot break this file.
ANSWERS = {
    "project_slug": {{ cookiecutter.project_slug | string | jsonify }},
    "domain_name": {{ cookiecutter.domain_name | string | jsonify }},
    "use_nginx": {{ cookiecutter.use_nginx | yes_no | jsonify }},
    "use_apache": {{ cookiecutter.use_apache | yes_no | jsonify }},
    "app_replicas": {{ cookiecutter.app_replicas | string | jsonify }},
    "mysql_version": {{ cookiecutter.mysql_version | string | jsonify }},
    "python_version": {{ cookiecutter.python_version | string | jsonify }},
    "haproxy_version": {{ cookiecutter.haproxy_version | string | jsonify }},
    "http_port": {{ cookiecutter.http_port | string | jsonify }},
    "haproxy_stats_port": {{ cookiecutter.haproxy_stats_port | string | jsonify }},
    "nginx_port": {{ cookiecutter.nginx_port | string | jsonify }},
    "apache_port": {{ cookiecutter.apache_port | string | jsonify }},
    "db_name": {{ cookiecutter.db_name | string | jsonify }},
    "db_user": {{ cookiecutter.db_user | string | jsonify }},
    "time_zone": {{ cookiecutter.time_zone | string | jsonify }},
    "language_code": {{ cookiecutter.language_code | string | jsonify }},
}

# The slug becomes a Python package next to these imports, and a Compose
# project name ([a-z0-9][a-z0-9_-]*); lower-case identifiers satisfy both.
SLUG = re.compile(r"[a-z][a-z0-9_]*")
TAKEN_NAMES = {"board", "django", "gunicorn", "pymysql", "tests", "static", "templates", "locale"}
# MySQL accepts more in quoted names; these need no quoting anywhere
# (SQL, shell, URLs). Limits: 64 characters for databases, 32 for users.
DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DB_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
VERSION = re.compile(r"(\d+)\.(\d+)")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")
HOST_PORTS = {
    "http_port": "yes",
    "haproxy_stats_port": "yes",
    "nginx_port": ANSWERS["use_nginx"],
    "apache_port": ANSWERS["use_apache"],
}
# Oldest releases the rendered configs and the app are tested against.
MIN_PYTHON = (3, 10)
MIN_HAPROXY = (2, 6)


def is_host_name(name):
    labels = name.split(".")
    return len(name) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels)


def as_int(value):
    return int(value) if re.fullmatch(r"[0-9]+", value) else None


def version_at_least(value, minimum):
    match = VERSION.fullmatch(value)
    return bool(match) and tuple(map(int, match.groups())) >= minimum


def is_time_zone(name):
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


def problems(a):
    slug = a["project_slug"]
    if not SLUG.fullmatch(slug) or keyword.iskeyword(slug):
        yield (
            f"project_slug {slug!r} must be a lower-case Python identifier "
            "(a-z, 0-9, _; starting with a letter), which Compose also accepts"
        )
    elif slug in TAKEN_NAMES or slug in sys.stdlib_module_names:
        yield f"project_slug {slug!r} would shadow the module of the same name; pick another"

    for key in ("use_nginx", "use_apache"):
        if a[key] not in ("yes", "no"):
            yield f"{key} {a[key]!r} must be yes or no"
    if a["use_nginx"] == a["use_apache"] == "no":
        yield "use_nginx and use_apache are both off: choose at least one proxy for HAProxy"

    replicas = as_int(a["app_replicas"])
    if replicas is None or replicas < 1:
        yield f"app_replicas {a['app_replicas']!r} must be a whole number of at least 1"

    ports = {}
    for key in (key for key, used in HOST_PORTS.items() if used == "yes"):
        port = as_int(a[key])
        if port is None or not 1 <= port <= 65535:
            yield f"{key} {a[key]!r} must be a whole number from 1 to 65535"
        elif port in ports:
            yield f"{key} and {ports[port]} are both {port}: host ports must differ"
        else:
            ports[port] = key

    if not DB_NAME.fullmatch(a["db_name"]):
        yield (
            f"db_name {a['db_name']!r} must be 1-64 characters of letters, digits "
            "and _, not starting with a digit"
        )
    if not DB_USER.fullmatch(a["db_user"]):
        yield (
            f"db_user {a['db_user']!r} must be 1-32 characters of letters, digits "
            "and _, not starting with a digit"
        )
    elif a["db_user"].lower() == "root":
        yield "db_user must not be root: the MySQL image creates root itself"

    if not is_host_name(a["domain_name"]):
        yield f"domain_name {a['domain_name']!r} is not a host name (like example.com or localhost)"

    if not version_at_least(a["python_version"], MIN_PYTHON):
        yield f"python_version {a['python_version']!r} must look like 3.12 and be at least 3.10"
    if not version_at_least(a["haproxy_version"], MIN_HAPROXY):
        yield f"haproxy_version {a['haproxy_version']!r} must look like 3.2 and be at least 2.6"

    if not is_time_zone(a["time_zone"]):
        yield f"time_zone {a['time_zone']!r} is not an IANA time zone (like Asia/Seoul or UTC)"
    if not LANGUAGE.fullmatch(a["language_code"]):
        yield f"language_code {a['language_code']!r} must be a language code like ko, en or pt-br"


def main():
    errors = list(problems(ANSWERS))
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    if errors:
        return 1
    if ANSWERS["mysql_version"] == "8.0":
        print(
            "WARNING: MySQL 8.0 reached end of life in April 2026 and gets no more "
            "security fixes; prefer 8.4 LTS.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
