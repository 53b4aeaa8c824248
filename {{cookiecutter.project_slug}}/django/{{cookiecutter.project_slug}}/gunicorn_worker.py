"""A Gunicorn worker, and a master's stop, that let no request be dropped
when a replica stops.

Why: on SIGTERM (docker stop, a deploy, a scale-down) Gunicorn's gthread
worker stops accepting connections but keeps its listening socket open
until its last request is done, up to the graceful timeout. Connections
that arrive meanwhile wait in the kernel's queue and are reset when the
socket finally closes. The web server in front has already sent its request
on such a connection, so it may not send a POST again: the POST fails.

So a stop goes in three steps:

1. The master, before it closes its copy of the listening sockets and tells
   the workers to stop, makes the kernel drop new handshakes on them
   (`stop_listening_first`). Checking the queue and closing the socket are
   two steps, and a busy worker may wait for the CPU or the GIL between
   them for tens of milliseconds; without this, a connection that arrives
   then is queued and reset.
2. Each worker takes every connection already waiting, then closes its
   listening sockets at once (`DrainingThreadWorker`).
3. A client whose handshake was dropped tries again a second later and is
   refused by then (or, in a container already gone, times out). The web
   servers send such a request to another replica for every method, since
   nothing was sent. Requests in flight finish as before.

gunicorn.conf.py names the worker class and installs step 1 from its
`on_starting` hook. Both rely on Gunicorn internals (`set_accept_enabled`,
`sockets`, `accept`; the arbiter's `stop` and `LISTENERS`), so gunicorn is
pinned in requirements.txt and tests/test_gunicorn_worker.py stops a real
server under load against the installed version.
"""

import ctypes
import select
import socket
import struct
import sys

from gunicorn.workers.gthread import ThreadWorker

# Linux's socket option for a classic BPF filter, which Python does not name.
SO_ATTACH_FILTER = 26
# A filter of one instruction, "return 0" (struct sock_filter: code, jt, jf,
# k): every packet that would reach the socket is dropped, so no new
# handshake completes. Connections already queued are not affected.
DROP_EVERY_PACKET = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))


def refuse_new_connections(listener):
    """Let the kernel complete no new connection on a TCP `listener` (Linux;
    elsewhere nothing changes), while the queued ones stay to be accepted."""
    if sys.platform != "linux" or listener.family not in (socket.AF_INET, socket.AF_INET6):
        return
    program = struct.pack("HP", 1, ctypes.addressof(DROP_EVERY_PACKET))  # struct sock_fprog
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)


def stop_listening_first(arbiter):
    """Step 1 above, on every stop of this Gunicorn master (TERM, INT, QUIT)."""
    stop = arbiter.stop

    def stop_without_new_connections(graceful=True):
        # Not when the sockets outlive this master: a re-executed master
        # (USR2) or systemd keeps serving on them. Gunicorn's own test before
        # it unlinks a unix socket.
        if arbiter.reexec_pid == arbiter.master_pid == 0 and not arbiter.systemd:
            for listener in arbiter.LISTENERS:
                refuse_new_connections(listener)
        stop(graceful)

    arbiter.stop = stop_without_new_connections


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # a pause because the worker is full, not a stop
        for listener in self.sockets:
            while select.select([listener], [], [], 0)[0]:
                self.accept(listener)
            listener.close()
