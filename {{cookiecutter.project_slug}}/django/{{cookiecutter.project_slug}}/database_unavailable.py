"""503 and Retry-After while the database cannot be reached.

Without this, a database restart turns every page into a 500 with a
traceback in the log, which says "bug" to clients, monitors and operators
alike. A lost connection is not a bug: the answer is the site's plain 503
page (the one the web servers serve, django/static/errors/503.html, with
the request's ID), which tells clients when to try again, and one line in
the log.
"""

import logging

from django.db import InterfaceError, OperationalError

from .error_pages import error_page

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait: about what a database restart takes.
RETRY_AFTER = 5

# MySQL's error numbers for "no server to talk to", as opposed to errors in
# what was asked (a bad query stays a 500, and a bug to fix): too many
# connections, shutting down, cannot connect (socket, TCP, unknown host),
# gone away, connection lost, disconnected by the server.
UNREACHABLE = {1040, 1053, 2002, 2003, 2005, 2006, 2013, 4031}


def is_unreachable(error):
    """Whether a database error means the server cannot be reached now."""
    if isinstance(error, InterfaceError):  # Django's "connection already closed"
        return True
    return isinstance(error, OperationalError) and bool(error.args) and error.args[0] in UNREACHABLE


class DatabaseUnavailableMiddleware:
    """Turns a view's "database unreachable" error into a 503 to retry."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_unreachable(exception):
            return None
        logger.warning(
            "Database unreachable, answered 503: %s %s: %s", request.method, request.path, exception
        )
        response = error_page(503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
