"""What each layer of the stack costs and buys, measured side by side.

    bench/run            # about 20 minutes: bench/results/<date>-<machine>.md and .png
    bench/run --smoke    # 1 s per contender, one failover: proves the command still works

It bakes the template once per web server, with tls=none (the proxy layers
are compared, not TLS), and brings each up with Compose on the private
engine, as users run it, with the contenders beside its own services
(bench/stacks.py): its own chain with the page cache off (the app renders
every answer, as the layers are compared), a copy with every connection kept
alive (KEEP_ALIVE), a copy with the page cache on, as shipped, for anonymous
readers and a logged-in one; on the Nginx stack a copy whose every server
logs JSON, and the app under Granian, with WhiteNoise and without its
metrics. It seeds the post list and drives every contender with wrk, from a
client on the stack's own networks. The contenders run round by round,
interleaved, so a noisy neighbour on a shared machine hits all of them
alike; each figure is the median over the rounds, with its spread (lowest to
highest round). Requests per second move with the machine's load. The CPU
time each service spends per answer, read from its container's cgroup,
holds steady, and is what the layers are compared by.

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
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from bench.stacks import BenchStack, driven
from harness import standins
from harness.compose import ComposeProject
from harness.engine import DockerEngine
from harness.template import PROXY_CHOICES, load_stack_checks

ROOT = Path(__file__).resolve().parent.parent

CHECKS = load_stack_checks()
# Every page of the post list full, each post with comments to count.
POSTS, COMMENTS_PER_POST = 200, 5
SEED = f"""
from django.contrib.auth import get_user_model
from board.models import Comment, Post
author = get_user_model().objects.create_user("bench", password="bench-password-1")
Post.objects.bulk_create(
    Post(author=author, title=f"Post {{n}}", content="Lorem ipsum dolor sit amet. " * 40)
    for n in range({POSTS})
)
# Read back: MySQL tells bulk_create no primary keys.
posts = Post.objects.filter(author=author)
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
    # Every contender 1 s before the rounds: templates, connections, caches.
    warm_up: bool = True


# Overload is a run of its own (the concurrency runs), not a failure to survive.
FAILOVER = [each for each in CHECKS.FAILOVER if each is not CHECKS.failover_under_overload]
FULL = Plan(5, 5, 15, 2, FAILOVER, list(PROXY_CHOICES), CHECKS.ABUSE, 10)
# The first scenario (a web server killed: seconds to DOWN), on the stack
# with both, and the quickest attack; no warm-up: its figures mean nothing.
SMOKE = Plan(1, 1, 1, 1, FAILOVER[:1], list(PROXY_CHOICES)[:1], CHECKS.ABUSE[-1:], 2, warm_up=False)
# Each copy of a chain (bench/stacks.py's CHAINS) by how the servers' names
# say it: "app (nginx kept alive)".
CHAIN_NAMES = {"kept-alive": "kept alive", "cached": "cached", "json": "JSON logs"}
# The app contenders beside the Nginx stack's app (bench/stacks.py).
APP_CONTENDERS = ("granian", "whitenoise", "no-metrics")
# The port each role listens on, in its container (the compose file's).
PORTS = {"haproxy": 8080, "nginx": 8080, "apache": 8080}
APP_PORT, APP_METRICS_PORT = 8000, 9100


@dataclass
class Contender:
    name: str
    url: str
    services: dict  # role -> its stacks.Service, for each one on the request's path
    headers: dict = field(default_factory=dict)  # what wrk sends with each request
    # Where the app counts the post lists it rendered, if it is a stack's.
    app_metrics: str | None = None

    @property
    def client(self):
        """The stack whose client drives it: the first service's on the path."""
        return next(iter(self.services.values())).stack


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


def wrk(stack, url, connections, seconds, headers=None):
    """(requests/s, p50 ms, p99 ms, errors, answers) of one wrk run from `stack`'s client."""
    # The timeout is past HAProxy's queue timeout (10 s): a queued request
    # counts as answered, or as refused with a 503, never as a client timeout.
    command = ["wrk", "--latency", f"-t{min(2, connections)}", f"-c{connections}"]
    command += [f"-d{seconds}s", "--timeout", "15s", "-H", "Host: localhost"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    out = stack.client(*command, url)
    errors = sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", out)))
    errors += sum(map(int, re.findall(r"Non-2xx or 3xx responses: (\d+)", out)))
    answers = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps, latency_ms(out, "50"), latency_ms(out, "99"), errors, answers


def latency_ms(wrk_output, percentile):
    value, unit = re.search(rf"\b{percentile}%\s+([\d.]+)(us|ms|s)\b", wrk_output).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


# The app's count of the post lists it answered (django-prometheus).
POST_LISTS = re.compile(
    r"^django_http_requests_latency_seconds_by_view_method_count"
    r'\{[^}]*view="board:post_list"[^}]*\} (\S+)$',
    re.MULTILINE,
)


def post_lists_rendered(stack, metrics_url):
    """How many post lists the app has rendered (its own metrics)."""
    return sum(float(value) for value in POST_LISTS.findall(stack.fetch(metrics_url)))


def run_once(contender, connections, seconds):
    client = contender.client
    before = {name: service.cpu_seconds() for name, service in contender.services.items()}
    if contender.app_metrics:
        rendered = post_lists_rendered(client, contender.app_metrics)
    measured = wrk(client, contender.url, connections, seconds, contender.headers)
    rps, p50, p99, errors, answers = measured
    cpu_ms = {
        name: (service.cpu_seconds() - before[name]) * 1000 / max(answers, 1)
        for name, service in contender.services.items()
    }
    by_app = None
    if contender.app_metrics:
        after = post_lists_rendered(client, contender.app_metrics)
        by_app = (after - rendered) / max(answers, 1)
    return Run(rps, p50, p99, errors, answers, cpu_ms, by_app)


def rounds(contenders, connections, seconds, count):
    """{contender: [Run]}, every contender once per round, each round starting
    one further along, so that none always runs first."""
    runs = {contender.name: [] for contender in contenders}
    for index in range(count):
        for contender in contenders[index:] + contenders[:index]:
            runs[contender.name].append(run_once(contender, connections, seconds))
    return runs


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
DISK_TEMP_TABLES = """
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SHOW GLOBAL STATUS LIKE 'Created_tmp_disk_tables'")
    print(cursor.fetchone()[1])
"""


def logged_in(stack):
    """The Cookie header of a logged-in reader of `stack`."""
    return {"Cookie": f"sessionid={stack.django(LOG_IN).split()[-1]}"}


def disk_temp_tables(stacks):
    return sum(int(stack.django(DISK_TEMP_TABLES)) for stack in stacks.values())


def stylesheet(stack):
    """The board's stylesheet, as the post list links it (a hashed name)."""
    page = stack.fetch(f"http://app:{APP_PORT}/")
    return re.search(r'href="(/static/[^"]+\.css)"', page).group(1)


def machine_name():
    """The CPU model and core count, as a file name."""
    model = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2]
            break
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"{os.cpu_count()}cpu-{slug}"


def run(plan, workdir, engine):
    """The results of `plan`, on `engine` (the stand-ins built)."""
    results = Results(machine_name(), datetime.date.today().isoformat(), plan)
    projects, as_baked = {}, {}
    for web_server, other in (("nginx", "apache"), ("apache", "nginx")):
        # A name of its own: both stacks run at once, each its own Compose project.
        answers = {f"use_{web_server}": "yes", f"use_{other}": "no", "tls": "none"}
        answers["project_name"] = f"Bench {web_server}"
        projects[web_server], took = bake(workdir / web_server, **answers, **standins.ANSWERS)
        results.bake_seconds.append(took)
    # Every proxy choice with the other answers as they come (the first: all of them).
    for choice, answers in PROXY_CHOICES.items():
        yes_no = {name: "yes" if chosen else "no" for name, chosen in answers.items()}
        folder = workdir / "as-baked" / choice
        as_baked[choice], took = bake(folder, **yes_no, **standins.ANSWERS)
        results.bake_seconds.append(took)

    stacks = {
        web_server: BenchStack(engine, project, web_server, workdir)
        for web_server, project in projects.items()
    }
    with contextlib.ExitStack() as started:
        # Both at once: each mostly waits for its services' health checks.
        with ThreadPoolExecutor() as pool:
            list(pool.map(started.enter_context, stacks.values()))
        measure_layers(results, stacks)
    for choice in plan.failover_choices:
        with ComposeProject(engine, as_baked[choice]) as project, driven(project):
            stack = CHECKS.ComposeStack()
            results.failover[choice] = failover(stack, plan.failover)
            if choice == plan.failover_choices[0]:
                results.under_attack = under_attack(stack, plan)
    return results


def label(role, chain):
    """A service's name in the tables: its role and the chain it is in,
    "app (apache)", "haproxy (nginx kept alive)"; the Nginx stack's own
    chain goes by role alone."""
    return role if chain == "nginx" else f"{role} ({chain})"


def servers_of(stacks):
    """Each service of the stacks by its label."""
    servers = {}
    for web_server, stack in stacks.items():
        chains = {"": web_server} | {
            suffix: f"{web_server} {name}"
            for suffix, name in CHAIN_NAMES.items()
            if stack.has(f"app-{suffix}")
        }
        for suffix, chain in chains.items():
            for role in ("haproxy", web_server, "app"):
                servers[label(role, chain)] = stack.service(f"{role}-{suffix}" if suffix else role)
        servers[label("database", web_server)] = stack.service("db")
    for name in APP_CONTENDERS:
        servers[name.replace("-", " ")] = stacks["nginx"].service(name)
    return servers


def measure_layers(results, stacks):
    """The page, stylesheet, concurrency and memory figures, on one stack per
    web server (bench/stacks.py)."""
    for stack in stacks.values():
        stack.django(SEED)
    servers = servers_of(stacks)
    reader = logged_in(stacks["nginx"])
    with driven(stacks["nginx"].project):
        measure(results, servers, CHECKS.ComposeStack(), stacks, reader)


def failover(stack, scenarios):
    """{scenario: its figures}, each from a healthy stack, as the checks run them.
    A guarantee that does not hold is reported, not raised: the other
    scenarios still run."""
    figures = {}
    for scenario in scenarios:
        CHECKS.seconds_until_all_up(stack)
        try:
            figures[scenario.__name__] = scenario(stack)
        except AssertionError as failure:
            figures[scenario.__name__] = {"FAILED": str(failure).splitlines()[0]}
    return figures


def under_attack(stack, plan):
    """{attack: its figures}: first the honest reader alone, then each attack
    while it reads. A guarantee that does not hold is reported, not raised."""
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


def address(service, path="/"):
    """`path` of a service, as the stack's client reaches it."""
    return f"http://{service.name}:{PORTS.get(service.name.partition('-')[0], APP_PORT)}{path}"


# Each contender: the servers on a request's path, the first one taking it.
PAGE = {
    "Gunicorn": ["app"],
    "Nginx → Gunicorn": ["nginx", "app"],
    "Apache → Gunicorn": ["apache (apache)", "app (apache)"],
    "HAProxy → Nginx → Gunicorn": ["haproxy", "nginx", "app"],
    "HAProxy → Apache → Gunicorn": ["haproxy (apache)", "apache (apache)", "app (apache)"],
    "HAProxy → Nginx → Gunicorn, every log as JSON": [
        f"{role} (nginx {CHAIN_NAMES['json']})" for role in ("haproxy", "nginx", "app")
    ],
    "Gunicorn, no metrics": ["no metrics"],
    "Granian": ["granian"],
}
# The chains again, with every connection kept alive (KEEP_ALIVE); and
# with the page cache on, for anonymous readers and for a logged-in one.
for chain, web_server in zip(report.CHAINS, ("nginx", "apache"), strict=True):
    PAGE[chain + report.KEPT_ALIVE] = [
        f"{role} ({web_server} {CHAIN_NAMES['kept-alive']})"
        for role in ("haproxy", web_server, "app")
    ]
for chain, web_server in zip(report.CHAINS, ("nginx", "apache"), strict=True):
    PAGE[chain + report.CACHED] = [
        f"{role} ({web_server} {CHAIN_NAMES['cached']})" for role in ("haproxy", web_server, "app")
    ]
PAGE[report.CHAINS[0] + report.CACHED + report.LOGGED_IN] = PAGE[report.CHAINS[0] + report.CACHED]
STATIC = {
    "Nginx": ["nginx"],
    "Apache": ["apache (apache)"],
    "HAProxy → Nginx": ["haproxy", "nginx"],
    "Gunicorn + WhiteNoise": ["whitenoise"],
}


# The app as the stack runs it but for its metrics (bench/stacks.py).
APP_VARIANTS = ("no metrics",)


def role(server):
    """The report's column for a server: its role on the path."""
    name = server.partition(" (")[0]
    return "app" if name in ("granian", "whitenoise", *APP_VARIANTS) else name


def metrics_url(service):
    """Where an app counts what it rendered (django-prometheus), if it does."""
    if not service.name.startswith("app"):  # Granian, WhiteNoise, no metrics
        return None
    return f"http://{service.name}:{APP_METRICS_PORT}/metrics"


def contenders(servers, reader):
    """The post list's contenders, with their stack's database on every
    path, and the stylesheet's. `reader`: the headers of a logged-in reader."""

    def contender(name, path, on_path):
        measured = {role(each): servers[each] for each in on_path}
        headers = reader if name.endswith(report.LOGGED_IN) else {}
        metrics = next(filter(None, map(metrics_url, measured.values())), None)
        return Contender(name, address(servers[on_path[0]], path), measured, headers, metrics)

    def database(on_path):
        return label("database", servers[on_path[0]].stack.web_server)

    css = stylesheet(servers["app"].stack)
    return (
        [contender(name, "/", [*on_path, database(on_path)]) for name, on_path in PAGE.items()],
        [contender(name, css, on_path) for name, on_path in STATIC.items()],
    )


def measure(results, servers, nginx_stack, stacks, reader):
    """`nginx_stack`: the checks' driver of the Nginx stack, whose HAProxy
    the concurrency runs count DOWNs in."""
    plan = results.plan
    page, static = contenders(servers, reader)
    for contender in (page + static) * plan.warm_up:
        wrk(contender.client, contender.url, PAGE_CONNECTIONS, 1, contender.headers)
    # Every server once; Apache from its own stack; the app's variants are the app.
    memory = {
        name.partition(" (")[0]: server
        for name, server in servers.items()
        if (" (" not in name or name == "apache (apache)") and name not in APP_VARIANTS
    }
    results.memory_idle = {name: server.memory_mib() for name, server in memory.items()}
    temp_tables = disk_temp_tables(stacks)
    results.page = rounds(page, PAGE_CONNECTIONS, plan.seconds, plan.rounds)
    results.memory_peak = {name: server.memory_mib(peak=True) for name, server in memory.items()}
    answers = sum(run.answers for runs in results.page.values() for run in runs)
    created = disk_temp_tables(stacks) - temp_tables
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
    with (
        tempfile.TemporaryDirectory(prefix="django-ha-bench-") as workdir,
        DockerEngine() as engine,
    ):
        standins.build(engine)
        results = run(SMOKE if args.smoke else FULL, Path(workdir), engine)
    args.results.mkdir(parents=True, exist_ok=True)
    for path in report.write(results, args.results):
        print(path)


if __name__ == "__main__":
    main()
