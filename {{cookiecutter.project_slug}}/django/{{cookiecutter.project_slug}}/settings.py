"""Settings for {{ cookiecutter.project_slug }}, read from the environment only.

The same image runs everywhere; only the environment changes. Every value has
the default that suits the container, so the compose file sets only what
differs. See docs/settings.md for the full list of variables.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_email_url
from django.conf.locale import LANG_INFO
from django.core.exceptions import ImproperlyConfigured
from environs import Env, validate

# The django/ folder: manage.py, the apps, templates, static and locale.
BASE_DIR = Path(__file__).resolve().parent.parent

# environs reads typed values and refuses a malformed one with a message that
# names the variable ("DJANGO_DEBUG" invalid: Not a valid boolean).
env = Env()


def secret(name):
    """A secret: the file that <name>_FILE names (Compose and Kubernetes mount
    each secret as a file, so that it is in no environment), else the variable
    <name> if set at all (even empty), else (`manage.py runserver` on a
    laptop) the file the template wrote to the project's secrets/ folder,
    which the container does not have."""
    path = env.str(f"{name}_FILE", "")
    if path:
        return Path(path).read_text().strip()
    baked = BASE_DIR.parent / "secrets" / name
    if name in os.environ or not baked.is_file():
        return env.str(name, "")
    return baked.read_text().strip()


def env_list(name):
    """A comma-separated variable; spaces around the items do not count."""
    return [item.strip() for item in env.list(name, []) if item.strip()]


# --- Core -------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", False)

# The key's first line is the key; any lines after it are the keys it
# replaced, still accepted for what they signed (sessions, reset links)
# until that expires: a new key logs nobody out (docs/design.md, "Secrets").
SECRET_KEY, *SECRET_KEY_FALLBACKS = [
    line.strip() for line in secret("DJANGO_SECRET_KEY").splitlines() if line.strip()
] or [""]
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is missing or empty. Name the file that holds it in "
            "DJANGO_SECRET_KEY_FILE (the template wrote one to secrets/), or set "
            "DJANGO_DEBUG=1 for a local development run."
        )
    # Development only: check --deploy flags this prefix if it ever leaks out.
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105

DOMAIN_NAME = env.str("DOMAIN_NAME", "{{ cookiecutter.domain_name }}")
ALLOWED_HOSTS = list(
    dict.fromkeys(
        [DOMAIN_NAME, "localhost", "127.0.0.1", "[::1]", *env_list("DJANGO_ALLOWED_HOSTS")]
    )
)
# The site's public host and port, as links in mail name it (a reset link).
PUBLIC_HOST = env.str("DJANGO_PUBLIC_HOST", "") or DOMAIN_NAME
CSRF_TRUSTED_ORIGINS = [
    f"http://{DOMAIN_NAME}",
    f"https://{DOMAIN_NAME}",
    *env_list("DJANGO_CSRF_TRUSTED_ORIGINS"),
]

{# The name as a Python string in the quotes `ruff format` would choose
   (double, unless single needs fewer escapes), so that any answer renders as
   readable, already formatted code. -#}
{%- set name = cookiecutter.project_name | replace("\\", "\\\\") -%}
{%- if name.count('"') > name.count("'") -%}
PROJECT_NAME = '{{ name | replace("'", "\\'") }}'
{%- else -%}
PROJECT_NAME = "{{ name | replace('"', '\\"') }}"
{%- endif %}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_guid",
    "django_prometheus",
    "board",
]

MIDDLEWARE = [
    # Metrics (gunicorn.conf.py serves them): first and last but one, so
    # that every request is counted and timed, and every answer by its view
    # and status, the database's 503 included.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Outermost but for the metrics, so it sees every answer last, its
    # Content-Length already set.
    "{{ cookiecutter.project_slug }}.head_requests.HeadWithoutBodyMiddleware",
    # Outside everything that answers, sets a cookie or reads the user, so
    # that it marks every answer (HTTPS redirects and 503s too) for the web
    # servers, public or private (page_cache.py).
    "{{ cookiecutter.project_slug }}.page_cache.PageCacheMiddleware",
    # Next, so that every line logged while a request runs names its ID.
    "django_guid.middleware.guid_middleware",
    # Before anything that reads the database: how long this request may
    # wait for one it cannot reach (database_unavailable.py).
    "{{ cookiecutter.project_slug }}.database_unavailable.WaitForDatabaseMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a log-in that axes refused (below) with its 429 page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Innermost, so it sees a view's errors first: 503 while the database is away.
    "{{ cookiecutter.project_slug }}.database_unavailable.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "{{ cookiecutter.project_slug }}.urls"
WSGI_APPLICATION = "{{ cookiecutter.project_slug }}.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "board.context_processors.project",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------
# MySQL when DB_HOST is set (the stack), SQLite otherwise (a laptop with
# nothing installed).

# TLS. PyMySQL encrypts whenever the server offers TLS, and the MySQL image
# always does, with a certificate it makes for itself on first start. So the
# password and every query travel encrypted, and MySQL's caching_sha2_password
# sends the password inside that TLS session (no RSA exchange, hence no
# `cryptography` package). The certificate is not verified by default: it is
# self-signed, made per data volume, and on the stack's private network only
# the app and the database are attached. Against a database elsewhere, set
# DB_SSL_CA to its CA certificate: TLS is then required, and the certificate
# and host name are checked.
DB_SSL_CA = env.str("DB_SSL_CA", "")
DB_TLS = {"ssl_ca": DB_SSL_CA, "ssl_verify_identity": True} if DB_SSL_CA else {}

if env.str("DB_HOST", ""):
    DATABASES = {
        "default": {
            # Django's MySQL backend, counting queries and errors for the
            # metrics, and waiting out a database restart (mysql/base.py).
            "ENGINE": "{{ cookiecutter.project_slug }}.mysql",
            "HOST": env.str("DB_HOST"),
            "PORT": env.str("DB_PORT", "3306"),
            "NAME": env.str("DB_NAME"),
            "USER": env.str("DB_USER"),
            "PASSWORD": secret("DB_PASSWORD"),
            # Persistent connections, checked before reuse so that a restarted
            # database costs one failed check, not a failed request.
            "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                # Full Unicode (emoji, every Hangul syllable), in the connection
                # and in the test database Django creates.
                "charset": "utf8mb4",
                # Strict mode: refuse over-long or invalid values instead of
                # silently truncating them.
                "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
                "isolation_level": "read committed",
                # Fail fast when the server is unreachable, so /readyz and
                # wait_for_db answer within their own timeouts.
                "connect_timeout": env.int("DB_CONNECT_TIMEOUT", 5),
                **DB_TLS,
            },
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django_prometheus.db.backends.sqlite3",
            "NAME": env.str("DJANGO_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Rendered fragments (the post list's), in each process's own memory: each
# is keyed by everything it shows, so none is ever stale, and a process
# that starts afresh renders them again. Nothing else is cached here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 1000},
    }
}

# --- Accounts ----------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password guessing (docs/limits.md, "Limits per client"): django-axes counts
# failed log-ins, the admin's too, per account *and* address, in the
# database every replica shares. Past the limit that pair gets 429 until
# the cool-off has passed with no further try: a guesser elsewhere can never
# lock the account's owner out from the owner's own address, and a success
# starts the count afresh. HAProxy also limits log-in forms per address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("DJANGO_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("DJANGO_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "{{ cookiecutter.project_slug }}.client.client_address"
AXES_LOCKOUT_CALLABLE = "{{ cookiecutter.project_slug }}.client.locked_out"
# Failures are counted; successful log-ins are not recorded one by one.
AXES_DISABLE_ACCESS_LOG = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "board:post_list"
LOGOUT_REDIRECT_URL = "board:post_list"

# --- Mail --------------------------------------------------------------------
# Password resets and error reports (docs/mail.md). One URL names the
# server: smtp://user@host:25, submission://user@host (STARTTLS on 587), or
# smtp://user@host:465?ssl=1; console:// writes each message to the log
# instead, one line each like every line (mail_log.py): the default, so a
# laptop needs no server, and a stack that has none shows what it would
# have sent. The password is a secret of its own,
# EMAIL_PASSWORD (a password in the URL is used only when that is empty).
EMAIL_SCHEMES = ("smtp", "submission", "console", "dummy")
EMAIL_URL = env.str("EMAIL_URL", "") or "console://"
_scheme = EMAIL_URL.partition("://")[0]
if _scheme not in EMAIL_SCHEMES:
    raise ImproperlyConfigured(
        f"EMAIL_URL must start with one of {', '.join(s + '://' for s in EMAIL_SCHEMES)}: "
        f"{_scheme!r} is none of them."
    )
_email = dj_email_url.parse(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
if _scheme == "console":
    EMAIL_BACKEND = "{{ cookiecutter.project_slug }}.mail_log.LogEmailBackend"
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = secret("EMAIL_PASSWORD") or _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
# Each step of a conversation with the server, below the 10 s a web server
# waits for the answer to a form (a reset link is sent while its page waits).
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or 5
# Who the mail is from: the site's own address unless the provider wants another.
DEFAULT_FROM_EMAIL = env.str("DJANGO_FROM_EMAIL", f"noreply@{DOMAIN_NAME}")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Who gets a mail for each server error (a 500), with its traceback:
# comma-separated addresses; none by default.
ADMINS = [(address, address) for address in env_list("DJANGO_ADMINS")]
# A reset link works for an hour, not Django's three days: it travels by
# mail, and its first request is in the access logs. An hour is enough to use it.
PASSWORD_RESET_TIMEOUT = 60 * 60
# A member may ask for a reset link for an address at most this often; more
# asks are answered alike and send nothing, so a stranger can fill no inbox
# (board/forms.py).
PASSWORD_RESET_MAIL_INTERVAL = timedelta(
    minutes=env.int("DJANGO_PASSWORD_RESET_MAIL_MINUTES", 5, validate=validate.Range(min=0))
)

# --- Language and time -------------------------------------------------------

LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", "{{ cookiecutter.language_code }}")
TIME_ZONE = env.str("DJANGO_TIME_ZONE", "{{ cookiecutter.time_zone }}")
USE_I18N = True
USE_TZ = True
# Native names: a reader looks for their own language in its own script.
LANGUAGES = [("en", "English"), ("ko", "한국어")]
# LANGUAGE_CODE must be one of LANGUAGES (check translation.E004); its generic
# form (pt for pt-br) counts too.
if not {LANGUAGE_CODE, LANGUAGE_CODE.split("-")[0]} & {code for code, _ in LANGUAGES}:
    LANGUAGES.append(
        (LANGUAGE_CODE, LANG_INFO.get(LANGUAGE_CODE, {}).get("name_local", LANGUAGE_CODE))
    )
LOCALE_PATHS = [BASE_DIR / "locale"]

# A search (the board's only read whose cost a client chooses) stops after
# this long, below the 2 s a web server waits for a replica's answer to a GET
# (docs/limits.md, "Limits, timeouts and overload"): the reader gets a page that
# says so, and MySQL is never kept busy for long.
SEARCH_TIME_LIMIT = env.float("DJANGO_SEARCH_TIME_LIMIT", 1.0)

# How long the web servers may keep an anonymous reader's page and give it
# to the next one (page_cache.py; docs/limits.md, "Page cache"). 0: never.
PAGE_CACHE_SECONDS = env.int("DJANGO_PAGE_CACHE_SECONDS", 1, validate=validate.Range(min=0))

# The request body limit of every tier (docs/limits.md, "Limits, timeouts and overload");
# the board takes no file uploads, so this bounds every request's body.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Static files ------------------------------------------------------------
# collectstatic copies them to STATIC_ROOT, a volume that the web servers in
# front serve directly. Hashed names let them cache the files for a long time.

STATIC_URL = "/static/"
STATIC_ROOT = env.str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "{{ cookiecutter.project_slug }}.storage.FallbackManifestStaticFilesStorage",
    },
}

# --- Behind the proxies ------------------------------------------------------
# HAProxy sets X-Forwarded-Proto and the web servers pass it on, so Django knows
# when the client used HTTPS; likewise the client's address (client.py). The
# app port is reachable on the internal network only, and HAProxy drops what
# a client sent of these headers, so no client can set them.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTPS-only protections. Off by default, for a laptop's runserver; the compose
# file turns them all on when HAProxy ends TLS (every tls mode but none).
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", False)
# The site's public HTTPS host (and port), for that redirect: a request on a
# web server's own port is sent to the site, not to that port.
SECURE_SSL_HOST = env.str("DJANGO_SECURE_SSL_HOST", "") or None
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Health checks speak plain HTTP to the app even when the site is HTTPS-only.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Logging -----------------------------------------------------------------
# Everything to the console, where Docker (and Gunicorn's own log) collect it.

LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", "INFO").upper()
# Every line logged while a request runs names the request's ID, as the
# access logs of HAProxy, the web servers and Gunicorn do (rid="..."). The
# ID is the X-Request-ID HAProxy set, in place of any a client sent: taken
# as it is (HAProxy passes on a UUID, or a plain token from a trusted
# proxy) and not returned (HAProxy returns it). A request that did not come
# through HAProxy gets one made here.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": False,
    "RETURN_HEADER": False,
    "UUID_FORMAT": "string",
}

# One JSON object per line (LOG_FORMAT=json, as the stack runs, for log
# tools; logs.py), or readable text (the default, on a laptop). Either way
# each line names the request ID.
LOG_FORMAT = env.str("LOG_FORMAT", "text", validate=validate.OneOf(["json", "text"]))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId"},
        "not_debug": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "text": {
            "format": '%(asctime)s %(levelname)s %(name)s rid="%(correlation_id)s": %(message)s'
        },
        "json": {"()": "{{ cookiecutter.project_slug }}.logs.line_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
        # Each server error, to ADMINS (if any; Mail, above).
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["not_debug"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default, which prints only when DEBUG is on.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # A request's error is logged and, as Django's default does, mailed.
        "django.request": {
            "handlers": ["console", "mail_admins"],
            "level": LOG_LEVEL,
            "propagate": False,
        },
        # Its INFO line for every request ("X-Request-ID found in the
        # header") says nothing the access line does not: warnings only.
        "django_guid": {"level": "WARNING"},
    },
}
