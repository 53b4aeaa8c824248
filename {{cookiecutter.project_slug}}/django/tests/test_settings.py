"""How the environment becomes settings, and what `check --deploy` says about it."""

import json
import re
import secrets
import sys

import pytest
from django.core.management import call_command

from .processes import child_env, manage, run

# The only warnings `check --deploy` may give with production settings. Each is
# allowed while TLS is not configured in this stack, and goes away once it is
# and the matching variable is set:
ALLOWED_DEPLOY_WARNINGS = {
    # allowed while TLS is not configured: HSTS (DJANGO_SECURE_HSTS_SECONDS)
    # only makes sense once the site answers on HTTPS.
    "security.W004",
    # allowed while TLS is not configured: redirecting to HTTPS
    # (DJANGO_SECURE_SSL_REDIRECT) would send every visitor to a dead port.
    "security.W008",
    # allowed while TLS is not configured: a Secure session cookie
    # (DJANGO_SESSION_COOKIE_SECURE) would never be sent back over HTTP.
    "security.W012",
    # allowed while TLS is not configured: likewise for the CSRF cookie
    # (DJANGO_CSRF_COOKIE_SECURE).
    "security.W016",
}


def production_env(**changes):
    defaults = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
    return child_env(**{**defaults, **changes})


def settings_in(env, *names):
    """Read settings as a fresh process would with this environment."""
    code = (
        "import json, sys, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({n: getattr(settings, n) for n in sys.argv[1:]}, default=str))"
    )
    result = run([sys.executable, "-c", code, *names], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def stack_settings():
    """Settings as the compose file's environment makes them."""
    env = production_env(
        DOMAIN_NAME="board.example.com",
        DJANGO_ALLOWED_HOSTS="10.0.0.5, app",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://www.example.com",
        DB_HOST="db",
        DB_PORT="3307",
        DB_NAME="board",
        DB_USER="board_user",
        DB_PASSWORD="board-password",
        STATIC_ROOT="/srv/static",
    )
    return settings_in(
        env,
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_PROXY_SSL_HEADER",
        "DATABASES",
        "STATIC_ROOT",
    )


@pytest.fixture(scope="module")
def laptop_settings(tmp_path_factory):
    """Settings for `runserver` on a laptop: DEBUG, no secret, no database server."""
    sqlite_path = str(tmp_path_factory.mktemp("laptop") / "board.sqlite3")
    env = child_env(
        DJANGO_DEBUG="1", DJANGO_SECRET_KEY="", DB_HOST=None, DJANGO_SQLITE_PATH=sqlite_path
    )
    values = settings_in(env, "DEBUG", "SECRET_KEY", "DATABASES")
    return {**values, "sqlite_path": sqlite_path}


def test_check_deploy_reports_only_the_https_warnings():
    result = manage("check", "--deploy", env=production_env())
    assert result.returncode == 0, result.stderr
    reported = set(re.findall(r"\(([a-z_]+\.[A-Z]\d+)\)", result.stdout + result.stderr))
    assert reported == ALLOWED_DEPLOY_WARNINGS, result.stdout + result.stderr


def test_check_deploy_is_clean_once_https_is_turned_on():
    env = production_env(
        DJANGO_SECURE_SSL_REDIRECT="1",
        DJANGO_SESSION_COOKIE_SECURE="true",
        DJANGO_CSRF_COOKIE_SECURE="yes",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="on",
        DJANGO_SECURE_HSTS_PRELOAD="1",
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_secret_comes_from_the_file_its_file_variable_names(tmp_path):
    # As Compose and Kubernetes give them: a file, in no environment.
    key, password = tmp_path / "key", tmp_path / "password"
    key.write_text("k" * 50 + "\n")
    password.write_text("from-the-file\n")
    env = production_env(
        DJANGO_SECRET_KEY_FILE=str(key),
        DJANGO_SECRET_KEY=None,
        DB_HOST="db",
        DB_NAME="board",
        DB_USER="u",
        DB_PASSWORD_FILE=str(password),
    )
    values = settings_in(env, "SECRET_KEY", "DATABASES")
    assert values["SECRET_KEY"] == "k" * 50
    assert values["DATABASES"]["default"]["PASSWORD"] == "from-the-file"


def test_the_lines_after_the_secret_key_are_the_keys_it_replaced(tmp_path):
    # A new key goes on top; sessions signed with the old one stay valid.
    key = tmp_path / "key"
    key.write_text("n" * 50 + "\n" + "o" * 50 + "\n\n")
    env = production_env(DJANGO_SECRET_KEY_FILE=str(key), DJANGO_SECRET_KEY=None)
    values = settings_in(env, "SECRET_KEY", "SECRET_KEY_FALLBACKS")
    assert values == {"SECRET_KEY": "n" * 50, "SECRET_KEY_FALLBACKS": ["o" * 50]}


def test_missing_secret_key_without_debug_is_a_clear_error():
    # Empty counts as missing; being set at all, it also wins over the
    # project's secrets/ folder.
    env = child_env(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="")
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is missing or empty" in result.stderr


def test_a_switch_reads_the_usual_words_for_true():
    assert settings_in(production_env(DJANGO_DEBUG="on"), "DEBUG") == {"DEBUG": True}


def test_a_malformed_switch_or_number_is_refused_by_name():
    for name, value in (("DJANGO_DEBUG", "maybe"), ("DB_CONN_MAX_AGE", "a minute")):
        database = {"DB_HOST": "db", "DB_NAME": "board", "DB_USER": "u", "DB_PASSWORD": "p"}
        result = manage("check", env=production_env(**database, **{name: value}))
        assert result.returncode != 0
        assert f'"{name}" invalid' in result.stderr, result.stderr


EMAIL_SETTINGS = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER")
EMAIL_SETTINGS += ("EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_TIMEOUT")


def test_without_a_mail_server_mail_goes_to_the_log():
    for url in ("", "console://"):
        values = settings_in(production_env(EMAIL_URL=url), "EMAIL_BACKEND")
        assert values["EMAIL_BACKEND"] == "{{ cookiecutter.project_slug }}.mail_log.LogEmailBackend"


def test_the_mail_server_is_one_url_and_its_password_a_secret_file(tmp_path):
    password = tmp_path / "password"
    password.write_text("from-the-file\n")
    env = production_env(
        EMAIL_URL="submission://mailer%40example.com@smtp.example.com",
        EMAIL_PASSWORD_FILE=str(password),
        DJANGO_ADMINS="ops@example.com, dev@example.com",
    )
    values = settings_in(env, *EMAIL_SETTINGS, "ADMINS")
    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer@example.com",
        "EMAIL_HOST_PASSWORD": "from-the-file",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        # Below the 10 s a web server waits for a form's answer.
        "EMAIL_TIMEOUT": 5,
        "ADMINS": [["ops@example.com", "ops@example.com"], ["dev@example.com", "dev@example.com"]],
    }


def test_implicit_tls_and_a_timeout_come_from_the_url():
    env = production_env(EMAIL_URL="smtp://smtp.example.com:465?ssl=1&timeout=3")
    values = settings_in(env, "EMAIL_PORT", "EMAIL_USE_SSL", "EMAIL_USE_TLS", "EMAIL_TIMEOUT")
    assert values == {
        "EMAIL_PORT": 465,
        "EMAIL_USE_SSL": True,
        "EMAIL_USE_TLS": False,
        "EMAIL_TIMEOUT": 3,
    }


@pytest.mark.parametrize("url", ["smpt://smtp.example.com", "smtp.example.com", "smtps://x"])
def test_a_mail_url_of_no_known_kind_is_refused_by_name(url):
    result = manage("check", env=production_env(EMAIL_URL=url))
    assert result.returncode != 0
    assert "EMAIL_URL must start with one of smtp://, submission://" in result.stderr


def test_hosts_and_origins_come_from_the_domain_and_the_environment(stack_settings):
    assert stack_settings["ALLOWED_HOSTS"] == [
        "board.example.com",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "10.0.0.5",
        "app",
    ]
    assert stack_settings["CSRF_TRUSTED_ORIGINS"] == [
        "http://board.example.com",
        "https://board.example.com",
        "https://www.example.com",
    ]
    assert stack_settings["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_mysql_is_used_when_db_host_is_set(stack_settings):
    database = stack_settings["DATABASES"]["default"]
    # django-prometheus's MySQL backend, which waits out a restart.
    assert database["ENGINE"] == "{{ cookiecutter.project_slug }}.mysql"
    assert (database["HOST"], database["PORT"]) == ("db", "3307")
    assert (database["NAME"], database["USER"]) == ("board", "board_user")
    assert database["OPTIONS"]["charset"] == "utf8mb4"
    assert database["OPTIONS"]["init_command"] == "SET sql_mode='STRICT_TRANS_TABLES'"
    assert database["OPTIONS"]["isolation_level"] == "read committed"
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
    # TLS as the server offers it, unverified: see DB_SSL_CA in settings.py.
    assert not {"ssl", "ssl_ca", "ssl_disabled"} & database["OPTIONS"].keys()


def test_a_database_ca_makes_tls_required_and_verified():
    env = production_env(DB_HOST="db", DB_NAME="board", DB_USER="u", DB_PASSWORD="p")
    env["DB_SSL_CA"] = "/etc/ssl/db-ca.pem"
    options = settings_in(env, "DATABASES")["DATABASES"]["default"]["OPTIONS"]
    assert options["ssl_ca"] == "/etc/ssl/db-ca.pem"
    assert options["ssl_verify_identity"] is True


def test_static_root_comes_from_the_environment(stack_settings):
    assert stack_settings["STATIC_ROOT"] == "/srv/static"


def test_debug_runs_without_a_secret_key(laptop_settings):
    assert laptop_settings["DEBUG"] is True
    assert laptop_settings["SECRET_KEY"].startswith("django-insecure-")


def test_sqlite_is_used_without_db_host(laptop_settings):
    database = laptop_settings["DATABASES"]["default"]
    assert database["ENGINE"] == "django_prometheus.db.backends.sqlite3"
    assert database["NAME"] == laptop_settings["sqlite_path"]


def test_system_checks_pass_including_language_code_among_languages(db):
    # translation.E004 fires when LANGUAGE_CODE is not one of LANGUAGES.
    call_command("check", fail_level="WARNING")


def test_models_and_migrations_agree(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_every_line_logged_during_a_request_names_its_request_id():
    # Django logs a 404 while the request runs; the ID is the one HAProxy set.
    code = (
        "from django.test import Client; Client().get("
        "'/no-such-page/', headers={'X-Request-ID': 'the-request-id'}, HTTP_HOST='localhost')"
    )
    result = manage("shell", "-c", code, env=production_env())
    assert result.returncode == 0, result.stderr
    assert 'rid="the-request-id": Not Found: /no-such-page/' in result.stderr, result.stderr
