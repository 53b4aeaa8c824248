"""URL routes: health checks, accounts, admin, language switch and the board."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from board.views import SignUpView

from . import health

# The site's own 500 page, with the request's ID (error_pages.py).
handler500 = "{{ cookiecutter.project_slug }}.error_pages.server_error"

urlpatterns = [
    path("healthz", health.liveness, name="healthz"),
    path("readyz", health.readiness, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/signup/", SignUpView.as_view(), name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("board.urls")),
]
