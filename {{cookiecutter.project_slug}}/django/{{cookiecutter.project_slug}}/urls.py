"""URL routes: health checks, accounts, admin, language switch and the board."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language

from board.forms import RateLimitedPasswordResetForm
from board.views import SignUpView

from . import health

# The site's own 500 page, with the request's ID (error_pages.py).
handler500 = "{{ cookiecutter.project_slug }}.error_pages.server_error"

urlpatterns = [
    path("healthz", health.liveness, name="healthz"),
    path("readyz", health.readiness, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/signup/", SignUpView.as_view(), name="signup"),
    # Django's own account pages at its own paths (log-in, log-out, a
    # forgotten password and a changed one), but for these two: the reset
    # form sends each member at most one link per interval (board/forms.py),
    # and its pages say so. The first pattern that matches serves a path.
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(
            form_class=RateLimitedPasswordResetForm,
            extra_email_context={"project_name": settings.PROJECT_NAME},
        ),
        name="password_reset",
    ),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(
            extra_context={
                "interval_minutes": int(settings.PASSWORD_RESET_MAIL_INTERVAL.total_seconds() // 60)
            }
        ),
        name="password_reset_done",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    # Without a CSRF token, so that a page that offers the switch carries no
    # token and the web servers may keep it for every anonymous reader
    # (page_cache.py). What a forged switch can do: show its victim the site
    # in the other language until they switch back. It sets nothing else.
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("", include("board.urls")),
]
