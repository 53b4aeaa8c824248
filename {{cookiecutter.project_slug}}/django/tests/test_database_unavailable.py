"""A request waits for a database it cannot connect to, within its wait;
past it, pages answer 503 with Retry-After."""

import logging
import uuid
from unittest import mock

import pymysql
import pytest
from django.db import OperationalError, ProgrammingError, connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import RequestFactory

from board.models import Post
from board.views import PostListView

from {{ cookiecutter.project_slug }} import database_unavailable as outage


def failing_cursor(error):
    return mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=error)


@pytest.mark.parametrize("code", [2002, 2003, 2006, 2013, 1317])
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


class Database:
    """A database that refuses `refusals` connections, then takes them."""

    def __init__(self, refusals, code=2003):
        self.refusals, self.code, self.tries = refusals, code, 0

    def connect(self):
        self.tries += 1
        if self.tries <= self.refusals:
            raise pymysql.OperationalError(self.code, "simulated")
        return "connection"


def within_a_request(method, connect):
    """connect() as a request of `method` runs it, through the middleware."""
    results = []
    middleware = outage.WaitForDatabaseMiddleware(
        lambda request: results.append(outage.connect_within_the_wait(connect))
    )
    middleware(RequestFactory().generic(method, "/"))
    return results[0]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_request_waits_for_a_database_it_cannot_connect_to(method, caplog):
    database = Database(refusals=3)
    with caplog.at_level(logging.INFO):
        assert within_a_request(method, database.connect) == "connection"
    assert database.tries == 4
    assert "Database reached after waiting" in caplog.text


@pytest.mark.parametrize(
    ("method", "wait"), [("GET", outage.WAIT_FOR_READS), ("POST", outage.WAIT_FOR_WRITES)]
)
def test_past_its_wait_a_request_gets_the_error(method, wait, monkeypatch):
    waited = []
    monkeypatch.setattr(outage.time, "monotonic", lambda: sum(waited))
    monkeypatch.setattr(outage.time, "sleep", waited.append)
    database = Database(refusals=1000)
    with pytest.raises(pymysql.OperationalError):
        within_a_request(method, database.connect)
    # It waited its time, in pauses of half a second at most.
    assert wait - 0.5 < sum(waited) <= wait
    assert database.tries > 3


@pytest.mark.parametrize("code", [2003, 2013, 1040, 1053])
def test_any_state_of_the_server_is_waited_out(code):
    # Refused, a handshake cut short, too many connections, shutting down.
    database = Database(refusals=2, code=code)
    assert within_a_request("POST", database.connect) == "connection"


def test_a_wrong_password_or_no_request_is_not_waited_for():
    # Waiting mends no password.
    denied = Database(refusals=1, code=1045)
    with pytest.raises(pymysql.OperationalError):
        within_a_request("POST", denied.connect)
    assert denied.tries == 1
    # A management command or a check fails at once, and says so.
    refused = Database(refusals=1)
    with pytest.raises(pymysql.OperationalError):
        outage.connect_within_the_wait(refused.connect)
    assert refused.tries == 1


def test_a_connection_lost_under_way_is_answered_once_the_database_takes_a_new_one(client, db):
    # Else HAProxy's next tries of a GET would all come within milliseconds.
    with (
        failing_cursor(OperationalError(2013, "Lost connection")),
        mock.patch.object(BaseDatabaseWrapper, "ensure_connection") as reconnect,
    ):
        response = client.get("/")
    assert response.status_code == 503
    reconnect.assert_called()


def database_lost_under_way(monkeypatch, runs_that_lose_it, write=False):
    """The post list's view sends a read (and a write, if asked), then finds
    the connection lost, on its first `runs_that_lose_it` runs; the number
    of runs so far."""
    runs = []
    show = PostListView.get

    def get(self, request, *args, **kwargs):
        runs.append(request.path)
        if len(runs) <= runs_that_lose_it:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                if write:
                    cursor.execute("UPDATE board_post SET title = title WHERE id = 0")
            raise OperationalError(2013, "Lost connection to MySQL server during query")
        return show(self, request, *args, **kwargs)

    monkeypatch.setattr(PostListView, "get", get)
    return runs


# These lose the connection outside any transaction, as a request does:
# inside the test's own, Django would refuse the new connection's queries.
def test_a_request_that_sent_only_reads_runs_again_once_the_database_is_back(
    client, transactional_db, monkeypatch, caplog
):
    runs = database_lost_under_way(monkeypatch, runs_that_lose_it=1)
    with caplog.at_level(logging.INFO):
        response = client.get("/")
    assert response.status_code == 200
    assert len(runs) == 2
    assert "Database lost under way and back, running again: GET /" in caplog.text


def test_a_request_that_sent_a_write_is_never_run_again(client, transactional_db, monkeypatch):
    # The write may have run: a second run could save a post twice.
    runs = database_lost_under_way(monkeypatch, runs_that_lose_it=1, write=True)
    assert client.get("/").status_code == 503
    assert len(runs) == 1


def test_a_request_runs_again_once_at_most(client, transactional_db, monkeypatch):
    runs = database_lost_under_way(monkeypatch, runs_that_lose_it=5)
    assert client.get("/").status_code == 503
    assert len(runs) == 2


READS = [
    "SELECT 1",
    "  select `x` from t",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
]
WRITES = ["INSERT INTO t VALUES (1)", "UPDATE t SET x = 1", "DELETE FROM t", "SAVEPOINT s1"]


@pytest.mark.parametrize("sql", READS + WRITES)
def test_reads_are_selects_and_a_new_connections_own_settings(sql):
    # A new connection in the request (after a lost one) sets its session's
    # isolation level: that stores nothing.
    statements = outage.Statements()
    statements(lambda *args: None, sql, None, False, None)
    assert statements.safe_to_repeat == (sql in READS)


def test_writes_that_store_their_row_once_keep_a_request_safe_to_run_again():
    statements = outage.Statements()
    with outage.repeatable_writes():
        statements(lambda *args: None, "INSERT INTO t VALUES (1)", None, False, None)
    assert statements.safe_to_repeat
    statements(lambda *args: None, "INSERT INTO t VALUES (1)", None, False, None)
    assert not statements.safe_to_repeat


@pytest.mark.parametrize("saved", [False, True], ids=["not-saved", "saved"])
def test_a_new_post_whose_insert_lost_the_database_runs_again_and_is_saved_once(
    client, transactional_db, author, saved
):
    # MySQL stopping as the INSERT went out: it may have been saved or not.
    # The second run finds it by its form's ID, or saves it.
    form = {"title": "Hello", "content": "Hi", "submission": uuid.uuid4()}
    client.force_login(author)
    if saved:  # as MySQL had: the same form, sent before
        client.post("/posts/new/", form)
    inserts = []

    def lose_the_first_insert(execute, sql, params, many, context):
        if sql.startswith("INSERT") and not inserts:
            inserts.append(sql)
            raise OperationalError(2013, "Lost connection to MySQL server during query")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(lose_the_first_insert):
        response = client.post("/posts/new/", form)
    assert inserts, "the post was never inserted"
    assert response.status_code == 302
    assert response["Location"] == Post.objects.get().get_absolute_url()
