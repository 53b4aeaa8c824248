"""Riding through a database restart, and 503 past it.

A request that cannot connect to the database at all has sent it nothing,
so it may wait and try again, whatever its method: the MySQL backend
(mysql/base.py) does, for as long as the request's wait allows. A GET waits
less than the web servers give a read (2 s), so that they never take the
replica for hung; past it, the app answers 503 and HAProxy asks again
(`retry-on 503`, four times: about 7 s in all). A write is never sent
twice, so it waits here, up to 8 s, below the web servers' 10 s.

A connection lost under way (MySQL stopping) is waited out too, within the
wait. A request that had sent only reads has changed nothing, so it then
runs again, once, on the new connection: a form that a restart catches
before its first write (where the stack's tests see restarts catch them,
at a request's first query) is saved, not refused. Once a write was sent,
it may have run, and running it again could save a post twice; unless the
write stores its row once however often it runs (`repeatable_writes()`:
the board's new posts and comments, keyed by their form's own ID), so a
post that a restart catches at its INSERT or COMMIT is saved too, once.

Past the wait, or after a write (the answer still waits for the database,
within the wait, so that HAProxy's next try of a GET finds it back), the
answer is the site's plain 503 page
(the one the web servers serve, django/static/errors/503.html, with the
request's ID), which tells clients when to try again, and one line in the
log. Without it, a lost
database would turn every page into a 500 with a traceback, which says
"bug" to clients, monitors and operators alike.
"""

import contextlib
import contextvars
import logging
import time

import pymysql
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from .error_pages import error_page

logger = logging.getLogger(__name__)

# Seconds a request may wait for a database it cannot connect to.
WAIT_FOR_READS = 1.5
WAIT_FOR_WRITES = 8.0
# Until when the current request may wait; None outside one (migrations,
# management commands, checks: they fail at once, and say so).
_wait_until = contextvars.ContextVar("wait_for_database_until", default=None)

# Errors while connecting that waiting cannot mend: a wrong user or
# password, no such database. Any other (refused, a name that no longer
# resolves while the container restarts, too many connections, shutting
# down, a handshake cut short while the server stops or starts) is the
# server's state, and nothing of the request was sent yet.
NOT_WORTH_WAITING = {1044, 1045, 1049}

# Seconds a client is asked to wait: about what a database restart takes.
RETRY_AFTER = 5

# MySQL's error numbers for "no server to talk to", as opposed to errors in
# what was asked (a bad query stays a 500, and a bug to fix): too many
# connections, shutting down, a query the server interrupted (as it stops,
# or an operator's KILL QUERY), cannot connect (socket, TCP, unknown host),
# gone away, connection lost, disconnected by the server.
UNREACHABLE = {1040, 1053, 1317, 2002, 2003, 2005, 2006, 2013, 4031}


def connect_within_the_wait(connect):
    """`connect()` (which sends nothing of the request), tried again while
    it fails, until the current request's wait is over; then its error."""
    started = time.monotonic()
    pause, tries = 0.05, 0
    while True:
        try:
            opened = connect()
        except pymysql.OperationalError as error:  # the driver's, before Django wraps it
            until = _wait_until.get()
            code = error.args[0] if error.args else None
            if until is None or code in NOT_WORTH_WAITING or time.monotonic() + pause > until:
                raise
            time.sleep(pause)
            pause, tries = min(2 * pause, 0.5), tries + 1
            continue
        if tries:
            waited = time.monotonic() - started
            logger.info("Database reached after waiting %.1f s (%d tries)", waited, tries + 1)
        return opened


class WaitForDatabaseMiddleware:
    """Gives each request its wait for the database, by method."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        wait = WAIT_FOR_READS if request.method in ("GET", "HEAD") else WAIT_FOR_WRITES
        token = _wait_until.set(time.monotonic() + wait)
        try:
            return self.get_response(request)
        finally:
            _wait_until.reset(token)


def is_unreachable(error):
    """Whether a database error means the server cannot be reached now."""
    if isinstance(error, InterfaceError):  # Django's "connection already closed"
        return True
    return isinstance(error, OperationalError) and bool(error.args) and error.args[0] in UNREACHABLE


def wait_for_the_database():
    """Whether the database took a new connection before the request's wait
    was over. A connection lost under way (MySQL stopping) fails every
    thread's next query at once: answered at once, a GET would spend
    HAProxy's tries within milliseconds; answered after this, its next try
    finds MySQL back."""
    connection.close()  # the broken one
    with contextlib.suppress(DatabaseError):  # the 503 says so
        connection.ensure_connection()
    return connection.connection is not None


_repeatable = contextvars.ContextVar("repeatable_writes", default=False)


@contextlib.contextmanager
def repeatable_writes():
    """Marks the writes within as safe to run again: each stores its row
    once however often it runs (board/forms.py, SavedOnce)."""
    token = _repeatable.set(True)
    try:
        yield
    finally:
        _repeatable.reset(token)


class Statements:
    """Whether a request has sent the database anything that running it
    again could repeat: reads (SELECTs, and the SETs of a new connection's
    own session, Django's isolation level) store nothing, and repeatable
    writes store their row once. Anything else may be a write."""

    def __init__(self):
        self.safe_to_repeat = True

    def __call__(self, execute, sql, params, many, context):
        if not (_repeatable.get() or sql.lstrip().upper().startswith(("SELECT ", "SET "))):
            self.safe_to_repeat = False
        return execute(sql, params, many, context)


class DatabaseUnavailableMiddleware:
    """Turns a view's "database unreachable" error into a 503 to retry, or
    runs the request again if nothing it sent could be repeated and the
    database is back within its wait."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for first_run in (True, False):
            statements = Statements()
            with connection.execute_wrapper(statements):
                response = self.get_response(request)
            lost = getattr(response, "database_lost", None)
            if lost is None:
                return response
            if not (first_run and statements.safe_to_repeat and lost["back"]):
                break
            logger.info(
                "Database lost under way and back, running again: %s %s: %s",
                request.method,
                request.path,
                lost["error"],
            )
        logger.warning(
            "Database unreachable, answered 503: %s %s: %s",
            request.method,
            request.path,
            lost["error"],
        )
        return response

    def process_exception(self, request, exception):
        if not is_unreachable(exception):
            return None
        response = error_page(503)
        response["Retry-After"] = str(RETRY_AFTER)
        response.database_lost = {"error": exception, "back": wait_for_the_database()}
        return response
