"""Check a running stack from the outside, as its users and its failures see it.

    python checks/check_stack.py              # the request flow, through every published port
    python checks/check_stack.py --failover   # and failover under load (kills containers!)
    python checks/check_stack.py --backups    # and backups restored (destroys the database!)
    python checks/check_stack.py --abuse      # and hostile clients, one at a time

Run it from the project folder against a stack that `docker compose up --wait`
brought up; it finds the published ports through Compose. It signs up users
and writes posts, so point it at a test deployment, never at production. It
plays many clients, each from an address of its own, as HAProxy counts them:
for --failover and --abuse, start the stack with checks/compose.yml (see
"Clients" below). The failover scenarios kill a web server, app replicas and HAProxy, freeze a
replica, hold a POST up with a table lock, restart every replica in turn,
restart the database (also with posts held at their INSERT) and stop it,
with a steady load of GETs and POSTs running, then overload one replica
with up to 1,024 clients at once, and
print what each cost. Killing HAProxy as a crash would (not `docker stop`,
which would switch its restart policy off) needs root or sudo on a Linux
host.

The checks live in stackcheck/, one module per concern: stack.py (what
they ask of a stack), clients.py (the clients, the steady load and what it
counts), flow.py (the request flow and the page cache), limits.py,
https.py, failover.py, abuse.py, backups.py, and compose.py (the Compose
driver). They take any `stack` that answers stack.py's Stack, so other
drivers can run the same checks elsewhere. This file is the command line.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from stackcheck.abuse import ABUSE
from stackcheck.backups import BACKUPS
from stackcheck.clients import logs_time
from stackcheck.compose import COMPOSE_ONLY, ComposeStack
from stackcheck.failover import FAILOVER
from stackcheck.flow import REQUEST_FLOW
from stackcheck.https import HTTPS
from stackcheck.stack import Stack


def chosen_checks(stack: Stack, failover=False, abuse=False, backups=False):
    """The checks for `stack`, with what each option adds."""
    checks = REQUEST_FLOW + HTTPS * stack.tls + COMPOSE_ONLY
    return checks + FAILOVER * failover + ABUSE * abuse + BACKUPS * backups


def run_checks(stack: Stack, checks):
    """Run each check; print what it found; return how many failed. A failed
    check also prints how to see what the services logged while it ran."""
    failed = 0
    for check in checks:
        started, since = time.monotonic(), logs_time()
        try:
            figures = check(stack)
        except Exception as error:  # noqa: BLE001 (report every check, then fail)
            failed += 1
            print(f"FAIL {check.__name__}: {type(error).__name__}: {error}", flush=True)
            window = f"--since {since} --until {logs_time(ahead=1)}"
            print(f"     its logs: docker compose logs --timestamps {window}", flush=True)
            continue
        took = f"({time.monotonic() - started:.1f} s)"
        details = ", ".join(f"{name} {value}" for name, value in (figures or {}).items())
        print(f"ok   {check.__name__} {took}{': ' + details if details else ''}", flush=True)
    return failed


def confirm(options):
    """Name the stack the checks are about to change, and ask (or take --yes).
    Nothing is asked, and nothing done, when no stack runs here."""
    try:
        running = ComposeStack.docker("compose", "ps", "--services", "--status", "running")
        project = json.loads(ComposeStack.docker("compose", "config", "--format", "json"))["name"]
    except RuntimeError as error:
        sys.exit(f"check_stack: run it in the project's folder; {error}".rstrip())
    running = running.split()
    if "haproxy" not in running:
        sys.exit(
            f"check_stack: the stack {project} is not running here; "
            "start it first: docker compose up -d --wait"
        )
    harm = ["signs up users and writes posts"]
    harm += ["kills and restarts containers"] * options.failover
    harm += ["attacks the site"] * options.abuse
    harm += ["destroys and restores the database"] * options.backups
    what = f"this {', '.join(harm)} on the stack {project}"
    if options.yes:
        return
    if not sys.stdin.isatty():
        sys.exit(f"check_stack: {what}; confirm with --yes")
    if input(f"check_stack: {what}. Go on? [y/N] ").strip().lower() not in {"y", "yes"}:
        sys.exit("check_stack: nothing done")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--failover", action="store_true", help="also kill and restart services under load"
    )
    parser.add_argument(
        "--backups",
        action="store_true",
        help="also back up, destroy and restore the database (its data is lost!)",
    )
    parser.add_argument(
        "--abuse", action="store_true", help="also attack the site, one hostile client at a time"
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask first: the checks sign up users and write posts, and the options "
        "above kill containers, attack the site or destroy the database",
    )
    parser.add_argument(
        "--backup-key",
        type=Path,
        default=Path("backup-private-key.pem"),
        help="the backups' private key, which --backups restores with "
        "(default: %(default)s, where the bake wrote it)",
    )
    options = parser.parse_args()
    if not __debug__:
        sys.exit("check_stack: the checks are assertions; run it without python -O")
    if not shutil.which("docker"):
        sys.exit("check_stack: the docker command is not installed")
    if options.backups and not options.backup_key.is_file():
        sys.exit(
            f"check_stack: --backups restores dumps, which needs the backups' private key: "
            f"no file {options.backup_key}; give it with --backup-key FILE"
        )
    confirm(options)
    stack = ComposeStack(backup_key=options.backup_key)
    if (options.failover or options.abuse) and not stack.client_network:
        sys.exit(
            "check_stack: --failover and --abuse play many clients, each from an address of "
            "its own, and HAProxy takes every client of this machine for one (Docker's "
            "gateway). Start the stack with checks/compose.yml, which lets these checks say "
            "whom they speak for: docker compose -f docker-compose.yml -f checks/compose.yml up"
        )
    checks = chosen_checks(stack, options.failover, options.abuse, options.backups)
    failed = run_checks(stack, checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
