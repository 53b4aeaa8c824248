"""Who the client is, and what a client that guessed too often is told.

HAProxy alone sees the client (or believes a trusted load balancer's PROXY
protocol header about it), and sends its address as the only one in
X-Forwarded-For; each web server believes that from HAProxy's private
network only and passes on exactly one address (docs/limits.md, "Limits per
client"). Only the web servers reach the app (the internal network; on
Kubernetes, a NetworkPolicy), so the last address of that header is the
client's. Without the header (runserver on a laptop), the connection's own.
"""

from django.conf import settings
from django.shortcuts import render


def client_address(request):
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.rpartition(",")[2].strip() or request.META.get("REMOTE_ADDR", "")


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a log-in past the limit for this account from
    this address: the log-in page's look, 429, and when to try again."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    context = {"minutes": seconds // 60}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
