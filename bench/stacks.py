"""The benchmark's stacks: a baked project as Compose runs it, on the private
engine, with the contenders beside the project's own services.

One stack per web server, each with its own MySQL. The project's own chain,
haproxy -> <web server> -> app, is the plain contender; copies of it under
other names in the same Compose project are the others (CHAINS). Beside the
Nginx stack's app run Granian, Gunicorn with WhiteNoise and Gunicorn without
its metrics (APP_CONTENDERS), from one bench image FROM the app's
(bench/Dockerfile). Each stack also runs a client from that image, which
runs wrk on the stack's own networks: from this machine, docker-proxy would
carry every request, and its CPU time is in no container's cgroup.

Every contender runs one instance: the layers are compared per instance.
What each service spends, and holds, comes from its container's cgroup.
"""

import contextlib
import copy
import json
import os
import shutil
from pathlib import Path

import yaml

from harness.compose import ComposeProject
from harness.template import client_limits

BENCH = Path(__file__).resolve().parent
CLIENT = "bench-client"
# Limits per client no wrk run reaches: wrk is one client, from one address.
UNLIMITED = dict.fromkeys(client_limits(), "1000000")
# The app renders every answer (the web servers' page cache is off), and
# every server logs text, the entrypoints' default.
UNCACHED = {"DJANGO_PAGE_CACHE_SECONDS": "0"}
TEXT_LOGS = {"LOG_FORMAT": "text"}
# Each chain: (every server's settings, the app's). "" is the project's own
# services; the others are copies named <service>-<chain>.
CHAINS = {
    "": (TEXT_LOGS, UNCACHED),
    # Built from configs that keep every connection alive (KEEP_ALIVE).
    "kept-alive": (TEXT_LOGS, UNCACHED),
    # The page cache on, as shipped.
    "cached": (TEXT_LOGS, {}),
    # Every server logs JSON, as shipped: on the Nginx stack only.
    "json": ({}, UNCACHED),
}
NGINX_ONLY = ("json",)

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


def kept_alive(project, workdir):
    """A copy of a baked project, its connections kept alive at every hop."""
    copied = workdir / "kept-alive" / project.name
    shutil.copytree(project, copied)
    for name, changes in KEEP_ALIVE.items():
        path = copied / name
        if not path.exists():  # a web server this project does not have
            continue
        text = path.read_text()
        for old, new in changes:
            if old not in text:
                raise RuntimeError(f"{name} no longer has {old!r}: update KEEP_ALIVE")
            text = text.replace(old, new)
        path.write_text(text)
    return copied


def chain_copy(model, names, suffix, built_from=None):
    """Copies of the services `names`, each named <name>-<suffix> and sending
    to the next one's copy, published nowhere, one instance each; built
    from `built_from`'s folders, if given."""
    renamed = {name: f"{name}-{suffix}" for name in names}
    services = {}
    for name in names:
        service = copy.deepcopy(model["services"][name])
        service.pop("ports", None)
        service["deploy"]["replicas"] = 1
        # The next hop (NGINX_HOST, BACKEND_HOST) and what it waits for.
        service["environment"] = {
            key: renamed.get(value, value) for key, value in service["environment"].items()
        }
        service["depends_on"] = {
            renamed.get(key, key): value for key, value in service["depends_on"].items()
        }
        if built_from:
            folder = Path(service["build"]["context"]).name
            service["build"]["context"] = str(built_from / folder)
        services[renamed[name]] = service
    return services


def app_contenders(model, project_name):
    """Granian, Gunicorn with WhiteNoise and Gunicorn without the metrics,
    each a copy of the app from the bench image, with its workers and threads."""
    app = model["services"]["app"]
    workers = app["environment"]["GUNICORN_WORKERS"]
    threads = app["environment"]["GUNICORN_THREADS"]
    gunicorn = ["gunicorn", "--config", "gunicorn.conf.py"]
    # Every address of its container, as Gunicorn's bind in the image.
    everywhere = "0.0.0.0"  # noqa: S104
    changes = {
        "granian": {"command": [
            "granian", "--interface", "wsgi", "--host", everywhere, "--port", "8000",
            "--workers", workers, "--blocking-threads", threads, "--access-log",
            f"{project_name}.wsgi:application",
        ]},
        "whitenoise": {"command": [*gunicorn, "whitenoise_app:application"]},
        "no-metrics": {"environment": {
            "DJANGO_SETTINGS_MODULE": "no_metrics_settings",
            "BENCH_PROJECT_SETTINGS": f"{project_name}.settings",
        }},
    }  # fmt: skip
    services = {}
    for name, change in changes.items():
        (service,) = chain_copy(model, ["app"], name).values()
        service["build"] = bench_build()
        service["environment"] |= UNCACHED | TEXT_LOGS | change.get("environment", {})
        if "command" in change:
            service["command"] = change["command"]
        services[name] = service
    return services


def bench_build():
    """The bench image: FROM the app's, with the contenders and wrk."""
    return {
        "context": str(BENCH),
        "dockerfile": "Dockerfile",
        "additional_contexts": {"app": "service:app"},
        "network": "host",
    }


def contenders_file(model, web_server, kept_alive_project):
    """The Compose file the benchmark adds on top of the project's: its own
    chain's settings, the copies of the chain, the app contenders (on the
    Nginx stack) and the client."""
    names = ["haproxy", web_server, "app"]
    services = {}
    for suffix, (settings, app_settings) in CHAINS.items():
        if suffix in NGINX_ONLY and web_server != "nginx":
            continue
        if suffix:
            built_from = kept_alive_project if suffix == "kept-alive" else None
            chain = chain_copy(model, names, suffix, built_from)
        else:  # the project's own services: only what changes
            chain = {name: {"environment": {}, "deploy": {"replicas": 1}} for name in names}
        for name, service in chain.items():
            service["environment"] |= settings
            if name.startswith("app"):
                service["environment"] |= app_settings
            if name.startswith("haproxy"):
                service["environment"] |= UNLIMITED
            if suffix:  # as the project's own get it from the harness's override
                service["build"]["network"] = "host"
        services |= chain
    if web_server == "nginx":
        settings = model["services"]["app"]["environment"]["DJANGO_SETTINGS_MODULE"]
        services |= app_contenders(model, settings.rpartition(".")[0])
    services[CLIENT] = {
        "build": bench_build(),
        "entrypoint": ["sleep"],
        "command": ["infinity"],
        # Nothing to stop gracefully (and sleep, as PID 1, ignores SIGTERM).
        "stop_signal": "SIGKILL",
        # Healthy once running: `up --wait` waits for every service's health.
        "healthcheck": {"test": ["CMD", "true"], "interval": "1s"},
        "networks": ["edge", "app", "monitoring"],
    }
    # As the harness's override gives the project's own (harness/compose.py).
    for name in services.keys() - set(names):
        services[name]["dns"] = ["127.0.0.1"]
    return {"services": services}


def cgroup(pid, controller):
    """The folder of `pid`'s cgroup for `controller` (cgroup v1), or of its
    one cgroup (v2)."""
    unified = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path("/sys/fs/cgroup", controller, path.lstrip("/"))
        if number == "0":
            unified = path
    return Path("/sys/fs/cgroup", unified.lstrip("/"))


def read_first(folder, *names):
    """The number in the first of the files `names` (v1's name, v2's) that exists."""
    path = next(folder / name for name in names if (folder / name).exists())
    return path.read_text()


class Service:
    """A service of a stack (one container), measured by its container's cgroup."""

    def __init__(self, stack, name):
        self.stack, self.name = stack, name
        self.pid = stack.pids[name]

    def cpu_seconds(self):
        text = read_first(cgroup(self.pid, "cpuacct"), "cpuacct.usage", "cpu.stat")
        if text.startswith("usage_usec"):  # v2's cpu.stat
            return int(text.split()[1]) / 1e6
        return int(text) / 1e9

    def memory_mib(self, peak=False):
        """What its container holds now (with the page cache it caused), or
        at most since it started."""
        names = (
            ("memory.max_usage_in_bytes", "memory.peak")
            if peak
            else ("memory.usage_in_bytes", "memory.current")
        )
        return int(read_first(cgroup(self.pid, "memory"), *names)) / 2**20


# What the client runs to read a page: urllib, as the app's image has no curl.
FETCH = (
    "import sys, urllib.request as u; "
    "r = u.Request(sys.argv[1], headers={'Host': 'localhost'}); "
    "sys.stdout.write(u.urlopen(r, timeout=10).read().decode())"
)


class BenchStack:
    """A baked project up on the engine, with the benchmark's contenders."""

    def __init__(self, engine, project, web_server, workdir):
        self.engine, self.web_server = engine, web_server
        model = json.loads(
            engine.docker("compose", "config", "--format", "json", cwd=project).stdout
        )
        extra = contenders_file(model, web_server, kept_alive(project, workdir))
        self.names = set(model["services"]) | set(extra["services"])
        self.project = ComposeProject(engine, project, extra=yaml.safe_dump(extra, sort_keys=False))

    def __enter__(self):
        self.project.__enter__()
        try:
            # Each service's one container, and its main process (for its cgroup).
            listed = self.project.compose("ps", "--format", "json").stdout.splitlines()
            self.containers = {row["Service"]: row["ID"] for row in map(json.loads, listed)}
            found = self.engine.docker(
                "inspect", "--format", "{{.State.Pid}}", *self.containers.values()
            ).stdout.split()
            self.pids = dict(zip(self.containers, map(int, found), strict=True))
        except BaseException:
            self.project.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        self.project.__exit__(*exc_info)

    def exec(self, service, *command):
        """What `command` printed, run in `service`'s container. `docker exec`:
        `docker compose exec` would read the project's files each time."""
        return self.engine.docker("exec", self.containers[service], *command, timeout=300).stdout

    def client(self, *command):
        """What `command` printed, run in the stack's client."""
        return self.exec(CLIENT, *command)

    def fetch(self, url):
        """The body of `url`, asked for by the client as wrk asks (Host: localhost)."""
        return self.client("python", "-c", FETCH, url)

    def django(self, code):
        """What Python `code` printed, run in the app with Django set up."""
        return self.exec("app", "python", "manage.py", "shell", "-v", "0", "-c", code)

    def has(self, name):
        return name in self.names

    def service(self, name):
        return Service(self, name)


@contextlib.contextmanager
def driven(project):
    """The baked checks' own Compose driver's environment, pointed at `project`
    (a ComposeProject), as a user runs the checks from the project's folder."""
    saved, folder = dict(os.environ), os.getcwd()
    os.environ.update(project.engine.env(**project.env()))
    os.chdir(project.project)
    try:
        yield
    finally:
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(saved)
