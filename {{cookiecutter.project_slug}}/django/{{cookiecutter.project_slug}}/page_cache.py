"""Which answers the web servers in front may keep, and for how long.

Why: a public board is mostly anonymous reads of the same few pages, and an
anonymous flood is the cheapest attack there is. The web servers keep an
answer marked public for PAGE_CACHE_SECONDS (docs/limits.md, "Page cache"), so
each such page costs the app once per lifetime, not once per reader.

Public only when nothing in the answer belongs to one reader: a GET or HEAD
by a reader who is not logged in, answered 200, that sets no cookie (so no
CSRF token and no message was in it: rendering either sets one) and says
nothing of its own about caching (the health checks' and log-in's
never_cache). It varies by Cookie and Accept-Language, which pick its
language, and by X-Forwarded-Proto, the scheme HAProxy saw (a plain HTTP
request to an HTTPS site gets a redirect). Every other answer is marked
private, so no shared cache keeps it by a guess of its own.
"""
{%- if cookiecutter.use_nginx is yes %}

import time
{%- endif %}

from django.conf import settings
from django.utils.cache import patch_cache_control, patch_vary_headers


class PageCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if is_public(request, response):
            patch_cache_control(response, public=True, max_age=settings.PAGE_CACHE_SECONDS)
            patch_vary_headers(response, ["Cookie", "Accept-Language", "X-Forwarded-Proto"])
{%- if cookiecutter.use_nginx is yes %}
            response["X-Accel-Expires"] = f"@{last_whole_second()}"
{%- endif %}
        else:
            patch_cache_control(response, private=True)
        return response


def is_public(request, response):
    user = getattr(request, "user", None)
    return (
        settings.PAGE_CACHE_SECONDS > 0
        and request.method in ("GET", "HEAD")
        and response.status_code == 200
        and not response.cookies
        and not response.has_header("Cache-Control")
        and user is not None
        and not user.is_authenticated
    )
{%- if cookiecutter.use_nginx is yes %}


def last_whole_second():
    """The last second of the lifetime, for Nginx's own X-Accel-Expires (it
    never passes that header on). Nginx counts a copy's life in whole seconds
    and keeps it through the second it expires in, so max-age=1 alone could
    keep a copy for nearly two. Named this way, no copy outlives the lifetime
    (a copy kept late in a second lives less), and a busy page is fetched
    again on each lifetime's boundary."""
    return int(time.time()) + settings.PAGE_CACHE_SECONDS - 1
{%- endif %}
