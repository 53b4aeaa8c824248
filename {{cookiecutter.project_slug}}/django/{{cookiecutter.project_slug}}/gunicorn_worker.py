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

gunicorn.conf.py names it as the worker class. It relies on Gunicorn
internals (`set_accept_enabled`, `sockets`, `accept`), so gunicorn is pinned
in requirements.txt and tests/test_gunicorn_worker.py stops a real server
under load against the installed version.
"""

import select

from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # a pause because the worker is full, not a stop
        for listener in self.sockets:
            while select.select([listener], [], [], 0)[0]:
                self.accept(listener)
            listener.close()
