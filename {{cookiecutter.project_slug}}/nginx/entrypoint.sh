#!/bin/sh
# Render nginx.conf from the environment, check it, then run the CMD.
set -eu

# 1. Fail fast: envsubst would turn a missing variable into "" and
#    `proxy_pass http://:;` can still look valid.
for name in NGINX_PORT BACKEND_HOST BACKEND_PORT; do
    [ -n "$(printenv "$name")" ] || { echo "nginx: $name must be set and non-empty" >&2; exit 1; }
done
# Paths and tuning default to the container's; the native tests override them.
export NGINX_USER="${NGINX_USER:-nginx}"
export NGINX_RUN_DIR="${NGINX_RUN_DIR:-/var/cache/nginx}"
export NGINX_MIME_TYPES="${NGINX_MIME_TYPES:-/etc/nginx/mime.types}"
export STATIC_ROOT="${STATIC_ROOT:-/app/staticfiles}"
template="${NGINX_TEMPLATE:-/etc/nginx/templates/nginx.conf}"
config="${NGINX_CONF:-/etc/nginx/nginx.conf}"

# BACKEND_HOST may name several hosts (one per replica); nginx itself expands
# a name that resolves to several addresses, as a scaled Compose service does.
NGINX_UPSTREAM_SERVERS=$(for host in $BACKEND_HOST; do
    printf '        server %s:%s max_fails=1 fail_timeout=2s;\n' "$host" "$BACKEND_PORT"
done)
export NGINX_UPSTREAM_SERVERS

# 2. Render with an explicit list, so $host, $remote_addr... survive.
# shellcheck disable=SC2016
envsubst '${NGINX_USER} ${NGINX_RUN_DIR} ${NGINX_MIME_TYPES} ${NGINX_PORT}
          ${NGINX_UPSTREAM_SERVERS} ${STATIC_ROOT}' < "$template" > "$config"

# 3. Check it with nginx itself before anything serves.
nginx -t -q -e stderr -c "$config"

# 4. Become the server (PID 1, gets the signals).
exec "$@"
