"""The baked project's settings without its metrics (django-prometheus'
middlewares, app and database wrapper), so that the benchmark can show what
they cost per answer. A contender only; the baked project always counts."""

import importlib
import os

project = os.environ["BENCH_PROJECT_SETTINGS"]
globals().update(
    {
        name: value
        for name, value in vars(importlib.import_module(project)).items()
        if name.isupper()
    }
)
MIDDLEWARE = [name for name in MIDDLEWARE if not name.startswith("django_prometheus.")]  # noqa: F821
INSTALLED_APPS = [name for name in INSTALLED_APPS if name != "django_prometheus"]  # noqa: F821
for database in DATABASES.values():  # noqa: F821
    database["ENGINE"] = database["ENGINE"].replace("django_prometheus.db.", "django.db.")
