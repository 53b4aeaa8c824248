"""Failover under load: what each failure costs the clients."""

import asyncio
import resource
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from .clients import (
    TIMEOUT,
    Browser,
    Load,
    connect,
    fetch,
    new_client,
    saved_post,
    seconds_until_all_up,
    seconds_until_down,
    site_answers,
    times_marked_down,
    tls_context,
    unique,
    wait_until,
)
from .limits import assert_plain_error_page
from .stack import Stack

# Each scenario starts from a healthy stack, leaves one (a replica it
# restarted back in use), returns its figures, and asserts what must hold:
# no acknowledged post is ever lost or saved twice, and GETs never fail where
# another web server or replica can answer.

# Seconds until the web servers use a replica that came back: they try a
# failed one again after 2 s, which one of them counts in whole seconds.
SETTLE = 3.5


def failover_when_a_web_server_is_killed(stack: Stack):
    victim = stack.proxies[0]
    with Load(stack) as load:
        load.run_for(1)
        stack.kill_proxy(victim)
        to_down = seconds_until_down(stack, victim)
        load.run_for(1)
        # One web server in one instance (the benchmark's native stack): nothing
        # is left to serve.
        alone = len(stack.proxies) == 1 and stack.instances(victim) == 1
        outage = fetch(stack) if alone else None
        stack.start_proxy(victim)
        back_up = seconds_until_all_up(stack)
    figures = {f"an instance of {victim} killed, DOWN after": f"{to_down:.2f} s"}
    figures |= {"UP again after restart": f"{back_up:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert to_down <= 3, figures
    if outage is None:
        assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    else:
        # Nothing left to fail over to: a clear page, not a hang or a reset.
        assert outage.status_code == 503 and outage.headers.get("Retry-After"), outage.headers
        request_id = outage.headers["X-Request-ID"]
        assert_plain_error_page((503, outage.text), "no web server left", request_id)
    return figures


def failover_when_app_replicas_stop_and_die(stack: Stack):
    with Load(stack) as load:
        load.run_for(1)
        stack.stop_replica(0)  # graceful: SIGTERM, in-flight requests finish
        load.run_for(1.5)
        stack.start_replica(0)
        load.run_for(SETTLE)
        stack.kill_replica(1)
        load.run_for(1.5)
        stack.start_replica(1)
        load.run_for(SETTLE)
    figures = load.figures()
    assert figures["saved posts lost"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    return figures


def database_away_under_load(stack: Stack, take_away, what):
    """A request that cannot connect waits for the database (a GET 1.5 s,
    asked again by HAProxy; a write up to 8 s), and one that lost it under
    way runs again if it sent only reads, or a new post keyed by its form's
    ID (saved once however often it runs): the database away for a few
    seconds (`take_away()`, named `what`) fails no GET and no POST, and
    loses or doubles no post."""
    with Load(stack) as load:
        load.run_for(1)
        started = time.monotonic()
        take_away()
        back = time.monotonic()
        serving = wait_until(lambda: site_answers(stack), "the site did not serve again", 30, 0.1)
        load.run_for(1)
    figures = {f"{what} took": f"{back - started:.2f} s"}
    figures |= {"serving again after": f"{serving:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    assert figures["posts saved twice"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    assert load.failed_posts == [], f"{figures}: {load.failed_posts}"
    return figures


def failover_when_the_database_restarts(stack: Stack):
    return database_away_under_load(stack, stack.restart_database, "database restart")


def failover_when_the_database_restarts_under_posts_at_their_insert(stack: Stack):
    """Posts that a restart catches at their INSERT (held there by a lock on
    the posts table) cannot know whether MySQL saved them. Each runs again
    (its form's ID makes it store its row once), and is answered as saved."""
    authors = {unique("caught post"): Browser(stack) for _ in range(3)}  # by title
    for browser in authors.values():
        assert browser.sign_up(unique("user")).status_code == 302, "sign-up failed"
    titles = list(authors)
    with stack.lock_posts(2), ThreadPoolExecutor(len(authors)) as pool:
        sent = [pool.submit(authors[title].submit_post, title) for title in titles]
        time.sleep(1)  # each waits at its INSERT
        stack.restart_database()
        answers = [future.result() for future in sent]
    stored = Counter(stack.stored_titles())
    figures = {
        "POSTs answered": ", ".join(str(answer.status_code) for answer in answers),
        "posts stored": ", ".join(str(stored[title]) for title in titles),
    }
    assert all(saved_post(answer) for answer in answers), figures
    assert all(stored[title] == 1 for title in titles), figures
    return figures


def failover_when_a_replica_freezes(stack: Stack):
    """A replica that hangs (frozen, its connections open) costs a GET a few
    seconds: the web servers give up on it after 2 s and send the GET to
    another replica. A POST it held waits for it (up to 10 s), is never
    sent again, and is answered once the replica thaws."""
    with Load(stack) as load:
        load.run_for(1)
        stack.freeze_replica(0)
        try:
            load.run_for(6)
        finally:
            stack.thaw_replica(0)
        load.run_for(1)
    figures = {"slowest GET": f"{load.slowest_get:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    assert figures["posts saved twice"] == 0, figures
    assert load.failed_gets == [], f"{figures}: {load.failed_gets}"
    assert load.failed_posts == [], f"{figures}: {load.failed_posts}"
    assert load.slowest_get <= 5, figures
    return figures


def failover_when_a_post_waits_for_the_database(stack: Stack):
    """A POST is never sent twice, so it may wait longer for its answer than
    a GET: one that waits 4 s for a lock on the posts table (a long
    transaction elsewhere, say) is still saved, once."""
    browser, title = Browser(stack), unique("patient post")
    username = unique("user")
    assert browser.sign_up(username).status_code == 302, "sign-up failed"
    assert browser.log_in(username).status_code == 302, "log-in failed"
    browser.get("/posts/new/").raise_for_status()
    with stack.lock_posts(4):  # the session that holds it, waited for on leaving
        started = time.monotonic()
        response = browser.send("/posts/new/", {"title": title, "content": title})
        waited = time.monotonic() - started
    figures = {"the POST waited": f"{waited:.2f} s", "then got": response.status_code}
    assert waited >= 2, f"the POST did not wait for the lock: {figures}"
    assert saved_post(response), figures
    assert stack.stored_titles().count(title) == 1, "the post was not saved once"
    return figures


def failover_during_a_rolling_restart_of_every_replica(stack: Stack):
    """A deploy's ordinary day: each replica stops gracefully and comes back,
    one at a time. Nothing fails, POSTs included."""
    with Load(stack) as load:
        load.run_for(1)
        for index in range(len(stack.replicas)):
            stack.stop_replica(index)
            stack.start_replica(index)
            load.run_for(SETTLE)
    figures = load.figures()
    assert figures["saved posts lost"] == 0 and figures["posts saved twice"] == 0, figures
    assert load.acknowledged, "no POST went through at all"
    assert load.failed_gets == [] and load.failed_posts == [], figures
    return figures


def failover_while_the_database_is_down(stack: Stack):
    """Pages answer 503 with Retry-After, and the app logs no traceback."""
    tracebacks = stack.app_logs().count("Traceback")
    stack.stop_database()
    try:
        # A page no web server keeps a copy of: the app's own answer.
        outage = fetch(stack, path=f"/?{unique('while-down')}")
    finally:
        stack.start_database()
    serving = wait_until(lambda: site_answers(stack), "the site did not serve again", 60, 0.1)
    figures = {"answer while down": outage.status_code, "serving again after": f"{serving:.2f} s"}
    assert outage.status_code == 503, figures
    assert outage.headers.get("Retry-After", "").isdigit(), outage.headers
    request_id = outage.headers["X-Request-ID"]
    assert_plain_error_page((503, outage.text), "a page while the database is down", request_id)
    assert stack.app_logs().count("Traceback") == tracebacks, "the app logged a traceback"
    return figures


# HAProxy's `timeout queue`: past it, a queued request gets a 503.
QUEUE_TIMEOUT = 10


async def read_answer(reader):
    """One HTTP/1.1 answer: (status, whether the connection stays open)."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = dict(line.lower().partition(":")[::2] for line in lines[1:] if line)
    fields = {name.strip(): value.strip() for name, value in fields.items()}
    if "content-length" in fields:
        await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding") == "chunked":
        size = None
        while size != 0:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
    else:
        await reader.read()
        return int(lines[0].split()[1]), False
    return int(lines[0].split()[1]), fields.get("connection") != "close"


async def hammer(stack: Stack, addresses, seconds):
    """A client connection from each of `addresses`, all at once, each sending
    GET / back to back on one kept-alive connection (a new one when the
    server closes it) for `seconds`: [(status or error, seconds taken)].
    Each carries a session cookie, as a logged-in reader's does: no web
    server answers it from its cache, so it is the app that is overloaded."""
    url = urlsplit(stack.url())
    context = tls_context(stack) if url.scheme == "https" else None
    request = f"GET / HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: sessionid=none\r\n\r\n"
    request = request.encode()
    deadline = time.monotonic() + seconds
    outcomes = []

    async def open_connection(address):
        connection = connect(stack, url.hostname, url.port, address)
        connection.setblocking(False)
        hostname = url.hostname if context else None
        return await asyncio.open_connection(sock=connection, ssl=context, server_hostname=hostname)

    async def client(address):
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(open_connection(address), TIMEOUT)
            except (OSError, TimeoutError) as error:
                outcomes.append((type(error).__name__, time.monotonic() - started))
                return
            try:
                keep_alive = True
                while keep_alive and time.monotonic() < deadline:
                    started = time.monotonic()
                    writer.write(request)
                    answer = read_answer(reader)
                    status, keep_alive = await asyncio.wait_for(answer, QUEUE_TIMEOUT + 20)
                    outcomes.append((status, time.monotonic() - started))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                outcomes.append((type(error).__name__, time.monotonic() - started))
                return
            finally:
                writer.close()

    await asyncio.gather(*(client(address) for address in addresses))
    return outcomes


def many_clients(stack: Stack, connections, per_client=4):
    """One address for each connection: fresh clients with `per_client` connections each."""
    clients = [new_client(stack) for _ in range(connections // per_client)]
    return [address for address in clients for _ in range(per_client)]


def overload(stack: Stack, connections, seconds=4):
    """The site's answers to `connections` at once from many clients (a few
    connections each, as a real crowd opens), on what replicas run."""
    marked_down = times_marked_down(stack)
    outcomes = asyncio.run(hammer(stack, many_clients(stack, connections), seconds))
    statuses = Counter(status for status, _ in outcomes)
    slowest = max(took for _, took in outcomes)
    figures = {"answers": dict(statuses), "slowest": f"{slowest:.2f} s"}
    assert times_marked_down(stack) == marked_down, f"a web server was marked DOWN: {figures}"
    assert set(statuses) <= {200, 503}, f"answers other than 200 and 503: {figures}"
    assert statuses[200], f"nothing was served: {figures}"
    late = [took for status, took in outcomes if status == 503 and took > QUEUE_TIMEOUT + 3]
    assert not late, f"503s after more than the queue timeout: {late[:5]}: {figures}"
    return figures


def failover_under_overload(stack: Stack):
    """256, then 1,024 connections at once, from 64 and 256 clients, on one
    replica: requests queue in
    HAProxy, and are answered, or refused with a 503 once past the queue
    timeout. No web server is ever marked DOWN for being busy."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    others = range(1, len(stack.replicas))
    for index in others:
        stack.stop_replica(index)
    figures = {}
    try:
        for connections in (256, 1024):
            for name, value in overload(stack, connections).items():
                figures[f"{connections} clients: {name}"] = value
    finally:
        for index in others:
            stack.start_replica(index)
    return figures


def failover_when_haproxy_crashes(stack: Stack):
    with Load(stack) as load:
        load.run_for(1.5)
        stack.crash_haproxy()
        returned = wait_until(lambda: site_answers(stack), "HAProxy did not come back", 60, 0.1)
        load.run_for(1.5)
    figures = {"HAProxy crashed, serving again after": f"{returned:.2f} s", **load.figures()}
    assert figures["saved posts lost"] == 0, figures
    return figures


FAILOVER = [
    failover_when_a_web_server_is_killed,
    failover_when_app_replicas_stop_and_die,
    failover_when_a_replica_freezes,
    failover_when_a_post_waits_for_the_database,
    failover_during_a_rolling_restart_of_every_replica,
    failover_when_the_database_restarts,
    failover_when_the_database_restarts_under_posts_at_their_insert,
    failover_while_the_database_is_down,
    failover_under_overload,
    failover_when_haproxy_crashes,
]
