"""Answers to HEAD carry a GET's headers and no body.

Why: Django builds the whole page for HEAD, body included, and leaves it to
the server to drop the body (RFC 9110, 9.3.2). Gunicorn does drop it, and
logs a WARNING for every such answer, so each `curl -I` (the guide's own
check) or monitor's HEAD would fill the app's log with false alarms.

The body is dropped here instead, after CommonMiddleware has set
Content-Length, so the headers still say how long the GET's body would be.
"""


class HeadWithoutBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                response.streaming_content = []
            else:
                response.content = b""
        return response
