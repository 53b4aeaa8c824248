"""Gunicorn settings, read from the environment.

Started by the image's CMD (`gunicorn --config gunicorn.conf.py`). Every value
can be changed per deployment without rebuilding the image.
"""

import os
import shutil
import tempfile

from environs import Env, validate

from {{ cookiecutter.project_slug }}.gunicorn_response import install as install_one_write_response

# environs refuses a malformed value with a message that names the variable.
env = Env()


def cpu_count():
    # The CPUs this process may run on, which a container's cpuset limits.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


wsgi_app = "{{ cookiecutter.project_slug }}.wsgi:application"


def on_starting(server):
    """Server hook, run once in the master before any worker forks: every
    answer leaves in one write, so a replica that dies mid-answer cannot leave
    a client with headers and half a body (see the module's docstring); and
    the workers' metrics go to files in a fresh folder (below). Loading this
    file changes nothing; only starting a server does."""
    install_one_write_response()
    # Read by prometheus_client when it is first imported, which must be
    # after this line in the master and in every worker. In memory, as the
    # heartbeats below: the only place a read-only container surely may write.
    shared = SHARED_MEMORY if os.path.isdir(SHARED_MEMORY) else None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=shared)


# Metrics (docs/monitoring.md, "Metrics and alerts"): each worker counts its requests
# (django-prometheus) into files in that folder, and the master serves all of
# them summed, on a port of its own that no web server passes requests to.
metrics_bind = env.str("GUNICORN_METRICS_BIND", "0.0.0.0:9100")  # noqa: S104


def when_ready(server):
    """Server hook, in the master once it listens: serve the metrics."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    host, _, port = metrics_bind.rpartition(":")
    start_http_server(int(port), addr=host, registry=registry)


def child_exit(server, worker):
    """Server hook: a worker's gauges go with it; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Server hook, in the master as it exits: its workers' files go too."""
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# All interfaces of the container's own network namespace; Compose publishes
# no port for the app, so only the internal network reaches it.
bind = env.str("GUNICORN_BIND", "0.0.0.0:8000")  # noqa: S104

# Gunicorn's rule of thumb, (2 x CPUs) + 1, capped: every replica runs its own
# workers, and each worker already serves several requests through threads.
workers = env.int("GUNICORN_WORKERS", min(2 * cpu_count() + 1, 8))
# Gunicorn's threaded worker, which when it stops refuses new connections at
# once instead of resetting them later (see the module's docstring).
worker_class = "{{ cookiecutter.project_slug }}.gunicorn_worker.DrainingThreadWorker"
threads = env.int("GUNICORN_THREADS", 4)

# A worker silent for this long (a hung process, not a slow request: the
# threaded worker's requests run on) is killed and replaced.
timeout = env.int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (docker stop), workers get this long to finish their requests.
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Longer than a web server in front keeps an idle connection to a replica
# (4 s at most), so the web server always closes first (docs/limits.md, "Limits,
# timeouts and overload").
keepalive = env.int("GUNICORN_KEEPALIVE", 5)

# Trust X-Forwarded-* from any address: the app port is reachable only on the
# internal network, where the only clients are our own proxies (whose
# addresses change with every restart, so they cannot be listed).
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", "*")

# Heartbeat files in memory: /tmp in a container may sit on a slow overlay
# filesystem, which can make workers look stuck. (Gunicorn creates them with
# unique names and unlinks them at once, so a shared folder is safe.)
SHARED_MEMORY = "/dev/shm"  # noqa: S108
if os.path.isdir(SHARED_MEMORY):
    worker_tmp_dir = SHARED_MEMORY

# The control socket (for gunicornc) is not used; without it nothing is
# written to the home directory, and replicas on one host cannot collide.
control_socket_disable = True

# Request limits, the same at every tier (docs/limits.md, "Limits, timeouts and
# overload"): a request line or header of 8 KiB (Gunicorn's own limit for a
# request line is 4 KiB); 110 headers, HAProxy's 100 and the forwarding
# headers the tiers in front add. The body limit is Django's (settings.py).
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 110

# Logs to stdout/stderr, where Docker collects them. The access line records
# what the proxies forwarded (client address and scheme), the request ID
# HAProxy gave the request, and the time taken.
accesslog = "-"
errorlog = "-"
loglevel = env.str("GUNICORN_LOG_LEVEL", "info")
# LOG_FORMAT=json (as the stack runs): every line a JSON object, named as
# every tier names it ({{ cookiecutter.project_slug }}/logs.py); otherwise the text line below.
# Either way with a password reset link's token masked (logs.py).
logger_class = "{{ cookiecutter.project_slug }}.logs.Logger"
if env.str("LOG_FORMAT", "text", validate=validate.OneOf(["json", "text"])) == "json":
    logger_class = "{{ cookiecutter.project_slug }}.logs.JsonLogger"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" xff="%({x-forwarded-for}i)s" xfp="%({x-forwarded-proto}i)s" rid="%({x-request-id}i)s" %(M)sms'  # noqa: E501
