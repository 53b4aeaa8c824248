"""The site's plain error pages (django/static/errors/), as the app answers.

A 5xx page shows the request's ID for the user to quote, as the web servers
(an SSI line in the page) and HAProxy fill it in; the app fills in its own.
"""

from functools import cache
from html import escape

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django_guid import get_guid

# The web servers' SSI line, where a page shows the request's ID.
REQUEST_ID_SLOT = '<!--#echo var="HTTP_X_REQUEST_ID" -->'


@cache
def page_text(status):
    with open(finders.find(f"errors/{status}.html"), encoding="utf-8") as file:
        return file.read()


def error_page(status):
    """The page for `status`, naming the request's ID: HTML-escaped, as a
    client on a web server's own port may send any."""
    text = page_text(status).replace(REQUEST_ID_SLOT, escape(get_guid() or "(none)"))
    return HttpResponse(text, status=status, content_type="text/html; charset=utf-8")


def server_error(request):
    """handler500: the site's 500 page, not Django's bare one."""
    return error_page(500)
