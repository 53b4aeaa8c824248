"""Log lines as JSON objects, one per line, when LOG_FORMAT is json.

Every tier of the stack names the same things the same way (docs/monitoring.md,
"Logs"): time, service, request_id, client, method, path, status, bytes,
duration_ms. Django's own lines and Gunicorn's error log go through
python-json-logger (settings.py, gunicorn.conf.py); Gunicorn's access line
is built here from its atoms, which Gunicorn passes as the record's args.

In either format, a password reset link's token is masked in the access
line (`masked`): whoever has the link can set the account's password for an
hour, and logs are read, shipped and kept by more people than mail is. Every
tier masks it the same way (docs/monitoring.md, "Logs").
"""

import json
import logging
import re

from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# accounts/reset/<uidb64>/<token>/: the segment after the user's ID.
RESET_TOKEN = re.compile(r"(/reset/[^/?]+/)[^/?]+/")


def masked(path):
    """`path` (or a request line) with a reset link's token as `...`."""
    return RESET_TOKEN.sub(r"\1.../", path)


def line_formatter():
    """For every line but the access log: time, level, logger, message, and
    the request ID (django-guid's filter sets it while a request runs)."""
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}{correlation_id}",
        style="{",
        datefmt=TIME_FORMAT,
        rename_fields={
            "asctime": "time",
            "levelname": "level",
            "name": "logger",
            "correlation_id": "request_id",
        },
        static_fields={"service": "app"},
    )


class AccessFormatter(logging.Formatter):
    """Gunicorn's access line. The client is the address HAProxy put in
    X-Forwarded-For (the one address it leaves there); `peer` is the web
    server that passed the request on."""

    def format(self, record):
        atoms = record.args
        query = atoms["q"]
        return json.dumps(
            {
                "time": self.formatTime(record, TIME_FORMAT),
                "service": "app",
                "request_id": atoms["{x-request-id}i"],
                "client": atoms["{x-forwarded-for}i"],
                "method": atoms["m"],
                "path": atoms["U"] + (f"?{query}" if query else ""),
                "status": int(atoms["s"]),
                "bytes": int(atoms["B"] or 0),
                "duration_ms": int(atoms["M"]),
                "scheme": atoms["{x-forwarded-proto}i"],
                "peer": atoms["h"],
                "user_agent": atoms["a"],
            },
            ensure_ascii=False,
        )


class Atoms(glogging.SafeAtoms):
    """Gunicorn's atoms as the client sent them: json.dumps escapes them,
    where SafeAtoms would put backslashes of its own before every quote. A
    header the request lacks is still "-"."""

    def __init__(self, atoms):
        dict.__init__(self, atoms)


class Logger(glogging.Logger):
    """Gunicorn's logger, a reset link's token masked in the request line
    and the path (gunicorn.conf.py's logger_class)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"], atoms["U"] = masked(atoms["r"]), masked(atoms["U"])
        return atoms


class JsonLogger(Logger):
    """Gunicorn's logger, its lines as JSON (gunicorn.conf.py's logger_class)."""

    atoms_wrapper_class = Atoms

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(line_formatter())
        for handler in self.access_log.handlers:
            handler.setFormatter(AccessFormatter())
