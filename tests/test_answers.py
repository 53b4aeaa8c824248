"""Tier 1: the rules every answer must pass (hooks/answers.py), without baking.

Each case changes the default answers in one place and expects exactly one
problem that names the prompt. tests/test_bake.py proves that the hook applies
these rules to a real bake and writes nothing when one fails.
"""

import datetime
import re
import tomllib

import answers
import pytest

import local_extensions
from harness.template import PROJECT_TEMPLATE, TEMPLATE, default_answers

DEFAULTS = {
    key: "yes" if value is True else "no" if value is False else str(value)
    for key, value in default_answers().items()
}
# The database names default to the slug; keep them valid where only the
# slug is wrong, so that exactly one problem is reported.
VALID_DB = {"db_name": "board_db", "db_user": "board_user"}


def made_from_name(slug):
    """The slug and the database names as cookiecutter makes them from a name."""
    return {"project_slug": slug, "db_name": slug, "db_user": slug}


def problems_with(**changes):
    return answers.problems({**DEFAULTS, **changes})


def test_the_default_answers_pass():
    assert problems_with() == []


REFUSED = {
    # Names
    "empty project name": ({"project_name": "  "}, "project_name must not be empty"),
    # Answers made from project_name (the slug) and from the slug (the
    # database names), left at their defaults: the name typed is named.
    "an empty name, and what is made of it": (
        {"project_name": "", **made_from_name(answers.NO_SLUG)},
        "project_name must not be empty",
    ),
    "a name whose slug starts with a digit": (
        {"project_name": "49 board", **made_from_name("49_board")},
        "project_name '49 board': project_slug '49_board' must",
    ),
    "a name with nothing to make a slug of": (
        {"project_name": "🎉🎉", **made_from_name(answers.NO_SLUG)},
        "project_name '🎉🎉' has no letter or digit to make project_slug from",
    ),
    "a name too long for the database names": (
        {"project_name": "b" * 80, **made_from_name("b" * 80)},
        f"project_name '{'b' * 80}': db_name",
    ),
    "a slug typed wrong, and the database names made from it": (
        {"project_slug": "2board", "db_name": "2board", "db_user": "2board"},
        "project_slug '2board' must",
    ),
    # An ACME CA refuses a contact at a domain reserved for examples.
    "acme with the default contact": (
        {"tls": "acme", "domain_name": "board.kr"},
        "author_email 'you@example.com': acme_email 'you@example.com' is at a domain reserved",
    ),
    "slug with capitals": ({"project_slug": "Board2", **VALID_DB}, "project_slug 'Board2' must"),
    "slug with a dash": ({"project_slug": "my-board", **VALID_DB}, "project_slug 'my-board'"),
    "slug starting with a digit": ({"project_slug": "2board", **VALID_DB}, "project_slug '2board'"),
    "slug is a keyword": ({"project_slug": "class", **VALID_DB}, "project_slug 'class' must"),
    "slug shadows the standard library": (
        {"project_slug": "json", **VALID_DB},
        "project_slug 'json' would shadow",
    ),
    "slug shadows the board app": (
        {"project_slug": "board", **VALID_DB},
        "project_slug 'board' would shadow",
    ),
    "slug shadows an installed package": (
        {"project_slug": "environs", **VALID_DB},
        "project_slug 'environs' would shadow",
    ),
    "slug shadows a project folder": (
        {"project_slug": "checks", **VALID_DB},
        "project_slug 'checks' would shadow",
    ),
    "e-mail without @": ({"author_email": "you.example.com"}, "author_email 'you.example.com'"),
    "e-mail with a bad domain": ({"author_email": "you@exa mple"}, "author_email 'you@exa mple'"),
    "ACME e-mail without @": ({"acme_email": "admin"}, "acme_email 'admin' is not an e-mail"),
    # Proxies
    "no proxy": ({"use_nginx": "no", "use_apache": "no"}, "use_nginx and use_apache are both off"),
    "proxy neither yes nor no": ({"use_nginx": "maybe"}, "use_nginx 'maybe' must be yes or no"),
    # Kubernetes
    "kubernetes neither yes nor no": ({"kubernetes": "k8s"}, "kubernetes 'k8s' must be yes or no"),
    "kubernetes with acme": (
        {"kubernetes": "yes", "tls": "acme", "acme_email": "ops@board.kr"},
        "kubernetes=yes with tls=acme",
    ),
    "kubernetes with a slug too long for a label": (
        {"kubernetes": "yes", "project_slug": "b" * 64, "db_name": "b", "db_user": "b"},
        "project_slug is longer than the 63 characters",
    ),
    # Numbers Compose would refuse or misread
    "port not a number": ({"http_port": "http"}, "http_port 'http' must be a whole number"),
    "port zero": ({"http_port": "0"}, "http_port '0' must be a whole number from 1 to 65535"),
    "port too big": ({"apache_port": "65536"}, "apache_port '65536' must be"),
    "port with a leading zero": ({"http_port": "080"}, "http_port '080' must be"),
    "equal ports": (
        {"https_port": "8888"},
        "haproxy_stats_port and https_port are both 8888",
    ),
    "a site port on a web server's second": (
        {"http_port": "8001"},
        "nginx_port 8000 takes ports 8000-8001 and http_port takes 8001",
    ),
    # Each web server takes a port per instance: the answer and the next.
    "a web server's second port on another's first": (
        {"nginx_port": "8001", "apache_port": "8002"},
        "apache_port 8002 takes ports 8002-8003 and nginx_port takes 8002",
    ),
    "a web server's first port on another's second": (
        {"nginx_port": "8003"},
        "apache_port 8002 takes ports 8002-8003 and nginx_port takes 8003",
    ),
    "a web server's second port beyond the last": (
        {"nginx_port": "65535"},
        "nginx_port '65535' must be a whole number from 1 to 65534",
    ),
    "stats port on the site port": (
        {"haproxy_stats_port": "80"},
        "haproxy_stats_port and http_port are both 80",
    ),
    "https port not a number": ({"https_port": "ssl"}, "https_port 'ssl' must be a whole number"),
    "https port on the http port": (
        {"https_port": "80"},
        "https_port and http_port are both 80",
    ),
    "no replicas": ({"app_replicas": "0"}, "app_replicas '0' must be a whole number from 1 to"),
    "replicas in words": ({"app_replicas": "two"}, "app_replicas 'two'"),
    "replicas with a leading zero": ({"app_replicas": "02"}, "app_replicas '02'"),
    "more replicas than a web server holds": ({"app_replicas": "33"}, "app_replicas '33'"),
    "replicas past a 64-bit integer": ({"app_replicas": "9" * 20}, "app_replicas '999"),
    # Addresses
    "stats address that is a name": (
        {"haproxy_stats_address": "localhost"},
        "haproxy_stats_address 'localhost' is not an IP address",
    ),
    "stats address with a port": (
        {"haproxy_stats_address": "127.0.0.1:8888"},
        "haproxy_stats_address '127.0.0.1:8888' is not",
    ),
    "trusted proxy that is a name": (
        {"trusted_proxies": "lb.example.com"},
        "trusted_proxies: 'lb.example.com' is not an IP address or network",
    ),
    "trusted network with a bad prefix": (
        {"trusted_proxies": "10.0.0.0/33"},
        "trusted_proxies: '10.0.0.0/33' is not",
    ),
    "trusted proxies that trust everyone": (
        {"trusted_proxies": "0.0.0.0/0"},
        "trusted_proxies: '0.0.0.0/0' would trust every address",
    ),
    "trusted IPv6 proxies that trust everyone": (
        {"trusted_proxies": "192.0.2.10 ::/0"},
        "trusted_proxies: '::/0' would trust every address",
    ),
    # Databases
    "db_name with a dash": ({"db_name": "my-db"}, "db_name 'my-db' must be"),
    "db_name that leaves no room for test_": ({"db_name": "d" * 60}, "db_name 'ddd"),
    "db_name is MySQL's own schema": ({"db_name": "mysql"}, "db_name 'mysql' is one of MySQL's"),
    "db_name is MySQL's sys schema": ({"db_name": "SYS"}, "db_name 'SYS' is one of MySQL's"),
    "db_name is performance_schema": (
        {"db_name": "performance_schema"},
        "db_name 'performance_schema' is one of",
    ),
    "db_user too long": ({"db_user": "u" * 33}, "db_user 'uuu"),
    "db_user root": ({"db_user": "root"}, "db_user must not be root"),
    "db_user backup": ({"db_user": "Backup"}, "db_user must not be Backup"),
    # Choices, typed as text
    "a tls mode not offered": (
        {"tls": "letsencrypt"},
        "tls 'letsencrypt' is not offered: choose self-signed, own, acme, none",
    ),
    "a MySQL line not offered": ({"mysql_version": "5.7"}, "mysql_version '5.7' is not offered"),
    "MySQL 8.0, past end of life": (
        {"mysql_version": "8.0"},
        "mysql_version '8.0' reached end of life in April 2026: choose 8.4, 9.7",
    ),
    "Python 3.10, past end of life": (
        {"python_version": "3.10"},
        "python_version '3.10' reached end of life in October 2026: choose 3.11",
    ),
    "old python": ({"python_version": "3.9"}, "python_version '3.9' is not offered: choose 3.11"),
    "python without a minor": ({"python_version": "3"}, "python_version '3' is not offered"),
    "old haproxy": ({"haproxy_version": "2.4"}, "haproxy_version '2.4' is not offered: choose"),
    "haproxy patch release": ({"haproxy_version": "3.2.26"}, "haproxy_version '3.2.26' is not"),
    # The site
    "domain with a space": ({"domain_name": "exa mple.com"}, "domain_name 'exa mple.com' is not"),
    "domain with an underscore": ({"domain_name": "my_site.com"}, "domain_name 'my_site.com'"),
    "domain starting with a dash": ({"domain_name": "-x.com"}, "domain_name '-x.com'"),
    "domain with capitals": ({"domain_name": "Example.com"}, "domain_name 'Example.com'"),
    "domain with a trailing dot": ({"domain_name": "example.com."}, "domain_name 'example.com.'"),
    "domain with a port": ({"domain_name": "example.com:8080"}, "domain_name 'example.com:8080'"),
    "numeric domain that is no address": ({"domain_name": "10.0.0"}, "domain_name '10.0.0'"),
    "IPv6 domain": ({"domain_name": "::1"}, "domain_name '::1': IPv6 addresses are not supported"),
    "unknown time zone": ({"time_zone": "Mars/Olympus"}, "time_zone 'Mars/Olympus' is not"),
    "language name": ({"language_code": "Korean"}, "language_code 'Korean' is not a language"),
    "language Django does not translate": (
        {"language_code": "tlh"},
        "language_code 'tlh' is not a language Django translates",
    ),
    "language in capitals": ({"language_code": "pt-BR"}, "language_code 'pt-BR'"),
    "a region of no translated language": ({"language_code": "tlh-us"}, "language_code 'tlh-us'"),
    "a region that is no region": ({"language_code": "ko-korea"}, "language_code 'ko-korea'"),
} | {
    f"acme with a contact at {contact.partition('@')[2]}": (
        {"tls": "acme", "domain_name": "board.kr", "acme_email": contact},
        f"acme_email {contact!r} is at a domain reserved",
    )
    for contact in ("ops@example.org", "ops@board.test", "root@localhost")
}


@pytest.mark.parametrize(("changes", "message"), REFUSED.values(), ids=REFUSED)
def test_a_bad_answer_gets_one_line_naming_its_prompt(changes, message):
    found = problems_with(**changes)
    assert len(found) == 1 and found[0].startswith(message), found


# Text that would break a file it lands in, in any prompt.
UNSAFE_TEXT = {
    "newline": "Board\nname",
    "carriage return": "Board\rname",
    "tab": "Board\tname",
    "escape": "Board\x1b[31m",
    "line separator": "Board\u2028name",
    "right-to-left override": "Board\u202ename",
    "Jinja expression": "{{ cookiecutter.db_name }}",
    "Jinja statement": "{% raw %}",
    "Jinja comment": "{# note #}",
}


@pytest.mark.parametrize("prompt", sorted(DEFAULTS))
@pytest.mark.parametrize("text", UNSAFE_TEXT.values(), ids=UNSAFE_TEXT)
def test_control_characters_and_template_syntax_are_refused_in_every_prompt(prompt, text):
    found = problems_with(**{prompt: text})
    assert len(found) == 1 and found[0].startswith(prompt), found


ACCEPTED = {
    "an IPv4 address as the domain": {"domain_name": "192.0.2.10"},
    "a one-label host name": {"domain_name": "intranet"},
    "a regional language": {"language_code": "pt-br"},
    "a script variant": {"language_code": "zh-hans"},
    "Django's own default, a region of a translated language": {"language_code": "en-us"},
    "a region of Korean": {"language_code": "ko-kr"},
    "the newest Python": {"python_version": "3.14"},
    "the oldest HAProxy line": {"haproxy_version": "2.6"},
    "the newest MySQL line": {"mysql_version": "9.7"},
    "the most replicas": {"app_replicas": "32"},
    "kubernetes with the newest MySQL line": {"kubernetes": "yes", "mysql_version": "9.7"},
    "the longest database name": {"db_name": "d" * answers.MAX_DB_NAME},
    "names YAML would misread unquoted": {"db_name": "null", "db_user": "yes"},
    "a Korean project name": {"project_name": "커뮤니티 게시판", "project_slug": "board_ko"},
    "quotes and backslashes in free text": {"description": 'A "board" \\ for you'},
    "a port of an unchosen proxy equal to another": {"use_apache": "no", "apache_port": "8000"},
    "web servers' ports right after each other": {"nginx_port": "9000", "apache_port": "9002"},
    "a web server on the last two ports": {"use_apache": "no", "nginx_port": "65534"},
    "any https_port with tls=none, which publishes none": {"tls": "none", "https_port": "80"},
    "acme with a contact of one's own": {
        "tls": "acme",
        "domain_name": "board.kr",
        "acme_email": "ops@board.kr",
    },
    "the stats page on every interface": {"haproxy_stats_address": "0.0.0.0"},  # noqa: S104
    "the stats page on IPv6 loopback": {"haproxy_stats_address": "::1"},
    "trusted proxies by address and network, commas and spaces": {
        "trusted_proxies": "192.0.2.10, 10.0.0.0/8  2001:db8::/32,198.51.100.7"
    },
    "a trusted network written from one of its hosts": {"trusted_proxies": "10.1.2.3/16"},
}


@pytest.mark.parametrize("changes", ACCEPTED.values(), ids=ACCEPTED)
def test_unusual_but_good_answers_pass(changes):
    assert problems_with(**changes) == []


def test_every_problem_is_reported_at_once():
    found = problems_with(http_port="x", db_user="root", app_replicas="0")
    assert [line.split()[0] for line in found] == ["app_replicas", "http_port", "db_user"]


@pytest.mark.parametrize(
    ("tls", "domain", "warned"),
    [
        ("acme", "localhost", True),
        ("acme", "192.0.2.10", True),
        ("acme", "board.example.org", False),
        ("self-signed", "localhost", False),
    ],
)
def test_acme_for_a_name_no_public_ca_certifies_is_warned_about(tls, domain, warned):
    mine = {"acme_email": "ops@board.kr"}
    found = answers.warnings({**DEFAULTS, **mine, "tls": tls, "domain_name": domain})
    assert bool(found) == warned, found
    if warned:
        assert f"{domain!r} is not one" in found[0]


# Apache's event MPM serves 400 requests at once unless told otherwise, and
# apache/httpd.conf does not tell it.
APACHE_MAX_REQUEST_WORKERS = 400


def test_haproxy_never_sends_a_web_server_more_than_it_holds_up_to_the_most_replicas():
    assert "MaxRequestWorkers" not in (PROJECT_TEMPLATE / "apache/httpd.conf").read_text()
    most = local_extensions.sizing(answers.MAX_REPLICAS)
    assert most["web_server_maxconn"] <= APACHE_MAX_REQUEST_WORKERS
    beyond = local_extensions.sizing(answers.MAX_REPLICAS + 1)
    assert beyond["web_server_maxconn"] > APACHE_MAX_REQUEST_WORKERS, "the cap could be higher"


SUPPORT = tomllib.loads((TEMPLATE / "hooks" / "support.toml").read_text())


def pinned(path, pattern):
    """The version line a baked file pins, e.g. 5.2 from Django==5.2.19."""
    text = (PROJECT_TEMPLATE / path).read_text()
    return re.search(pattern, text, re.MULTILINE).group(1)


def lines_offered_or_pinned():
    yield from (("python", line) for line in answers.SUPPORTED_PYTHON)
    yield from (("mysql", line) for line in answers.SUPPORTED_MYSQL)
    yield from (("haproxy", line) for line in answers.SUPPORTED_HAPROXY)
    yield "django", pinned("django/requirements.txt", r"^Django==(\d+\.\d+)\.")
    yield "nginx", pinned("nginx/Dockerfile.nginx", r"^FROM nginx:(\d+\.\d+)$")
    yield "prometheus", pinned("monitoring/compose.yml", r"image: prom/prometheus:v(\d+\.\d+)\.")


IN_USE = list(lines_offered_or_pinned())


@pytest.mark.parametrize(("software", "line"), IN_USE, ids=[" ".join(pair) for pair in IN_USE])
def test_every_line_offered_or_pinned_is_within_its_makers_support(software, line):
    until = SUPPORT.get(software, {}).get(line)
    assert until, f"hooks/support.toml has no end of support for {software} {line}"
    assert datetime.date.today() <= until, (
        f"{software} {line} stopped getting fixes on {until}: offer or pin a newer line"
    )


def test_the_support_table_dates_only_lines_in_use():
    dated = {(software, line) for software, lines in SUPPORT.items() for line in lines}
    assert dated == set(IN_USE)
