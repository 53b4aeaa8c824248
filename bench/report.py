"""The benchmark's results as a markdown table and a PNG chart."""

import statistics

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

DIRECT, WHITENOISE = "Gunicorn", "Gunicorn + WhiteNoise"
CHAINS = ("HAProxy → Nginx → Gunicorn", "HAProxy → Apache → Gunicorn")
# A chain again, with its connections kept alive at every hop; with the
# web servers' page cache on (as shipped), and for a logged-in reader.
KEPT_ALIVE = ", kept alive"
CACHED = ", page cache on"
LOGGED_IN = ", logged in"
SERVICES = ("haproxy", "nginx", "apache", "app", "database")


def median(runs, figure):
    return statistics.median(getattr(run, figure) for run in runs)


def spread(runs, figure, digits):
    """The median over the rounds, then the lowest and highest round."""
    values = [getattr(run, figure) for run in runs]
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def cpu_ms(runs):
    """{service: median CPU milliseconds per answer}, in path order."""
    present = [name for name in SERVICES if name in runs[0].cpu_ms]
    return {name: statistics.median(run.cpu_ms[name] for run in runs) for name in present}


def total_cpu_ms(runs):
    return sum(cpu_ms(runs).values())


def app_share(runs):
    """The share of the CPU time spent on an answer that the app and the
    database spent: what the layers in front cost, in their own run."""
    cpu = cpu_ms(runs)
    return (cpu["app"] + cpu["database"]) / sum(cpu.values())


def cpu_cell(runs):
    return " · ".join(f"{name} {ms:.2f}" for name, ms in cpu_ms(runs).items())


def table(columns, rows):
    """A markdown table: a header of `columns`, then one line per row of cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def errors(runs):
    return sum(run.errors for run in runs)


def rps_ratio(runs, base):
    return median(runs, "requests_per_second") / median(base, "requests_per_second")


def by_app(runs):
    """The share of answers the app rendered (the rest came from a cache),
    where the app counted them."""
    if runs[0].by_app is None:
        return "-"
    return f"{median(runs, 'by_app'):.3f}"


def page_table(results):
    direct = results.page[DIRECT]
    columns = ["contender", "req/s", "vs Gunicorn", "p50 ms", "p99 ms", "errors"]
    columns += ["CPU ms per answer, by service", "CPU ms, all", "app and database's share"]
    columns += ["rendered by the app"]
    rows = [
        [
            name,
            spread(runs, "requests_per_second", 0),
            f"{rps_ratio(runs, direct):.2f}",
            spread(runs, "p50_ms", 1),
            spread(runs, "p99_ms", 1),
            errors(runs),
            cpu_cell(runs),
            f"{total_cpu_ms(runs):.2f}",
            f"{app_share(runs):.3f}",
            by_app(runs),
        ]
        for name, runs in results.page.items()
    ]
    return table(columns, rows)


def static_table(results):
    base = results.static[WHITENOISE]
    columns = ["contender", "req/s", "vs WhiteNoise", "p99 ms", "errors"]
    columns += ["CPU ms per answer, by service", "WhiteNoise's CPU / this"]
    rows = [
        [
            name,
            spread(runs, "requests_per_second", 0),
            f"{rps_ratio(runs, base):.1f}x",
            spread(runs, "p99_ms", 2),
            errors(runs),
            cpu_cell(runs),
            f"{total_cpu_ms(base) / total_cpu_ms(runs):.1f}x",
        ]
        for name, runs in results.static.items()
    ]
    return table(columns, rows)


def sweep_table(results):
    columns = ["connections", "req/s", "p99 ms", "errors", "web servers marked DOWN"]
    rows = [
        [
            f"{connections:,}",
            spread(runs, "requests_per_second", 0),
            spread(runs, "p99_ms", 0),
            errors(runs),
            results.marked_down[connections],
        ]
        for connections, runs in results.sweep.items()
    ]
    return table(columns, rows)


def memory_table(results):
    rows = [
        [name, f"{idle:.0f}", f"{results.memory_peak[name]:.0f}"]
        for name, idle in results.memory_idle.items()
    ]
    return table(["service", "idle", "peak since it started"], rows)


def failover_table(results):
    rows = [
        [
            choice.replace("+", " + "),
            scenario.removeprefix("failover_").replace("_", " "),
            ", ".join(f"{name} {value}" for name, value in figures.items()),
        ]
        for choice, scenarios in results.failover.items()
        for scenario, figures in scenarios.items()
    ]
    return table(["web servers", "scenario", "what it cost"], rows)


def under_attack_table(results):
    reader = ("honest GETs answered 200", "their p99")
    rows = []
    for attack, figures in results.under_attack.items():
        others = ", ".join(
            f"{name} {counts(value)}" for name, value in figures.items() if name not in reader
        )
        rows.append([attack, *(figures.get(name, "-") for name in reader), others or "-"])
    return table(["attack", *reader, "the attacker got"], rows)


def counts(value):
    """A figure as the table shows it: {429: 192, 408: 8} as "429: 192, 408: 8"."""
    if isinstance(value, dict):
        return ", ".join(f"{key}: {number}" for key, number in value.items())
    return value


def targets(results):
    """Each target the benchmark has: what it asks, what was measured, whether it holds."""
    rows = []
    for chain in CHAINS:
        share = app_share(results.page[chain])
        kept = app_share(results.page[chain + KEPT_ALIVE])
        target = f"{chain}: the app and database's share of CPU ≥ 0.95"
        measured = f"{share:.3f} ({kept:.3f} with every connection kept alive)"
        rows.append((target, measured, share >= 0.95))
    for chain, least in zip(CHAINS, (10, 5), strict=True):
        ratio = rps_ratio(results.page[chain + CACHED], results.page[chain])
        target = f"{chain}, page cache on: ≥ {least}x the anonymous post list's req/s without"
        rows.append((target, f"{ratio:.1f}x", ratio >= least))
    app_ms = cpu_ms(results.page[CHAINS[0]])["app"]
    target = f"{CHAINS[0]}, no page cache: the app's CPU ≤ 3.5 ms per post list"
    rows.append((target, f"{app_ms:.2f} ms", app_ms <= 3.5))
    base = results.static[WHITENOISE]
    for name, least in (("Nginx", 15), ("Apache", 6)):
        runs = results.static[name]
        ratio, by_cpu = rps_ratio(runs, base), total_cpu_ms(base) / total_cpu_ms(runs)
        target = f"{name} serves the CSS ≥ {least}x WhiteNoise (req/s)"
        rows.append((target, f"{ratio:.1f}x ({by_cpu:.1f}x by CPU)", ratio >= least))
    failed, down = errors(results.sweep[256]), results.marked_down[256]
    target = "256 connections: 0 errors, no web server marked DOWN"
    rows.append((target, f"{failed} errors, marked DOWN {down} times", failed == down == 0))
    per_answer = results.disk_temp_tables_per_answer
    target = "0 on-disk temporary tables per post-list answer"
    rows.append((target, f"{per_answer:.3f}", per_answer == 0))
    bake = statistics.median(results.bake_seconds)
    target = f"a bake under 1 s (median of {len(results.bake_seconds)})"
    rows.append((target, f"{bake:.2f} s", bake < 1))
    rows = [(target, value, "yes" if holds else "**no**") for target, value, holds in rows]
    return table(["target", "measured", "holds"], rows)


def markdown(results, chart_name):
    plan = results.plan
    intro = (
        f"{plan.rounds} rounds of {plan.seconds} s per contender, interleaved, with wrk at 16 "
        f"connections; the concurrency runs, {plan.sweep_rounds} of {plan.sweep_seconds} s. Each "
        "figure is the median over the rounds, then the lowest and highest round in brackets. "
        "CPU is milliseconds of CPU time per answer, for each service on the request's path; "
        "read from each container's cgroup; the database is each stack's own MySQL. Every "
        "service runs in its image under Compose, one instance each. Rerun with `bench/run`."
    )
    sections = [
        [
            f"# Benchmark: {results.date}, {results.machine}",
            "",
            intro,
            "",
            f"![chart]({chart_name})",
        ],
        [
            "## The post list (a page of 10 posts with comment counts)",
            "",
            "Anonymous, and rendered by the app for every request, unless the contender "
            f'says "{CACHED.lstrip(", ")}": the web servers\' page cache as shipped (each page '
            'kept 1 s). "Logged in": a reader with a session, whose pages no cache keeps.',
            "",
            *page_table(results),
        ],
        ["## The board's stylesheet", "", *static_table(results)],
        ["## Concurrency: HAProxy → Nginx → Gunicorn, the post list", "", *sweep_table(results)],
        [
            "## Memory (MiB, each container's cgroup, with the page cache it caused)",
            "",
            *memory_table(results),
        ],
        [
            "## Failover under a steady load of GETs and POSTs",
            "",
            "Each proxy choice as baked by default (two app replicas, TLS in HAProxy), "
            "under Compose; one run of each of the stack checks' scenarios, from a healthy stack. "
            "Request counts depend on the machine's speed.",
            "",
            *failover_table(results),
        ],
        [
            "## Under attack",
            "",
            "The stack with both web servers, as baked by default, under Compose. An honest "
            "reader asks for the post list five times a second from an address of its own, "
            "first alone, then during each of the stack checks' attacks, each from one other "
            "address: 200 connections trickling 1 MB bodies, a flood on 48 connections, "
            "40 wrong passwords for one account. One run each.",
            "",
            *under_attack_table(results),
        ],
        ["## Targets", "", *targets(results)],
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def chart(results, path):
    figure, (page, cpu, static) = plt.subplots(1, 3, figsize=(16, 5.5), layout="constrained")
    bars(page, results.page, "The post list: requests/s")
    names = list(results.page)
    bottom = [0.0] * len(names)
    for service in SERVICES:
        heights = [cpu_ms(runs).get(service, 0.0) for runs in results.page.values()]
        cpu.barh(names, heights, left=bottom, label=service)
        bottom = [left + height for left, height in zip(bottom, heights, strict=True)]
    cpu.set_title("The post list: CPU ms per answer")
    # Below the bars, so that it hides none of them.
    cpu.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=len(SERVICES))
    cpu.invert_yaxis()
    cpu.set_yticklabels([])
    bars(static, results.static, "The stylesheet: requests/s")
    figure.suptitle(f"{results.date}, {results.machine}")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def bars(axes, contenders, title):
    """Median requests/s of each contender, with the lowest and highest round."""
    rounds = [[run.requests_per_second for run in runs] for runs in contenders.values()]
    mids = [statistics.median(values) for values in rounds]
    lows = [mid - min(values) for mid, values in zip(mids, rounds, strict=True)]
    highs = [max(values) - mid for mid, values in zip(mids, rounds, strict=True)]
    axes.barh(list(contenders), mids, xerr=[lows, highs], capsize=3)
    axes.invert_yaxis()
    axes.set_title(title)


def write(results, folder):
    """Write <date>-<machine>.md and .png in folder, or -2, -3... for a later
    run of the same day, never over an earlier one; return their paths."""
    stem = f"{results.date}-{results.machine}"
    run = 1
    while (folder / f"{stem}.md").exists():
        run += 1
        stem = f"{results.date}-{results.machine}-{run}"
    table, picture = folder / f"{stem}.md", folder / f"{stem}.png"
    chart(results, picture)
    table.write_text(markdown(results, picture.name))
    return table, picture
