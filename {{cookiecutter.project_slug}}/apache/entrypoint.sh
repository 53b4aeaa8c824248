#!/bin/sh
# Start the httpd image. When the command starts httpd, render httpd.conf from
# the environment, check it, and start httpd on that file; any other command
# (a shell, say) runs as it is, with nothing rendered.
set -eu

# The container's paths; the template's native tests run it elsewhere.
template="${APACHE_TEMPLATE:-/usr/local/apache2/conf/httpd.conf.template}"
config="${APACHE_CONF:-/usr/local/apache2/conf/httpd.conf}"

# 1. Fail fast: envsubst turns a missing variable into "".
require_settings() {
    for name in APACHE_PORT BACKEND_HOST BACKEND_PORT DOMAIN_NAME; do
        [ -n "$(printenv "$name")" ] || { echo "apache: $name must be set and non-empty" >&2; exit 1; }
    done
}

# 2. Render with an explicit list of variables.
render_config() {
    export APACHE_SERVER_ROOT="${APACHE_SERVER_ROOT:-/usr/local/apache2}"
    export APACHE_MODULES_DIR="${APACHE_MODULES_DIR:-/usr/local/apache2/modules}"
    export APACHE_MIME_TYPES="${APACHE_MIME_TYPES:-/usr/local/apache2/conf/mime.types}"
    export APACHE_RUN_DIR="${APACHE_RUN_DIR:-/usr/local/apache2/logs}"
    export STATIC_ROOT="${STATIC_ROOT:-/app/staticfiles}"
    # Apache resolves a member's name once and sticks to one address, so each
    # address of each BACKEND_HOST becomes its own member (a scaled Compose
    # service resolves to one address per replica).
    APACHE_BALANCER_MEMBERS=$(for host in $BACKEND_HOST; do
        addresses=$(getent ahostsv4 "$host" | awk '{ print $1 }' | sort -u)
        [ -n "$addresses" ] || { echo "apache: cannot resolve BACKEND_HOST $host" >&2; exit 1; }
        for address in $addresses; do
            printf '        BalancerMember "http://%s:%s" connectiontimeout=2 retry=2 ttl=4\n' \
                "$address" "$BACKEND_PORT"
        done
    done)
    export APACHE_BALANCER_MEMBERS
    # shellcheck disable=SC2016
    envsubst '${APACHE_SERVER_ROOT} ${APACHE_MODULES_DIR} ${APACHE_MIME_TYPES} ${APACHE_RUN_DIR}
              ${APACHE_PORT} ${DOMAIN_NAME} ${STATIC_ROOT} ${APACHE_BALANCER_MEMBERS}' \
        < "$template" > "$config"
}

# 3. Check it with httpd itself before anything serves.
check_config() {
    httpd -t -f "$config"
}

# 4. Become the command (PID 1, gets the signals); httpd gets the checked file.
case "${1:-}" in
    httpd | httpd-foreground)
        require_settings
        render_config
        check_config
        set -- "$@" -f "$config"
        ;;
esac
exec "$@"
