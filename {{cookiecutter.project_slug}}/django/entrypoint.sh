#!/bin/sh
# Start the Django image. When the command is Gunicorn or a management
# command (`python manage.py migrate` in the one-shot migrate service), check
# the settings, wait for the database and collect static files first; any
# other command (a shell, say) runs as it is.
# Migrations are not run here: several replicas migrating at once would race.
set -eu

# Work from this folder, wherever the script is started from.
cd "$(dirname "$0")"

# 1. Fail fast on a missing or empty required variable, naming it. The
#    secrets come as files (Compose and Kubernetes secrets), so that they
#    are in no environment: each *_FILE must name a readable, non-empty file.
require_settings() {
    required="DJANGO_SECRET_KEY_FILE"
    if [ -n "${DB_HOST:-}" ]; then
        required="$required DB_NAME DB_USER DB_PASSWORD_FILE"
    fi
    for name in $required; do
        value=$(printenv "$name") || value=""
        [ -n "$value" ] || { echo "django: $name must be set and non-empty" >&2; exit 1; }
        case "$name" in
            *_FILE) [ -r "$value" ] && [ -s "$value" ] || {
                echo "django: $name must name a readable, non-empty file, not '$value'" >&2
                exit 1
            } ;;
        esac
    done
}

# 2. Check with Django's own checker, then wait for the database: Django runs
#    its system checks before any management command and refuses to go on
#    after an error; wait_for_db then waits up to DB_WAIT_TIMEOUT seconds (a
#    no-op for SQLite).
check_and_wait_for_database() {
    python manage.py wait_for_db
}

# 3. Collect static files for the web servers, unless this container is told
#    not to (Compose collects once, in the migrate service).
collect_static() {
    if [ "${DJANGO_COLLECTSTATIC:-1}" != "0" ]; then
        python manage.py collectstatic --noinput
    fi
}

# 4. Become the command, so it runs as PID 1 and receives signals.
if [ "${1:-}" = gunicorn ] || [ "${1:-} ${2:-}" = "python manage.py" ]; then
    require_settings
    check_and_wait_for_database
    collect_static
fi
exec "$@"
