"""`manage.py wait_for_db`: the entrypoint's bounded wait for the database."""

from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

COMMAND = "board.management.commands.wait_for_db"


def fake_connection(vendor="mysql", failures=0):
    """A connection that refuses `failures` times, then connects."""
    connection = mock.Mock(vendor=vendor, settings_dict={"HOST": "db", "PORT": "3306"})
    refusal = OperationalError(2003, "Can't connect to MySQL server on 'db'")
    connection.ensure_connection.side_effect = [refusal] * failures + [None]
    return connection


@pytest.fixture
def no_sleep():
    with mock.patch(f"{COMMAND}.time.sleep") as sleep:
        yield sleep


def run_with(connection, capsys, *args):
    with mock.patch(f"{COMMAND}.connections", {"default": connection}):
        call_command("wait_for_db", *args)
    return capsys.readouterr().out


def test_returns_at_once_when_the_database_answers(db):
    # The real test database, whichever engine this run uses.
    call_command("wait_for_db", timeout=5)


def test_logs_each_failed_attempt_and_returns_once_connected(capsys, no_sleep):
    output = run_with(fake_connection(failures=2), capsys, "--timeout", "30")
    assert "Waiting for database at db:3306 (attempt 1)" in output
    assert "(attempt 2)" in output
    assert "Database at db:3306 is up." in output
    assert no_sleep.call_count == 2


def test_gives_up_with_a_clear_error_after_the_timeout(capsys):
    connection = fake_connection(failures=1000)
    with pytest.raises(CommandError, match=r"still unreachable after 0\.2s"):
        run_with(connection, capsys, "--timeout", "0.2", "--interval", "0.05")
    assert connection.ensure_connection.call_count > 1


def test_timeout_defaults_to_db_wait_timeout(capsys, monkeypatch, no_sleep):
    monkeypatch.setenv("DB_WAIT_TIMEOUT", "0")
    with pytest.raises(CommandError, match="after 0s"):
        run_with(fake_connection(failures=1), capsys)


def test_sqlite_needs_no_wait(capsys):
    connection = fake_connection(vendor="sqlite")
    assert "nothing to wait for" in run_with(connection, capsys)
    connection.ensure_connection.assert_not_called()
