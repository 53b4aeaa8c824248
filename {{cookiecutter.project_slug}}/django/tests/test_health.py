"""/healthz (liveness) and /readyz (readiness), as HAProxy and Docker use them."""

from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper


@pytest.fixture
def database_down():
    """Every new cursor fails as if the server were gone."""
    error = OperationalError(2003, "Can't connect to MySQL server (simulated)")
    with mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=error):
        yield


def test_liveness_answers_ok_without_touching_the_database(client):
    # No `db` fixture: pytest-django turns any query here into an error.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok"
    assert response["Content-Type"].startswith("text/plain")


def test_liveness_starts_no_session_and_sets_no_cookie(client):
    response = client.get("/healthz")
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_liveness_stays_up_while_the_database_is_down(client, database_down):
    assert client.get("/healthz").status_code == 200


def test_readiness_answers_ready_when_the_database_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.text == "ready"


def test_readiness_answers_503_when_the_database_is_down(client, db, database_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.text == "database unavailable"


@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_health_answers_are_never_cached(client, db, url):
    cache_control = client.get(url)["Cache-Control"]
    assert "no-cache" in cache_control
    assert "no-store" in cache_control


@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_health_checks_need_an_allowed_host(client, db, url):
    # A check sent without an allowed Host gets 400: the proxies must send one.
    assert client.get(url, headers={"host": "evil.example"}).status_code == 400
    assert client.get(url, headers={"host": "localhost"}).status_code == 200
