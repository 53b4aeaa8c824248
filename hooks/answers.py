"""The rules every answer must pass before anything is baked.

A plain module: hooks/pre_gen_project.py calls `problems()` and `warnings()`
on the answers, and tests/test_answers.py imports it directly. Each problem
is one line that names the prompt the user typed, so a user can fix every
answer in one go. Besides the standard library, only python-slugify is used,
which cookiecutter itself needs: the hook runs under whatever Python runs
cookiecutter.
"""

import ipaddress
import keyword
import re
import sys
import unicodedata
import zoneinfo

from slugify import slugify

# The lines each version prompt offers, all within their makers' support
# (hooks/support.toml has the dates; tier 1 fails once one is past). The first is
# the default in cookiecutter.json.
SUPPORTED_MYSQL = ("8.4", "9.7")
SUPPORTED_PYTHON = ("3.11", "3.12", "3.13", "3.14")
# HAProxy's LTS lines that the configuration is written for (2.6 is what the
# native tiers run, 3.4 what the Docker tier runs).
SUPPORTED_HAPROXY = ("2.6", "2.8", "3.0", "3.2", "3.4")
# Lines once offered, named in the refusal so that a user knows why.
RETIRED = {
    ("mysql_version", "8.0"): "reached end of life in April 2026",
    ("python_version", "3.10"): "reached end of life in October 2026",
}
# How HAProxy gets its certificate; the prune table in post_gen_project.py
# says what each mode keeps.
TLS_MODES = ("self-signed", "own", "acme", "none")

# What the slug must not shadow: the project's own packages and folders, and
# every top-level module that django/requirements-dev.txt installs (tier 4
# checks this list against the installed packages).
PROJECT_NAMES = {"board", "tests", "checks", "static", "staticfiles", "templates", "locale"}
PROJECT_NAMES |= {"django", "nginx", "apache", "haproxy", "venv"}
INSTALLED_MODULES = {
    "asgiref",
    "axes",
    "django",
    "dj_email_url",
    "django_guid",
    "django_prometheus",
    "dotenv",
    "environs",
    "gunicorn",
    "iniconfig",
    "marshmallow",
    "packaging",
    "pluggy",
    "prometheus_client",
    "pygments",
    "pymysql",
    "pytest",
    "pytest_django",
    "pythonjsonlogger",
    "sqlparse",
    "typing_extensions",
    "_pytest",
    "py",
}
# MySQL's own schemas: the image would grant the app's user every right on
# them (`mysql` holds the root account's password hash).
RESERVED_DATABASES = {"mysql", "information_schema", "performance_schema", "sys"}
# Django's test runner creates test_<db_name>; MySQL names are at most 64.
MAX_DB_NAME = 64 - len("test_")
MAX_DB_USER = 32
# RFC 2606's domains and top-level domains for examples, tests and this
# machine, which an ACME CA refuses as a contact.
RESERVED_MAIL_DOMAINS = {"example.com", "example.net", "example.org", "localhost"}
RESERVED_MAIL_TLDS = {"example", "invalid", "localhost", "test"}
# The users db/users.sh (and the MySQL image, root) make beside the app's.
RESERVED_DB_USERS = {"root", "migrate", "backup"}
# Past 32 replicas HAProxy's maxconn per web server (local_extensions.py's
# sizing: 12 threads a replica, and 8) would pass Apache's 400 workers (its
# event MPM's default), and the web servers' own limits would bind first.
MAX_REPLICAS = 32
# Each chosen web server runs this many instances (Compose's replicas,
# HAProxy's server-template, through local_extensions.sizing), so losing one
# never takes the site down; each takes a host port of its own.
WEB_SERVER_INSTANCES = 2
# Django's own language list (django.conf.global_settings.LANGUAGES, Django
# 5.2): the languages Django ships translations for. Tier 4 checks it against
# the installed Django.
_LANGUAGE_WORDS = (
    "af ar ar-dz ast az bg be bn br bs ca ckb cs cy da de dsb el en en-au en-gb eo es es-ar "
    "es-co es-mx es-ni es-ve et eu fa fi fr fy ga gd gl he hi hr hsb hu hy ia id ig io is it "
    "ja ka kab kk km kn ko ky lb lt lv mk ml mn mr ms my nb ne nl nn os pa pl pt pt-br ro ru "
    "sk sl sq sr sr-latn sv sw ta te tg th tk tr tt udm ug uk ur uz vi zh-hans zh-hant"
)
DJANGO_LANGUAGES = set(_LANGUAGE_WORDS.split())

# The slug cookiecutter.json makes from a name with no letter or digit: never
# empty, as cookiecutter would bake into the output folder itself (and refuse
# it as existing, before any hook could say why).
NO_SLUG = "-"
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
MYSQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
EMAIL = re.compile(r"[^@\s]+@([^@\s]+)")
NUMBER = re.compile(r"[1-9][0-9]*")
JINJA = re.compile(r"\{[{%#]")
# A Kubernetes label value holds at most 63 characters.
MAX_LABEL = 63
# Unicode categories that no answer may hold: control characters (newlines,
# tabs, escapes), format characters (invisible, or reordering text), line and
# paragraph separators, and lone surrogates.
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def forbidden_character(text):
    for character in text:
        if unicodedata.category(character) in FORBIDDEN_CATEGORIES:
            return character
    return None


def is_host_name(name):
    labels = name.split(".")
    return (
        len(name) <= 253
        and all(HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # 10.0.0 is neither a name nor an address
    )


def ip_version(text):
    """4 or 6 for an IP address, None for anything else."""
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def is_email(text):
    match = EMAIL.fullmatch(text)
    return bool(match) and is_host_name(match.group(1))


def is_time_zone(name):
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


def whole_number(key, value, low, high):
    """A problem with a numeric answer, or None."""
    if not NUMBER.fullmatch(value) or not low <= int(value) <= high:
        return f"{key} {value!r} must be a whole number from {low} to {high}, without leading zeros"
    return None


def text_problems(answers):
    for key, value in answers.items():
        character = forbidden_character(value)
        if character:
            yield f"{key} must not contain the control character {character!r}"
        elif JINJA.search(value):
            yield f"{key} {value!r} must not contain template syntax ({{{{, {{% or {{#)"


def slug_problems(slug):
    if not IDENTIFIER.fullmatch(slug) or keyword.iskeyword(slug):
        yield (
            f"project_slug {slug!r} must be a lower-case Python identifier "
            "(a-z, 0-9, _; starting with a letter), which Compose also accepts"
        )
    elif slug in PROJECT_NAMES | INSTALLED_MODULES or slug in sys.stdlib_module_names:
        yield f"project_slug {slug!r} would shadow the module or folder of that name; pick another"


def name_problems(a):
    slug = a["project_slug"]
    if not a["project_name"].strip():
        yield "project_name must not be empty"
    elif slug == NO_SLUG:
        yield (
            f"project_name {a['project_name']!r} has no letter or digit to make project_slug "
            "from: add one, or answer project_slug yourself"
        )
    if slug != NO_SLUG:
        yield from slug_problems(slug)

    for key in ("author_email", "acme_email"):
        if not is_email(a[key]):
            yield f"{key} {a[key]!r} is not an e-mail address like you@example.com"
    domain = a["acme_email"].rpartition("@")[2].lower()
    if a["tls"] == "acme" and (
        domain in RESERVED_MAIL_DOMAINS or domain.rpartition(".")[2] in RESERVED_MAIL_TLDS
    ):
        yield (
            f"acme_email {a['acme_email']!r} is at a domain reserved for examples, which the "
            "CA refuses as a contact, so no certificate would ever be issued"
        )


def proxy_problems(a):
    for key in ("use_nginx", "use_apache", "kubernetes"):
        if a[key] not in ("yes", "no"):
            yield f"{key} {a[key]!r} must be yes or no"
    if a["use_nginx"] == a["use_apache"] == "no":
        yield "use_nginx and use_apache are both off: choose at least one proxy for HAProxy"


def kubernetes_problems(a):
    if a["kubernetes"] != "yes":
        return
    # Compose's acme service shares HAProxy's volumes; pods of a Deployment
    # cannot. On Kubernetes a certificate manager writes a TLS Secret.
    if a["tls"] == "acme":
        yield (
            "kubernetes=yes with tls=acme: on Kubernetes, let cert-manager issue the "
            "certificate into a Secret and choose tls=own (docs/kubernetes.md)"
        )
    # The slug labels every object (app.kubernetes.io/part-of).
    if len(a["project_slug"]) > MAX_LABEL:
        yield f"project_slug is longer than the {MAX_LABEL} characters a Kubernetes label holds"


def number_problems(a):
    replicas = whole_number("app_replicas", a["app_replicas"], 1, MAX_REPLICAS)
    if replicas:
        yield replicas
    used = {"http_port": "yes", "https_port": "no" if a["tls"] == "none" else "yes"}
    used |= {
        "haproxy_stats_port": "yes",
        "nginx_port": a["use_nginx"],
        "apache_port": a["use_apache"],
    }
    ports = {}
    for key in (key for key, on in used.items() if on == "yes"):
        # A web server runs WEB_SERVER_INSTANCES instances, each on its own
        # host port: the answer is the first of that many in a row.
        count = WEB_SERVER_INSTANCES if key in ("nginx_port", "apache_port") else 1
        problem = whole_number(key, a[key], 1, 65536 - count)
        if problem:
            yield problem
            continue
        first = int(a[key])
        mine = range(first, first + count)
        clash = next((port for port in mine if port in ports), None)
        if clash is None:
            ports |= dict.fromkeys(mine, key)
        elif count == 1 and a[ports[clash]] == a[key]:
            yield f"{key} and {ports[clash]} are both {a[key]}: host ports must differ"
        else:
            yield (
                f"{key} {a[key]} takes {port_span(mine)} and {ports[clash]} takes {clash}: "
                "host ports must differ"
            )


def port_span(ports):
    return f"ports {ports[0]}-{ports[-1]}" if len(ports) > 1 else f"port {ports[0]}"


def network_problems(a):
    address = a["haproxy_stats_address"]
    if not ip_version(address):
        yield (
            f"haproxy_stats_address {address!r} is not an IP address "
            "(127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        )
    for item in trusted_proxies(a["trusted_proxies"]):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            yield (
                f"trusted_proxies: {item!r} is not an IP address or network "
                "(like 192.0.2.10 or 10.0.0.0/8)"
            )
            continue
        if network.prefixlen == 0:
            yield (
                f"trusted_proxies: {item!r} would trust every address, so anyone could "
                "claim to be anyone; list your load balancers' addresses"
            )


def trusted_proxies(text):
    """The items of a trusted_proxies answer: separated by commas or spaces."""
    return text.replace(",", " ").split()


def database_problems(a):
    name, user = a["db_name"], a["db_user"]
    if not MYSQL_NAME.fullmatch(name) or len(name) > MAX_DB_NAME:
        yield (
            f"db_name {name!r} must be 1-{MAX_DB_NAME} letters, digits and _, not starting "
            f"with a digit (Django's test database test_<db_name> must fit MySQL's 64)"
        )
    elif name.lower() in RESERVED_DATABASES:
        yield f"db_name {name!r} is one of MySQL's own schemas; pick another"
    if not MYSQL_NAME.fullmatch(user) or len(user) > MAX_DB_USER:
        yield (
            f"db_user {user!r} must be 1-{MAX_DB_USER} letters, digits and _, "
            "not starting with a digit"
        )
    elif user.lower() in RESERVED_DB_USERS:
        yield (
            f"db_user must not be {user}: the stack makes root, migrate and backup "
            "itself, each for its own job"
        )


def choice_problems(a):
    # Plain text prompts, not cookiecutter choices: cookiecutter refuses an
    # unlisted choice itself, before any hook, with a traceback.
    for key, supported in (
        ("tls", TLS_MODES),
        ("mysql_version", SUPPORTED_MYSQL),
        ("python_version", SUPPORTED_PYTHON),
        ("haproxy_version", SUPPORTED_HAPROXY),
    ):
        if a[key] not in supported:
            why = RETIRED.get((key, a[key]), "is not offered")
            yield f"{key} {a[key]!r} {why}: choose {', '.join(supported)}"


def site_problems(a):
    domain = a["domain_name"]
    if ip_version(domain) == 6:
        yield f"domain_name {domain!r}: IPv6 addresses are not supported; use a host name"
    elif not (is_host_name(domain) or ip_version(domain) == 4):
        yield (
            f"domain_name {domain!r} is not a lower-case host name or IPv4 address "
            "(like example.com, localhost or 192.0.2.10)"
        )
    if not is_time_zone(a["time_zone"]):
        yield f"time_zone {a['time_zone']!r} is not an IANA time zone (like Asia/Seoul or UTC)"
    if not is_language(a["language_code"]):
        yield (
            f"language_code {a['language_code']!r} is not a language Django translates "
            "(like ko, en, en-us or pt-br)"
        )


def is_language(code):
    """One Django translates, or one of its regions (Django's own default,
    en-us, or ko-kr: Django falls back to en or ko), in Django's lower case."""
    base, _, region = code.partition("-")
    return code in DJANGO_LANGUAGES or (
        base in DJANGO_LANGUAGES and len(region) == 2 and region.isalpha() and region.islower()
    )


def made_from(a):
    """{answer: the answer the user typed that it was made from}, for the
    answers left at their defaults (cookiecutter.json): the slug from
    project_name, the database names from the slug, acme_email from
    author_email. One equal to its default counts as made from it, typed or
    not: changing either mends it."""
    made = {}
    if a["project_slug"] in (slugify(a["project_name"], separator="_"), NO_SLUG):
        made["project_slug"] = "project_name"
    for key in ("db_name", "db_user"):
        if a[key] == a["project_slug"]:
            made[key] = made.get("project_slug", "project_slug")
    if a["acme_email"] == a["author_email"]:
        made["acme_email"] = "author_email"
    return made


def attributed(found, a):
    """The problems, each with an answer made from another one said once, as
    a problem of the answer typed: `project_name '49 board': project_slug
    '49_board' must ... (change project_name, or answer project_slug
    yourself)`. None where the answer typed has a problem of its own, whose
    mending mends them."""
    made = made_from(a)
    keys_by_root = {}
    for line in found:
        key = line.split()[0]
        if key in made:
            keys_by_root.setdefault(made[key], []).append(key)
    said = {line.split()[0] for line in found}
    for line in found:
        root = made.get(line.split()[0])
        if root is None:
            yield line
        elif root not in said:
            said.add(root)
            keys = " and ".join(dict.fromkeys(keys_by_root[root]))
            yield f"{root} {a[root]!r}: {line} (change {root}, or answer {keys} yourself)"


def problems(answers):
    """Every problem with the answers, one line each; none means bake."""
    answers = {key: str(value) for key, value in answers.items()}
    found = list(text_problems(answers))
    if found:  # the other rules would only repeat these answers
        return found
    for rules in (
        name_problems,
        proxy_problems,
        kubernetes_problems,
        number_problems,
        network_problems,
        database_problems,
        choice_problems,
        site_problems,
    ):
        found.extend(rules(answers))
    return list(attributed(found, answers))


def warnings(answers):
    """Answers that bake, but deserve a second look."""
    found = []
    domain = str(answers["domain_name"])
    if answers["tls"] == "acme" and ("." not in domain or ip_version(domain)):
        found.append(
            f"tls=acme: a public ACME CA such as Let's Encrypt only certifies public DNS names, "
            f"and {domain!r} is not one; it works with a test CA only (see docs/https.md)."
        )
    return found
