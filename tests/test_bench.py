"""Tier 6: the benchmark's command runs from end to end, in a smoke run.

No figure is asserted: timings are the benchmark's output, never a pass or a
fail. What must hold is that `bench/run` drives every contender, each of
which serves what it is asked for, runs a failover scenario under load, and
writes its table and its chart.
"""

import re

import bench.__main__ as bench
from bench import report

PAGE = [
    "Gunicorn",
    "Nginx → Gunicorn",
    "Apache → Gunicorn",
    "HAProxy → Nginx → Gunicorn",
    "HAProxy → Apache → Gunicorn",
    "HAProxy → Nginx → Gunicorn, every log as JSON",
    "Gunicorn, no metrics",
    "Granian",
    "HAProxy → Nginx → Gunicorn, kept alive",
    "HAProxy → Apache → Gunicorn, kept alive",
    "HAProxy → Nginx → Gunicorn, page cache on",
    "HAProxy → Apache → Gunicorn, page cache on",
    "HAProxy → Nginx → Gunicorn, page cache on, logged in",
]
STATIC = ["Nginx", "Apache", "HAProxy → Nginx", "Gunicorn + WhiteNoise"]


def rows(table, heading):
    """{first cell: cells} of the markdown table under `heading`."""
    section = table.split(f"## {heading}")[1].split("\n## ")[0]
    cells = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in cells[1:]}


def test_a_smoke_run_measures_every_contender_and_writes_its_table_and_chart(
    tmp_path, engine, images
):
    # What `bench/run --smoke` runs, on the tiers' engine and stand-ins.
    results = bench.run(bench.SMOKE, tmp_path / "work", engine)
    table, chart = report.write(results, tmp_path)
    assert chart.name == table.with_suffix(".png").name
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    text = table.read_text()
    page = rows(text, "The post list")
    static = rows(text, "The board's stylesheet")
    assert list(page) == PAGE and list(static) == STATIC
    # Every contender answered, and never with an error: it served its page.
    for name, cells in {**page, **static}.items():
        requests_per_second, errors = float(cells[0].split()[0]), cells[4 if name in page else 3]
        assert requests_per_second > 0 and errors == "0", (name, cells)
    # What each service on the path spent, from its container's cgroup: the
    # one that took each request spent some.
    for name, cells in {**page, **static}.items():
        spent = dict(part.split() for part in cells[5 if name in page else 4].split(" · "))
        assert float(next(iter(spent.values()))) > 0, (name, cells)
    # The share of post lists the app rendered, where a stack's app counted them.
    for name, cells in page.items():
        counted = name not in ("Granian", "Gunicorn, no metrics")
        assert re.fullmatch(r"[01]\.\d{3}" if counted else "-", cells[-1]), (name, cells)
    assert list(rows(text, "Concurrency")) == ["16", "64", "256", "1,024"]
    memory = rows(text, "Memory")
    assert set(memory) == {"haproxy", "nginx", "apache", "app", "granian", "whitenoise", "database"}
    assert all(float(idle) > 0 for idle, _ in memory.values()), memory
    # The smoke run's one failover scenario ran under load and timed the DOWN.
    scenario, cost = rows(text, "Failover")["nginx + apache"]
    assert scenario == "when a web server is killed", scenario
    assert re.search(r"DOWN after [\d.]+ s, .*failed GETs \d+ of [1-9]", cost), cost
    # The honest reader alone, then during the smoke run's one attack.
    attacks = rows(text, "Under attack")
    assert list(attacks) == ["none: the reader alone", "password guessing"], attacks
    assert re.fullmatch(r"\d+ of [1-9]\d*", attacks["none: the reader alone"][0]), attacks
    assert "refused from try" in attacks["password guessing"][2], attacks
    assert "nan" not in text
