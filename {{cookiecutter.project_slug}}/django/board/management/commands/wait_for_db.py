"""Wait until the database accepts connections, or give up after a timeout.

The entrypoint runs this before anything touches the database: on a first
start MySQL needs tens of seconds to initialise, and Compose's health condition
is not there when the stack runs elsewhere (Swarm, a plain `docker run`).
"""

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections


class Command(BaseCommand):
    help = "Wait for the database to accept connections (DB_WAIT_TIMEOUT seconds, default 60)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--timeout",
            type=float,
            # A string default goes through `type`, so a bad value is reported
            # like a bad option instead of a traceback.
            default=os.environ.get("DB_WAIT_TIMEOUT") or "60",
            help="Seconds to keep trying (default: DB_WAIT_TIMEOUT or 60).",
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between attempts (default: 1)."
        )

    def handle(self, *args, timeout, interval, **options):
        connection = connections["default"]
        if connection.vendor == "sqlite":
            self.stdout.write("Database is SQLite: nothing to wait for.")
            return
        where = f"{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}"
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                connection.ensure_connection()
            except DatabaseError as error:
                if time.monotonic() + interval > deadline:
                    raise CommandError(
                        f"Database at {where} still unreachable after {timeout:g}s "
                        f"({attempt} attempts): {error}"
                    ) from error
                self.stdout.write(f"Waiting for database at {where} (attempt {attempt}): {error}")
                time.sleep(interval)
            else:
                connection.close()
                self.stdout.write(self.style.SUCCESS(f"Database at {where} is up."))
                return
