"""Hostile clients, each from an address of its own, while an honest one reads."""

import asyncio
import contextlib
import math
import re
import selectors
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import requests

from .clients import PASSWORD, TIMEOUT, Browser, Client, fields, new_client, unique
from .failover import hammer
from .limits import open_socket, plain_error_page
from .stack import Stack

# Each attack comes from one address while an honest reader, from another,
# reads the board five times a second: what the reader got is what counts
# (docs/limits.md, "Limits per client"). They need a stack that gives its clients
# addresses of their own.


def attacker(stack: Stack):
    address = new_client(stack)
    assert address, (
        "the attacks come from an address of their own, apart from the honest "
        "reader's: start the stack with checks/compose.yml (see its comment)"
    )
    return address


def p99(values):
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


class Reader:
    """An honest reader from an address of its own: the post list every
    `every` seconds while it runs, and what each request got."""

    def __init__(self, stack: Stack, every=0.2):
        self.client = Client(stack)
        self.url = stack.url()
        self.every = every
        self.outcomes = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.thread.join()
        self.client.close()

    def run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status = self.client.request("GET", self.url, timeout=TIMEOUT).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            took = time.monotonic() - started
            self.outcomes.append((status, took))
            self.stopping.wait(max(0.0, self.every - took))

    def figures(self):
        served = sum(1 for status, _ in self.outcomes if status == 200)
        slowest = p99(took for _, took in self.outcomes)
        return {
            "honest GETs answered 200": f"{served} of {len(self.outcomes)}",
            "their p99": f"{slowest:.2f} s",
        }

    def assert_served(self, figures, p99_at_most):
        """At least 99% of the reader's GETs answered 200, p99 within the bound."""
        served = sum(1 for status, _ in self.outcomes if status == 200)
        assert self.outcomes and served >= 0.99 * len(self.outcomes), figures
        assert p99(took for _, took in self.outcomes) <= p99_at_most, figures


def answer_status(connection):
    """The status a server answered on `connection` with, or "closed" if none."""
    connection.settimeout(0.5)
    try:
        data = connection.recv(64)
    except TimeoutError:
        return None  # TLS' own records, no answer yet
    except OSError:
        return "closed"
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return int(match.group(1)) if match else "closed"


def slow_bodies(stack: Stack, address, count, seconds):
    """`count` connections from `address`, each a POST that announces a 1 MB
    body and then sends one byte of it every 2 s, for `seconds`: how many
    got each answer (a status, "closed" unanswered, "open" still waiting)."""
    head = (
        f"POST /posts/new/ HTTP/1.1\r\nHost: {urlsplit(stack.url()).netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\n"
    ).encode()
    outcomes, waiting = Counter(), []
    for _ in range(count):
        try:
            connection = open_socket(stack, "haproxy", address)
            connection.sendall(head)
            waiting.append(connection)
        except OSError:
            outcomes["closed"] += 1
    deadline, next_byte = time.monotonic() + seconds, time.monotonic() + 2
    with selectors.DefaultSelector() as selector:
        for connection in waiting:
            selector.register(connection, selectors.EVENT_READ)
        while waiting and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                status = answer_status(key.fileobj)
                if status is not None:
                    outcomes[status] += 1
                    selector.unregister(key.fileobj)
                    waiting.remove(key.fileobj)
                    key.fileobj.close()
            if time.monotonic() >= next_byte:
                next_byte += 2
                for connection in waiting:
                    with contextlib.suppress(OSError):  # closed: its answer is read above
                        connection.sendall(b"a")
    outcomes["open"] += len(waiting)
    for connection in waiting:
        connection.close()
    return outcomes


def under_attack_by_slow_bodies(stack: Stack):
    """200 connections from one address, each a POST that announces a 1 MB
    body and sends one byte of it every 2 s. HAProxy reads a body before it
    asks a web server, so none ever holds one: each gets 408 after 10 s, or,
    past the address's connection limit, 429 or a closed connection."""
    address = attacker(stack)
    with Reader(stack) as reader:
        outcomes = slow_bodies(stack, address, 200, seconds=14)
    figures = {**reader.figures(), "the slow connections got": dict(outcomes)}
    reader.assert_served(figures, p99_at_most=2)
    assert not outcomes["open"], f"HAProxy still waits for a slow body: {figures}"
    clients = {fields(line).get("client") for line in stack.app_logs().splitlines()}
    assert address not in clients, f"a slow body reached the app: {figures}"
    return figures


def under_attack_by_a_flood(stack: Stack):
    """One address asking for the post list back to back on 48 connections:
    past its request rate it gets 429s, which cost the app nothing."""
    address = attacker(stack)
    with Reader(stack) as reader:
        outcomes = asyncio.run(hammer(stack, [address] * 48, seconds=10))
    statuses = Counter(status for status, _ in outcomes)
    figures = {**reader.figures(), "the flood got": dict(statuses)}
    reader.assert_served(figures, p99_at_most=1)
    assert statuses[429], f"the flood was never refused: {figures}"
    return figures


def under_attack_by_password_guessing(stack: Stack):
    """40 wrong passwords for one account from one address: refused with 429
    well before the 20th, first by the app (django-axes counts failures per
    account and address, in the database every replica shares), then also
    by HAProxy; its admin log-in too. The owner, from their own address,
    logs in at once."""
    owner, username = Browser(stack), unique("owner")
    assert owner.sign_up(username).status_code == 302, "the owner could not sign up"
    guesser = Browser(stack, attacker(stack))
    guesser.get("/accounts/login/").raise_for_status()
    answers = [
        guesser.send("/accounts/login/", {"username": username, "password": f"guess-{number}"})
        for number in range(40)
    ]
    statuses = [answer.status_code for answer in answers]
    assert 429 in statuses, f"never refused: {Counter(statuses)}"
    first = statuses.index(429)
    admin = guesser.send("/admin/login/", {"username": username, "password": PASSWORD})
    owner_logs_in = Browser(stack).log_in(username).status_code
    figures = {
        "refused from try": first + 1,
        "first by": "HAProxy" if plain_error_page(429, answers[first].text) else "the app",
        "tries refused": statuses.count(429),
        "the guesser's admin log-in": admin.status_code,
        "the owner's log-in from another address": owner_logs_in,
    }
    assert first < 20 and set(statuses[first:]) == {429}, figures
    assert admin.status_code == 429 and owner_logs_in == 302, figures
    return figures


ABUSE = [
    under_attack_by_slow_bodies,
    under_attack_by_a_flood,
    under_attack_by_password_guessing,
]
