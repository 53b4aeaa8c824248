"""logs.py: with LOG_FORMAT=json every line Gunicorn and Django write is one
JSON object, named as every tier names it, the request ID included."""

import http.client
import json
import time

import pytest

from .processes import Gunicorn

REQUEST_ID = "3f0c8b1e-5d6a-4f7e-9a2b-1c3d5e7f9a0b"
# A client that tries to write fields of its own into the line.
USER_AGENT = 'x", "status": 999, "request_id": "forged\\'


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Request-ID": REQUEST_ID, "X-Forwarded-For": "203.0.113.7"}
    connection.request("GET", path, headers=headers | {"User-Agent": USER_AGENT})
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.fixture
def json_gunicorn(tmp_path):
    log = (tmp_path / "gunicorn.log").open("w")
    server = Gunicorn.start(tmp_path / "db.sqlite3", log=log, LOG_FORMAT="json")
    yield server, tmp_path / "gunicorn.log"
    server.stop()
    log.close()


def lines_once_logged(path, *texts):
    """The log's whole lines once every one of `texts` is in one (Gunicorn
    may be writing the next)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logged = path.read_text()
        if all(text in logged for text in texts):
            break
        time.sleep(0.1)
    return logged[: logged.rfind("\n") + 1].splitlines()


def test_every_line_is_a_json_object_and_names_its_request(json_gunicorn):
    server, log = json_gunicorn
    assert get(server.port, '/?q="quoted"') == 200
    assert get(server.port, "/no-such-page/") == 404
    # Each access line comes from the worker that answered, the first one's
    # maybe after the second's: both, and Django's line about the 404.
    logged = lines_once_logged(log, '"/?q=', '"/no-such-page/"', "Not Found")
    lines = [json.loads(line) for line in logged]
    assert {"Booting worker with pid", "Listening at"} & {
        line["message"].split(":")[0] for line in lines if "message" in line
    }
    access = [line for line in lines if line.get("path", "").startswith("/?q=")]
    assert access == [
        {
            "time": access[0]["time"],
            "service": "app",
            "request_id": REQUEST_ID,
            "client": "203.0.113.7",
            "method": "GET",
            "path": access[0]["path"],
            "status": 200,
            "bytes": access[0]["bytes"],
            "duration_ms": access[0]["duration_ms"],
            "scheme": "-",
            "peer": "127.0.0.1",
            "user_agent": USER_AGENT,
        }
    ]
    assert "quoted" in access[0]["path"] and access[0]["bytes"] > 0
    (not_found,) = [line for line in lines if line.get("message", "").startswith("Not Found")]
    assert not_found["request_id"] == REQUEST_ID
    assert (not_found["level"], not_found["logger"], not_found["service"]) == (
        "WARNING",
        "django.request",
        "app",
    )
    # One line per request: django-guid's own INFO line would repeat it.
    assert not [line for line in lines if line.get("logger", "").startswith("django_guid")]


# A reset link's token, as Django makes them (its time in base 36, a hash).
TOKEN = "cm4x2p-5d1f0a9c3b7e2d4f6a8c0e1b3d5f7a9c"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_password_reset_links_token_is_in_no_log_line(tmp_path, log_format):
    # Whoever reads it could set the member's password for an hour.
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = Gunicorn.start(tmp_path / "db.sqlite3", log=output, LOG_FORMAT=log_format)
        try:
            assert get(server.port, f"/accounts/reset/MQ/{TOKEN}/") == 200
            logged = "\n".join(lines_once_logged(log, "/accounts/reset/MQ/.../"))
        finally:
            server.stop()
    assert "/accounts/reset/MQ/.../" in logged
    assert TOKEN not in logged
