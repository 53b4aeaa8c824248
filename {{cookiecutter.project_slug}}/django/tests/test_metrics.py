"""gunicorn.conf.py and settings.py: every worker's requests, counted once,
served on the metrics port only."""

import http.client
import re
import urllib.request

from .processes import one_request

REQUESTS = 40


def metric(text, name, **labels):
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(re.escape(name) + r"\{(.*)\} (\S+)", line)
        if match and all(f'{key}="{value}"' in match.group(1) for key, value in labels.items()):
            total += float(match.group(2))
    return total


def scrape(gunicorn):
    url = f"http://127.0.0.1:{gunicorn.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own server)
        return response.read().decode()


def test_every_workers_answers_are_counted_by_view_and_status(gunicorn):
    before = scrape(gunicorn)
    outcomes = [one_request(gunicorn.port, "/") for _ in range(REQUESTS)]
    assert outcomes == ["answered"] * REQUESTS
    # Each on a connection of its own, spread over both workers: only their
    # files summed make the whole count.
    after = scrape(gunicorn)
    name = "django_http_responses_total_by_status_view_method_total"
    labels = {"status": "200", "view": "board:post_list", "method": "GET"}
    assert metric(after, name, **labels) - metric(before, name, **labels) == REQUESTS
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert metric(after, latency, view="board:post_list") >= REQUESTS
    # The database's queries are counted too.
    assert metric(after, "django_db_execute_total") > 0


def test_the_metrics_are_not_served_on_the_apps_own_port(gunicorn):
    """The web servers pass every path to the app's port: /metrics is not there."""
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=10)
    connection.request("GET", "/metrics")
    assert connection.getresponse().status == 404
    connection.close()
