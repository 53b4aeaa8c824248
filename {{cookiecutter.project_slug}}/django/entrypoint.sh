#!/bin/sh
# Start the Django image: check the environment, wait for the database,
# collect static files, then run the command (Gunicorn by default, or e.g.
# `python manage.py migrate` in the one-shot migrate service).
# Migrations are not run here: several replicas migrating at once would race.
set -eu

# Work from this folder, wherever the script is started from.
cd "$(dirname "$0")"

# 1. Fail fast on a missing or empty required variable, naming it.
required="DJANGO_SECRET_KEY"
if [ -n "${DB_HOST:-}" ]; then
    required="$required DB_NAME DB_USER DB_PASSWORD"
fi
for name in $required; do
    [ -n "$(printenv "$name")" ] || { echo "django: $name must be set and non-empty" >&2; exit 1; }
done

# 2. Wait for the database (DB_WAIT_TIMEOUT seconds; a no-op for SQLite).
python manage.py wait_for_db

# 3. Collect static files for the proxies, unless this container is told not
#    to (Compose collects once, in the migrate service).
if [ "${DJANGO_COLLECTSTATIC:-1}" != "0" ]; then
    python manage.py collectstatic --noinput
fi

# 4. Become the command, so it runs as PID 1 and receives signals.
exec "$@"
