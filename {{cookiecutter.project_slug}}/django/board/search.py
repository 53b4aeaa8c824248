"""A ceiling on what one search may cost the database.

The post list's search is the one read whose cost a client chooses: a word
that matches nothing makes MySQL read every post. Its statements stop after
settings.SEARCH_TIME_LIMIT seconds, with MySQL's own limit (MariaDB's, in
the tests); SQLite, on a laptop, has none.
"""

from contextlib import contextmanager

from django.db import OperationalError, connection

# "Statement interrupted: its time limit passed", from MySQL and from MariaDB.
TIME_LIMIT_PASSED = {3024, 1969}


@contextmanager
def time_limit(seconds):
    """Every statement of this connection in the block stops after `seconds`."""
    if connection.vendor != "mysql":
        yield
        return
    if connection.mysql_is_mariadb:
        variable, value = "max_statement_time", seconds
    else:  # MySQL: read-only SELECTs only, in milliseconds
        variable, value = "max_execution_time", round(seconds * 1000)
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION {variable} = %s", [value])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SET SESSION {variable} = DEFAULT")


def time_limit_passed(error):
    return (
        isinstance(error, OperationalError)
        and bool(error.args)
        and error.args[0] in TIME_LIMIT_PASSED
    )
