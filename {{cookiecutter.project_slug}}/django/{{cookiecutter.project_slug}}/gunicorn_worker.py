"""A Gunicorn worker that lets no request be dropped when a replica stops.

Why: on SIGTERM (docker stop, a deploy, a scale-down) Gunicorn's gthread
worker stops accepting connections but keeps its listening socket open
until its last request is done, up to the graceful timeout. Connections
that arrive meanwhile wait in the kernel's queue and are reset when the
socket finally closes. The web server in front has already sent its request
on such a connection, so it may not send a POST again: the POST fails.

This worker, when it stops, first tells the kernel to drop every new
connection attempt (a socket filter: a SYN without ACK is dropped, so the
client's kernel tries again a second later, and then finds the socket
closed). Handshakes already under way still complete; the worker takes every
connection that arrives until none has for a moment, then closes its
listening sockets. A connection refused or timed out that way never carried
a request, and the web servers retry it on another replica for every method.
Without the filter, a connection could still arrive between the last look
and the close (a thread holding the GIL makes that moment last
milliseconds), and be reset with its request. Requests in flight finish as
before.

gunicorn.conf.py names it as the worker class. It relies on Gunicorn
internals (`set_accept_enabled`, `sockets`, `accept`), so gunicorn is pinned
in requirements.txt and tests/test_gunicorn_worker.py stops a real server
under load against the installed version.
"""

import ctypes
import select
import socket
import struct

from gunicorn.workers.gthread import ThreadWorker

# Linux's SO_ATTACH_FILTER, and a classic BPF program for it, as
# (code, jump if true, jump if false, operand): keep every TCP segment but
# one that opens a connection.
SO_ATTACH_FILTER = 26
DROP_NEW_CONNECTIONS = [
    (0x30, 0, 0, 13),  # load the TCP header's flags byte
    (0x54, 0, 0, 0x12),  # keep its SYN and ACK bits
    (0x15, 0, 1, 0x02),  # SYN alone (a new connection)?
    (0x06, 0, 0, 0),  # then drop the segment
    (0x06, 0, 0, 0xFFFFFFFF),  # else keep all of it
]
# Handshakes answered before the filter complete well within this.
SETTLE_SECONDS = 0.05


def drop_new_connections(listener):
    program = b"".join(struct.pack("HBBI", *line) for line in DROP_NEW_CONNECTIONS)
    code = ctypes.create_string_buffer(program, len(program))
    # struct sock_fprog: the number of lines, then a pointer to them.
    fprog = struct.pack("HL", len(DROP_NEW_CONNECTIONS), ctypes.addressof(code))
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # a pause because the worker is full, not a stop
        settle = 0  # a Unix socket has no handshake to wait for
        for listener in self.sockets:
            if listener.family in (socket.AF_INET, socket.AF_INET6):
                drop_new_connections(listener)
                settle = SETTLE_SECONDS
        while ready := select.select(self.sockets, [], [], settle)[0]:
            for listener in ready:
                self.accept(listener)
        for listener in self.sockets:
            listener.close()
