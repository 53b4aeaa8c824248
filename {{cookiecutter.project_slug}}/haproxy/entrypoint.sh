#!/bin/sh
# Start the haproxy image. When the command is haproxy, render haproxy.cfg
# from the environment, check it, and start HAProxy on that file; any other
# command (a shell, say) runs as it is, with nothing rendered.
set -eu

# The container's paths; the template's native tests run it elsewhere. The
# image runs as the unprivileged haproxy user, whose home is the only
# writable place for the rendered file (the config folder belongs to root).
template="${HAPROXY_TEMPLATE:-/usr/local/etc/haproxy/haproxy.cfg.template}"
config="${HAPROXY_CFG:-/var/lib/haproxy/haproxy.cfg}"

# 1. Fail fast: envsubst turns a missing variable into "".
require_settings() {
    for name in HAPROXY_PORT HAPROXY_STATS_PORT HAPROXY_STATS_USER HAPROXY_STATS_PASSWORD \
        DOMAIN_NAME{% if cookiecutter.use_nginx is yes %} NGINX_HOST NGINX_PORT{% endif %}{% if cookiecutter.use_apache is yes %} APACHE_HOST APACHE_PORT{% endif %}; do
        [ -n "$(printenv "$name")" ] || { echo "haproxy: $name must be set and non-empty" >&2; exit 1; }
    done
}

# 2. Render with an explicit list of variables. The result holds the stats
#    password: readable by its owner only.
render_config() {
    export HAPROXY_DNS="${HAPROXY_DNS:-127.0.0.11:53}"
    # shellcheck disable=SC2016
    (umask 077 && envsubst '${HAPROXY_PORT} ${HAPROXY_STATS_PORT} ${HAPROXY_STATS_USER}
        ${HAPROXY_STATS_PASSWORD} ${DOMAIN_NAME} ${HAPROXY_DNS}{% if cookiecutter.use_nginx is yes %} ${NGINX_HOST} ${NGINX_PORT}{% endif %}{% if cookiecutter.use_apache is yes %} ${APACHE_HOST} ${APACHE_PORT}{% endif %}' \
        < "$template" > "$config")
}

# 3. Check it with HAProxy itself before anything serves.
check_config() {
    haproxy -c -q -f "$config"
}

# 4. Become the command (PID 1, gets the signals); HAProxy gets the checked file.
if [ "${1:-}" = haproxy ]; then
    require_settings
    render_config
    check_config
    set -- "$@" -f "$config"
fi
exec "$@"
