"""gunicorn.conf.py: defaults for the container, every value from the environment."""

import runpy
import sys

import pytest

from .processes import DJANGO_DIR, child_env, run

CONFIG = str(DJANGO_DIR / "gunicorn.conf.py")
VARIABLES = (
    "GUNICORN_BIND",
    "GUNICORN_METRICS_BIND",
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_LOG_LEVEL",
    "FORWARDED_ALLOW_IPS",
)


def load(monkeypatch, **env):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(CONFIG)


def test_defaults_suit_the_container(monkeypatch):
    config = load(monkeypatch)
    assert config["bind"] == "0.0.0.0:8000"
    assert config["metrics_bind"] == "0.0.0.0:9100"
    assert 3 <= config["workers"] <= 8
    assert config["worker_class"].endswith(".gunicorn_worker.DrainingThreadWorker")
    assert config["threads"] == 4
    assert (config["timeout"], config["graceful_timeout"], config["keepalive"]) == (30, 20, 5)
    assert config["forwarded_allow_ips"] == "*"
    assert config["accesslog"] == config["errorlog"] == "-"
    assert config["wsgi_app"].endswith(".wsgi:application")


def test_every_value_comes_from_the_environment(monkeypatch):
    config = load(
        monkeypatch,
        GUNICORN_BIND="127.0.0.1:9000",
        GUNICORN_METRICS_BIND="127.0.0.1:9001",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT="60",
        GUNICORN_GRACEFUL_TIMEOUT="10",
        GUNICORN_KEEPALIVE="3",
        FORWARDED_ALLOW_IPS="10.0.0.0/8",
    )
    assert (config["bind"], config["metrics_bind"]) == ("127.0.0.1:9000", "127.0.0.1:9001")
    assert (config["workers"], config["threads"]) == (2, 8)
    assert (config["timeout"], config["graceful_timeout"], config["keepalive"]) == (60, 10, 3)
    assert config["forwarded_allow_ips"] == "10.0.0.0/8"


def test_a_bad_number_is_refused_by_name(monkeypatch):
    with pytest.raises(ValueError, match='"GUNICORN_WORKERS" invalid'):
        load(monkeypatch, GUNICORN_WORKERS="many")


def test_access_log_records_the_forwarded_client_and_scheme(monkeypatch):
    log_format = load(monkeypatch)["access_log_format"]
    assert 'xff="%({x-forwarded-for}i)s"' in log_format
    assert 'xfp="%({x-forwarded-proto}i)s"' in log_format


def test_gunicorn_accepts_the_config_and_loads_the_app():
    env = child_env(DJANGO_SECRET_KEY="x" * 50, DJANGO_DEBUG="0")
    result = run([sys.executable, "-m", "gunicorn", "--config", CONFIG, "--check-config"], env)
    assert result.returncode == 0, result.stdout + result.stderr
