"""What each layer of the stack costs and buys, measured side by side.

    bench/run            # about 17 minutes: bench/results/<date>-<machine>.md and .png
    bench/run --smoke    # 1 s per contender, one failover: proves the command still works

It bakes the template once per web server, with tls=none (the proxy layers
are compared, not TLS), starts both stacks natively with the test tiers'
launcher (harness/native.py), one app replica each, on one MariaDB, and a copy
of each with every connection kept alive (KEEP_ALIVE), all with the page
cache off (UNCACHED: the app renders every answer, as the layers are
compared); then each once more with the page cache on, as shipped, for
anonymous readers and a logged-in one; seeds the post list;
and drives every contender with wrk. The contenders run round by round,
interleaved, so a noisy neighbour on a shared machine hits all of them
alike; each figure is the median over the rounds, with its spread (lowest to
highest round). Requests per second move with the machine's load. The CPU
time each service spends per answer holds steady, and is what the layers
are compared by.

wrk is one client, from one address: in the stacks that measure the layers,
HAProxy's limits per client are set out of its reach (its stick tables are
still kept and read, so what they cost is in HAProxy's figures).

Then, for each proxy choice as a user bakes it (two replicas, TLS), it runs
the stack checks' failover scenarios under a steady load of GETs and POSTs, and
reports what each cost: failed requests, seconds to DOWN. On the one with
both web servers it runs the stack checks' three attacks, each from one address while
an honest reader reads from another, beside the reader alone: what the
reader got, and what the attacker got. These are counts of one run each,
reported as measured.
"""

import argparse
import contextlib
import datetime
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import report
from harness import processes, services
from harness.mariadb import MariaDB
from harness.native import NativeStack, failover_scenarios
from harness.processes import Server, free_port
from harness.template import PROXY_CHOICES, client_limits, load_stack_checks

ROOT = Path(__file__).resolve().parent.parent

CHECKS = load_stack_checks()
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Every page of the post list full, each post with comments to count.
POSTS, COMMENTS_PER_POST = 200, 5
SEED = f"""
from django.contrib.auth import get_user_model
from board.models import Comment, Post
author = get_user_model().objects.create_user("bench", password="bench-password-1")
posts = Post.objects.bulk_create(
    Post(author=author, title=f"Post {{n}}", content="Lorem ipsum dolor sit amet. " * 40)
    for n in range({POSTS})
)
Comment.objects.bulk_create(
    Comment(post=post, author=author, content=f"Comment {{n}} on {{post.title}}")
    for post in posts for n in range({COMMENTS_PER_POST})
)
"""
PAGE_CONNECTIONS = 16
SWEEP = (16, 64, 256, 1024)


@dataclass
class Plan:
    """How long each contender runs, and how many rounds."""

    seconds: int
    rounds: int
    # At 1,024 connections an answer can wait 10 s in HAProxy's queue: the
    # concurrency runs are longer, and fewer.
    sweep_seconds: int
    sweep_rounds: int
    # The failover scenarios, and the proxy choices they run on.
    failover: list
    failover_choices: list
    # The attacks, run on the first proxy choice (both web servers), and how
    # long the honest reader reads alone first, as the table's baseline.
    attacks: list
    reader_seconds: int


FAILOVER = failover_scenarios(CHECKS)
FULL = Plan(5, 5, 15, 2, FAILOVER, list(PROXY_CHOICES), CHECKS.ABUSE, 10)
# The first scenario (a web server killed: seconds to DOWN), on the stack
# with both, and the quickest attack.
SMOKE = Plan(1, 1, 1, 1, FAILOVER[:1], list(PROXY_CHOICES)[:1], CHECKS.ABUSE[-1:], 2)
# Limits per client no wrk run reaches (see the module's docstring).
UNLIMITED = dict.fromkeys(client_limits(), "1000000")
# The stack whose every server logs JSON, as under Compose (measure_layers).
JSON_LOGS = "JSON logs"
# The stacks that measure the layers render every page: the web servers'
# page cache (on as shipped, DJANGO_PAGE_CACHE_SECONDS=1) is off there, and
# measured on stacks of its own, "<web server> cached".
UNCACHED = {"DJANGO_PAGE_CACHE_SECONDS": "0"}
CACHE_STACK = "cached"


@dataclass
class Contender:
    name: str
    url: str
    services: dict  # service name -> its Server, for each one on the request's path
    headers: dict = field(default_factory=dict)  # what wrk sends with each request
    # Where the app counts the post lists it rendered, if it is a stack's.
    app_metrics: str | None = None


@dataclass
class Run:
    """One wrk run against one contender."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, timeouts and answers other than 2xx/3xx
    answers: int
    cpu_ms: dict  # service name -> CPU milliseconds per answer
    by_app: float | None = None  # the share of answers the app rendered (not a cache)


@dataclass
class Results:
    machine: str
    date: str
    plan: Plan
    bake_seconds: list = field(default_factory=list)
    page: dict = field(default_factory=dict)  # contender -> [Run]
    static: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)  # connections -> [Run]
    memory_idle: dict = field(default_factory=dict)  # service -> MiB
    memory_peak: dict = field(default_factory=dict)
    disk_temp_tables_per_answer: float = 0.0
    marked_down: dict = field(default_factory=dict)  # connections -> times a web server went DOWN
    failover: dict = field(default_factory=dict)  # proxy choice -> {scenario: its figures}
    under_attack: dict = field(default_factory=dict)  # attack -> its figures


def wrk(url, connections, seconds, headers=None):
    """(requests/s, p50 ms, p99 ms, errors, answers) of one wrk run."""
    # The timeout is past HAProxy's queue timeout (10 s): a queued request
    # counts as answered, or as refused with a 503, never as a client timeout.
    command = ["wrk", "--latency", f"-t{min(2, connections)}", f"-c{connections}"]
    command += [f"-d{seconds}s", "--timeout", "15s", "-H", "Host: localhost"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", out)))
    errors += sum(map(int, re.findall(r"Non-2xx or 3xx responses: (\d+)", out)))
    answers = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps, latency_ms(out, "50"), latency_ms(out, "99"), errors, answers


def latency_ms(wrk_output, percentile):
    value, unit = re.search(rf"\b{percentile}%\s+([\d.]+)(us|ms|s)\b", wrk_output).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def cpu_seconds(server):
    """CPU time of a server's processes, and of the children they reaped."""
    ticks = 0
    for pid in processes.live_processes(server.process.pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # ended while we looked
            continue
        ticks += sum(int(value) for value in stat[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def memory_mib(server):
    """Proportional set size: pages shared between processes split among them."""
    kib = 0
    for pid in processes.live_processes(server.process.pid):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        kib += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE).group(1))
    return kib / 1024


# The app's count of the post lists it answered (django-prometheus).
POST_LISTS = re.compile(
    r"^django_http_requests_latency_seconds_by_view_method_count"
    r'\{[^}]*view="board:post_list"[^}]*\} (\S+)$',
    re.MULTILINE,
)


def post_lists_rendered(metrics_url):
    """How many post lists the app has rendered (its own metrics)."""
    text = requests.get(metrics_url, timeout=10).text
    return sum(float(value) for value in POST_LISTS.findall(text))


def run_once(contender, connections, seconds):
    before = {name: cpu_seconds(server) for name, server in contender.services.items()}
    if contender.app_metrics:
        rendered = post_lists_rendered(contender.app_metrics)
    rps, p50, p99, errors, answers = wrk(contender.url, connections, seconds, contender.headers)
    cpu_ms = {
        name: (cpu_seconds(server) - before[name]) * 1000 / max(answers, 1)
        for name, server in contender.services.items()
    }
    by_app = None
    if contender.app_metrics:
        by_app = (post_lists_rendered(contender.app_metrics) - rendered) / max(answers, 1)
    return Run(rps, p50, p99, errors, answers, cpu_ms, by_app)


def rounds(contenders, connections, seconds, count):
    """{contender: [Run]}, every contender once per round, each round starting
    one further along, so that none always runs first."""
    runs = {contender.name: [] for contender in contenders}
    for index in range(count):
        for contender in contenders[index:] + contenders[:index]:
            runs[contender.name].append(run_once(contender, connections, seconds))
    return runs


class PeakMemory:
    """The highest memory of each server while the block runs, sampled every 0.5 s."""

    def __init__(self, servers):
        self.servers = servers
        self.peak = dict.fromkeys(servers, 0.0)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.sample)

    def sample(self):
        while not self.stopping.wait(0.5):
            for name, server in self.servers.items():
                self.peak[name] = max(self.peak[name], memory_mib(server))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.thread.join()


def bake(output, **answers):
    """A baked project, and how long the bake took, as a user runs it."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(ROOT)]
    started = time.monotonic()
    subprocess.run(
        command + [f"{k}={v}" for k, v in answers.items()], check=True, capture_output=True
    )
    took = time.monotonic() - started
    (project,) = output.iterdir()
    return project, took


def manage_shell(stack, code):
    """What `code` prints, run in the stack's app by `manage.py shell`."""
    django = services.django(stack.layout)
    command = ["sh", django.entrypoint, "python", "manage.py", "shell", "-c", code]
    return subprocess.run(command, env=django.env(), check=True, capture_output=True).stdout


def seed(stack):
    manage_shell(stack, SEED)


# A session of the seeded user's, as a log-in would make it.
LOG_IN = """
from django.contrib.auth import get_user_model, BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.get(username="bench")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def logged_in(stack):
    """The Cookie header of a logged-in reader of `stack`."""
    return {"Cookie": f"sessionid={manage_shell(stack, LOG_IN).decode().split()[-1]}"}


def app_server(stack, name, host, *command, **settings):
    """Another app server for the same project, database and static files,
    on a loopback address of its own ({host} and {port} in the command),
    with `settings` added to its environment."""
    port = free_port(host)
    django = services.django(stack.layout, host)
    return Server(
        name,
        ["sh", django.entrypoint, *(part.format(host=host, port=port) for part in command)],
        host=host,
        port=port,
        env=django.env() | {"PYTHONPATH": str(ROOT / "bench"), **settings},
        log_path=stack.layout.workdir / f"{name}.log",
    )


def stylesheet(url):
    """The board's stylesheet, as the post list links it (a hashed name)."""
    page = requests.get(url, headers={"Host": "localhost"}, timeout=10).text
    return re.search(r'href="(/static/[^"]+\.css)"', page).group(1)


def disk_temp_tables(mariadb):
    return int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Created_tmp_disk_tables'").split()[1])


def machine_name():
    """The CPU model and core count, as a file name."""
    model = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2]
            break
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"{os.cpu_count()}cpu-{slug}"


# What each config changes so that every hop keeps its connections alive for
# every request, as the web servers' reads to the replicas already do: the
# measurement of what the shipped configs' fresh connections cost. Not
# shipped: a POST sent on a kept connection just as its server closes it is
# lost (the baked README's "Graceful stops").
KEEP_ALIVE = {
    "haproxy/haproxy.cfg": [("    option http-server-close\n", "")],
    "nginx/nginx.conf": [
        ("        zone app 64k;\n",
         "        zone app 64k;\n        keepalive 16;\n        keepalive_timeout 4s;\n"),
        ("proxy_set_header Connection close;", 'proxy_set_header Connection "";\n'
         "        proxy_http_version 1.1;"),
    ],
}  # fmt: skip


def kept_alive(project):
    """A copy of a baked project, its connections kept alive at every hop."""
    copy = project.parent / "kept-alive" / project.name
    shutil.copytree(project, copy)
    for name, changes in KEEP_ALIVE.items():
        path = copy / name
        if not path.exists():  # a web server this project does not have
            continue
        text = path.read_text()
        for old, new in changes:
            if old not in text:
                raise RuntimeError(f"{name} no longer has {old!r}: update KEEP_ALIVE")
            text = text.replace(old, new)
        path.write_text(text)
    return copy


def run(plan, workdir):
    results = Results(machine_name(), datetime.date.today().isoformat(), plan)
    projects, as_baked = {}, {}
    for web_server, other in (("nginx", "apache"), ("apache", "nginx")):
        answers = {f"use_{web_server}": "yes", f"use_{other}": "no", "tls": "none"}
        projects[web_server], took = bake(workdir / web_server, **answers)
        results.bake_seconds.append(took)
    # Every proxy choice with the other answers as they come (the first: all of them).
    for choice, answers in PROXY_CHOICES.items():
        yes_no = {name: "yes" if chosen else "no" for name, chosen in answers.items()}
        as_baked[choice], took = bake(workdir / "as-baked" / choice, **yes_no)
        results.bake_seconds.append(took)

    with MariaDB(workdir / "mariadb") as mariadb:
        measure_layers(results, projects, mariadb)
        for choice in plan.failover_choices:
            with NativeStack(as_baked[choice], mariadb) as stack:
                results.failover[choice] = failover(stack, plan.failover)
                if choice == plan.failover_choices[0]:
                    results.under_attack = under_attack(stack, plan)
    return results


def measure_layers(results, projects, mariadb):
    """The page, stylesheet, concurrency and memory figures, on one stack per
    web server with one replica each, and one more each with its connections
    kept alive at every hop; Nginx's once more with every server's log
    as JSON, as Compose runs them (the others log text, the entrypoints'
    default); and one more per web server with the page cache on."""
    with contextlib.ExitStack() as started:
        variants = {}
        for web_server, baked in projects.items():
            variants[web_server] = (baked, "text", UNCACHED)
            variants[f"{web_server} kept alive"] = (kept_alive(baked), "text", UNCACHED)
            variants[f"{web_server} {CACHE_STACK}"] = (baked, "text", {})
        variants[f"nginx {JSON_LOGS}"] = (projects["nginx"], "json", UNCACHED)
        stacks = {}
        for name, (project, log_format, app_settings) in variants.items():
            stack = NativeStack(
                project, mariadb, replicas=1, haproxy_settings=UNLIMITED,
                app_settings=app_settings, log_format=log_format,
            )  # fmt: skip
            stacks[name] = started.enter_context(stack)
            seed(stacks[name])
        nginx_stack = stacks["nginx"]
        # As Gunicorn runs here: 2 workers of 4 threads, each answer logged.
        granian = app_server(
            nginx_stack, "granian", "127.0.0.51", "granian", "--interface", "wsgi",
            "--host", "{host}", "--port", "{port}", "--workers", "2",
            "--blocking-threads", "4", "--access-log",
            f"{projects['nginx'].name}.wsgi:application",
        )  # fmt: skip
        whitenoise = app_server(
            nginx_stack, "whitenoise", "127.0.0.52", "gunicorn", "--config", "gunicorn.conf.py",
            "--bind", "{host}:{port}", "whitenoise_app:application",
        )  # fmt: skip
        # The app as the stack runs it but for its metrics, to show what
        # counting them costs.
        gunicorn = ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "{host}:{port}"]
        settings = f"{projects['nginx'].name}.settings"
        no_metrics = app_server(
            nginx_stack, "no metrics", "127.0.0.54", *gunicorn,
            DJANGO_SETTINGS_MODULE="no_metrics_settings", BENCH_PROJECT_SETTINGS=settings,
        )  # fmt: skip
        with granian, whitenoise, no_metrics:
            # Each server by its role, and which stack it is in: "app (apache)".
            servers, app_metrics = {}, {}
            for name, stack in stacks.items():
                suffix = "" if name == "nginx" else f" ({name})"
                servers |= {f"{role}{suffix}": server for role, server in stack.servers.items()}
                servers[f"app{suffix}"] = stack.replicas[0]
                metrics_port = stack.layout.ports["app-metrics"]
                app_metrics[f"app{suffix}"] = (
                    f"http://{stack.replicas[0].host}:{metrics_port}/metrics"
                )
            servers |= {"granian": granian, "whitenoise": whitenoise, "database": mariadb}
            servers |= {"no metrics": no_metrics}
            reader = logged_in(stacks[f"nginx {CACHE_STACK}"])
            measure(results, servers, nginx_stack, app_metrics, reader)


def failover(stack, scenarios):
    """{scenario: its figures}, each from a healthy stack, as the checks run them.
    A guarantee that does not hold is reported, not raised: the other
    scenarios still run."""
    figures = {}
    for scenario in scenarios:
        stack.heal()
        CHECKS.seconds_until_all_up(stack)
        try:
            figures[scenario.__name__] = scenario(stack)
        except AssertionError as failure:
            figures[scenario.__name__] = {"FAILED": str(failure).splitlines()[0]}
    return figures


def under_attack(stack, plan):
    """{attack: its figures}: first the honest reader alone, then each attack
    while it reads. A guarantee that does not hold is reported, not raised."""
    stack.heal()
    CHECKS.seconds_until_all_up(stack)
    with CHECKS.Reader(stack) as reader:
        time.sleep(plan.reader_seconds)
    figures = {"none: the reader alone": reader.figures()}
    for attack in plan.attacks:
        name = attack.__name__.removeprefix("under_attack_by_").replace("_", " ")
        try:
            figures[name] = attack(stack)
        except AssertionError as failure:
            figures[name] = {"FAILED": str(failure).splitlines()[0]}
    return figures


def address(server, path="/"):
    return f"http://{server.host}:{server.port}{path}"


# Each contender: the servers on a request's path, the first one taking it.
PAGE = {
    "Gunicorn": ["app"],
    "Nginx → Gunicorn": ["nginx", "app"],
    "Apache → Gunicorn": ["apache (apache)", "app (apache)"],
    "HAProxy → Nginx → Gunicorn": ["haproxy", "nginx", "app"],
    "HAProxy → Apache → Gunicorn": ["haproxy (apache)", "apache (apache)", "app (apache)"],
    "HAProxy → Nginx → Gunicorn, every log as JSON": [
        f"{role} (nginx {JSON_LOGS})" for role in ("haproxy", "nginx", "app")
    ],
    "Gunicorn, no metrics": ["no metrics"],
    "Granian": ["granian"],
}
# The chains again, with every connection kept alive (KEEP_ALIVE); and
# with the page cache on, for anonymous readers and for a logged-in one.
for chain, web_server in zip(report.CHAINS, ("nginx", "apache"), strict=True):
    PAGE[chain + report.KEPT_ALIVE] = [
        f"{role} ({web_server} kept alive)" for role in ("haproxy", web_server, "app")
    ]
for chain, web_server in zip(report.CHAINS, ("nginx", "apache"), strict=True):
    PAGE[chain + report.CACHED] = [
        f"{role} ({web_server} {CACHE_STACK})" for role in ("haproxy", web_server, "app")
    ]
PAGE[report.CHAINS[0] + report.CACHED + report.LOGGED_IN] = PAGE[report.CHAINS[0] + report.CACHED]
STATIC = {
    "Nginx": ["nginx"],
    "Apache": ["apache (apache)"],
    "HAProxy → Nginx": ["haproxy", "nginx"],
    "Gunicorn + WhiteNoise": ["whitenoise"],
}


# The app as the stack runs it but for its metrics (measure_layers).
APP_VARIANTS = ("no metrics",)


def role(server):
    """The report's column for a server: its role on the path."""
    name = server.partition(" (")[0]
    return "app" if name in ("granian", "whitenoise", *APP_VARIANTS) else name


def contenders(servers, app_metrics, reader):
    """The post list's contenders (the database is on every path), and the
    stylesheet's. `reader`: the headers of a logged-in reader."""

    def contender(name, path, on_path):
        measured = {role(each): servers[each] for each in on_path}
        headers = reader if name.endswith(report.LOGGED_IN) else {}
        metrics = next((app_metrics[each] for each in on_path if each in app_metrics), None)
        return Contender(name, address(servers[on_path[0]], path), measured, headers, metrics)

    css = stylesheet(address(servers["app"]))
    return (
        [contender(name, "/", [*on_path, "database"]) for name, on_path in PAGE.items()],
        [contender(name, css, on_path) for name, on_path in STATIC.items()],
    )


def measure(results, servers, nginx_stack, app_metrics, reader):
    plan = results.plan
    page, static = contenders(servers, app_metrics, reader)
    for contender in page + static:  # warm up: templates, connections, caches
        wrk(contender.url, PAGE_CONNECTIONS, 1, contender.headers)
    # Every server once; Apache from its own stack; the app's variants are the app.
    memory = {
        name.partition(" (")[0]: server
        for name, server in servers.items()
        if (" (" not in name or name == "apache (apache)") and name not in APP_VARIANTS
    }
    results.memory_idle = {name: memory_mib(server) for name, server in memory.items()}
    temp_tables = disk_temp_tables(servers["database"])
    with PeakMemory(memory) as peak:
        results.page = rounds(page, PAGE_CONNECTIONS, plan.seconds, plan.rounds)
    results.memory_peak = peak.peak
    answers = sum(run.answers for runs in results.page.values() for run in runs)
    created = disk_temp_tables(servers["database"]) - temp_tables
    results.disk_temp_tables_per_answer = created / answers
    results.static = rounds(static, PAGE_CONNECTIONS, plan.seconds, plan.rounds)
    chain = page[3]  # HAProxy → Nginx → Gunicorn
    for connections in SWEEP:
        before = sum(CHECKS.times_marked_down(nginx_stack).values())
        runs = rounds([chain], connections, plan.sweep_seconds, plan.sweep_rounds)[chain.name]
        results.sweep[connections] = runs
        after = sum(CHECKS.times_marked_down(nginx_stack).values())
        results.marked_down[connections] = after - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="1 s per contender")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    # wrk's 1,024 connections, and the servers' ends of them.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))
    with tempfile.TemporaryDirectory(prefix="django-ha-bench-") as workdir:
        results = run(SMOKE if args.smoke else FULL, Path(workdir))
    args.results.mkdir(parents=True, exist_ok=True)
    for path in report.write(results, args.results):
        print(path)


if __name__ == "__main__":
    main()
