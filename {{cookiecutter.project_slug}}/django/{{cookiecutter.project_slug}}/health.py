"""Health endpoints for HAProxy, the proxies and the container healthchecks.

/healthz (liveness) proves the process answers HTTP; it touches nothing else,
so a database outage never makes Docker restart healthy replicas.
/readyz (readiness) proves this replica can reach the database; the load
balancer sends it traffic only while this answers 200.
"""

import logging

from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


@never_cache
def liveness(request):
    return HttpResponse("ok", content_type="text/plain")


@never_cache
def readiness(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.warning("Readiness check failed: database unreachable: %s", error)
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ready", content_type="text/plain")
