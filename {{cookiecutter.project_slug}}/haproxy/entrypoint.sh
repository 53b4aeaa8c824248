#!/bin/sh
# Render haproxy.cfg from the environment, check it, then run the CMD.
set -eu

# 1. Fail fast: envsubst would turn a missing variable into "".
for name in HAPROXY_PORT HAPROXY_STATS_PORT HAPROXY_STATS_USER HAPROXY_STATS_PASSWORD \
    DOMAIN_NAME{% if cookiecutter.use_nginx is yes %} NGINX_HOST NGINX_PORT{% endif %}{% if cookiecutter.use_apache is yes %} APACHE_HOST APACHE_PORT{% endif %}; do
    [ -n "$(printenv "$name")" ] || { echo "haproxy: $name must be set and non-empty" >&2; exit 1; }
done
# Addresses and paths default to the container's; the native tests override
# them. The image runs as the unprivileged haproxy user, whose home is the
# only writable place for the rendered file.
export HAPROXY_DNS="${HAPROXY_DNS:-127.0.0.11:53}"
template="${HAPROXY_TEMPLATE:-/usr/local/etc/haproxy/haproxy.cfg.template}"
config="${HAPROXY_CFG:-/var/lib/haproxy/haproxy.cfg}"

# 2. Render with an explicit list of variables. The result holds the stats
#    password: readable by its owner only.
umask 077
# shellcheck disable=SC2016
envsubst '${HAPROXY_PORT} ${HAPROXY_STATS_PORT} ${HAPROXY_STATS_USER} ${HAPROXY_STATS_PASSWORD}
          ${DOMAIN_NAME} ${HAPROXY_DNS}{% if cookiecutter.use_nginx is yes %} ${NGINX_HOST} ${NGINX_PORT}{% endif %}{% if cookiecutter.use_apache is yes %} ${APACHE_HOST} ${APACHE_PORT}{% endif %}' \
    < "$template" > "$config"

# 3. Check it with HAProxy itself before anything serves.
haproxy -c -q -f "$config"

# 4. Become the server (PID 1, gets the signals).
exec "$@"
