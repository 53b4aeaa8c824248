"""HEAD gets a GET's headers and no body from the app itself.

Through Django's own WSGI handler, as Gunicorn calls it: the test client
drops HEAD bodies by itself, so it would hide a body sent here.
"""

from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.http import StreamingHttpResponse

from {{ cookiecutter.project_slug }}.head_requests import HeadWithoutBodyMiddleware


def answer(method, path):
    """The status, headers and body bytes the app hands the server."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "localhost"}
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=dict(headers))

    body = b"".join(WSGIHandler()(environ, start_response))
    return started["status"], started["headers"], body


@pytest.mark.parametrize("path", ["/", "/healthz", "/no-such-page/"])
def test_a_head_answer_carries_the_get_answers_length_and_no_body(db, path):
    get_status, get_headers, get_body = answer("GET", path)
    head_status, head_headers, head_body = answer("HEAD", path)
    assert head_body == b""
    assert head_status == get_status
    assert head_headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    assert get_body


def test_a_streamed_answer_to_head_streams_nothing(rf):
    # A download view (FileResponse) streams; `content` would be an error there.
    def stream(request):
        return StreamingHttpResponse(iter([b"a chunk", b"another"]))

    response = HeadWithoutBodyMiddleware(stream)(rf.head("/"))
    assert b"".join(response.streaming_content) == b""
