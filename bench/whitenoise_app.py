"""The usual alternative to a web server in front: Django serving its own
static files with WhiteNoise, as cookiecutter-django does. A contender only;
the baked project never serves static files from Django."""

import importlib
import os

from django.conf import settings
from whitenoise import WhiteNoise

project = os.environ["DJANGO_SETTINGS_MODULE"].rpartition(".")[0]
django_app = importlib.import_module(f"{project}.wsgi").application
# The names are hashed (ManifestStaticFilesStorage), so they may be cached
# for as long as the web servers let them be (30 days).
application = WhiteNoise(
    django_app, root=settings.STATIC_ROOT, prefix="static/", max_age=30 * 24 * 3600
)
