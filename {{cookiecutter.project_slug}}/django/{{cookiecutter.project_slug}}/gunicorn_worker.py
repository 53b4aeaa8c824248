"""A Gunicorn worker that lets no request be dropped when a replica stops.

Why: on SIGTERM (docker stop, a deploy, a scale-down) Gunicorn's gthread
worker stops accepting connections but keeps its listening socket open
until its last request is done, up to the graceful timeout. Connections
that arrive meanwhile wait in the kernel's queue and are reset when the
socket finally closes. The web server in front has already sent its request
on such a connection, so it may not send a POST again: the POST fails.

This worker, when it stops, first takes every connection already waiting,
then closes its listening sockets at once. A connection that arrives after
that is refused, which the web servers retry on another replica for every
method, since nothing was sent. Requests in flight finish as before.

The last look at the queue and the close must follow each other at once: a
connection queued between them is reset. select() and accept() let go of
Python's GIL, and the worker's busy request threads may then keep it for
tens of milliseconds before this thread gets it back. So the last look asks
the kernel for the queue's length (`queued`), which keeps the GIL, and the
close follows within microseconds.

gunicorn.conf.py names it as the worker class. It relies on Gunicorn
internals (`set_accept_enabled`, `sockets`, `accept`), so gunicorn is pinned
in requirements.txt and tests/test_gunicorn_worker.py stops a real server
under load against the installed version.
"""

import select
import socket
import struct
import sys

from gunicorn.workers.gthread import ThreadWorker

# struct tcp_info: for a listening socket, tcpi_unacked (after eight bytes of
# state and flags and four 32-bit fields) is the accept queue's length.
TCP_INFO_UNACKED = 24


def queued(listener):
    """How many connections wait in `listener`'s accept queue: on Linux, the
    kernel's count (TCP_INFO, which Python asks for without releasing the
    GIL); elsewhere (where struct tcp_info differs, if it exists) and for unix
    sockets, whether any waits (select)."""
    if sys.platform == "linux" and listener.family in (socket.AF_INET, socket.AF_INET6):
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_UNACKED + 4)
        return struct.unpack_from("I", info, TCP_INFO_UNACKED)[0]
    return len(select.select([listener], [], [], 0)[0])


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # a pause because the worker is full, not a stop
        for listener in self.sockets:
            while queued(listener):
                self.accept(listener)
            listener.close()
