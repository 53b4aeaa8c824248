"""While the database cannot be reached, pages answer 503 with Retry-After."""

import logging
from unittest import mock

import pytest
from django.db import OperationalError, ProgrammingError
from django.db.backends.base.base import BaseDatabaseWrapper


def failing_cursor(error):
    return mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=error)


@pytest.mark.parametrize("code", [2002, 2003, 2006, 2013])
def test_a_page_answers_503_to_retry_while_the_database_is_unreachable(client, db, code):
    with failing_cursor(OperationalError(code, "simulated")):
        response = client.get("/", headers={"X-Request-ID": "the-request-id"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Service temporarily unavailable" in response.text
    assert "Request ID: <code>the-request-id</code>" in response.text


def test_an_unreachable_database_logs_one_line_and_no_traceback(client, db, caplog):
    with caplog.at_level(logging.WARNING), failing_cursor(OperationalError(2003, "simulated")):
        client.get("/")
    assert not [record for record in caplog.records if record.exc_info]
    messages = [record.getMessage() for record in caplog.records]
    assert any("Database unreachable, answered 503: GET /" in message for message in messages)


QUERY_MISTAKES = [OperationalError(1054, "Unknown column"), ProgrammingError("bad SQL")]


@pytest.mark.parametrize("error", QUERY_MISTAKES)
def test_a_mistake_in_a_query_stays_a_server_error(client, db, error):
    # A bug is not an outage: it must not hide behind "try again later".
    client.raise_request_exception = False
    with failing_cursor(error):
        response = client.get("/", headers={"X-Request-ID": '<b class="x">'})
    # The site's own page, naming the request, escaped.
    assert response.status_code == 500
    assert "Server error" in response.text
    assert "Request ID: <code>&lt;b class=&quot;x&quot;&gt;</code>" in response.text
