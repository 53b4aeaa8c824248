"""Gunicorn's answers leave in one write: the headers go with the body.

Why: Gunicorn sends an answer's headers and its body in two separate
writes, and a web server in front may pass the headers on to the client as
soon as they arrive. If a replica dies between the two writes (SIGKILL, the
OOM killer), the client already has the headers and then gets a cut-off body,
and no proxy can retry that.

Sent in one write, an answer is either complete or missing. A missing one
makes the web server answer 502; HAProxy sends that GET again (retry-on 502 in
haproxy.cfg) and the web server passes it to a live replica. Answers that
stream (several body chunks) can still be cut off between chunks: nothing can
prevent that once they started.

gunicorn.conf.py installs this. It relies on Gunicorn internals
(`default_headers`, `headers_sent`, `_emit_body`), so gunicorn is pinned in
requirements.txt and tests/test_gunicorn_response.py checks this against the
installed version.
"""

from gunicorn.http import wsgi


class OneWriteResponse(wsgi.Response):
    """A Gunicorn HTTP/1 response that sends its headers with the first body bytes."""

    held = b""  # headers waiting for the first body bytes

    def write(self, arg):
        if not self.headers_sent:
            self.held = self.header_bytes()
            self.headers_sent = True
        super().write(arg)
        # A body-less answer (HEAD, 304) writes no body: send the headers alone.
        self.send_held(b"")

    def _emit_body(self, data):
        if self.held:
            if self.chunked:
                data = b"%X\r\n%s\r\n" % (len(data), data)
            self.send_held(data)
        else:
            super()._emit_body(data)

    def send_held(self, data):
        if self.held:
            headers, self.held = self.held, b""
            self.sock.sendall(headers + data)

    def header_bytes(self):
        """The status line and headers, as Gunicorn's own send_headers() builds them."""
        lines = self.default_headers()
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        return ("".join(lines) + "\r\n").encode("latin-1")


def install():
    """Make Gunicorn's HTTP/1 workers use OneWriteResponse (HTTP/2 has its own)."""
    wsgi.Response = OneWriteResponse
