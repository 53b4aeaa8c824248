#!/bin/sh
# Start the httpd image. When the command starts httpd, render httpd.conf from
# the environment, check it, and start httpd on that file; any other command
# (a shell, say) runs as it is, with nothing rendered.
set -eu

# The image's paths. The rendered config goes with the pid file and shared
# memory, in the one folder Apache writes to (a tmpfs: the image's root is
# read-only; Kubernetes moves both to an emptyDir).
template=/usr/local/apache2/conf/httpd.conf.template
export APACHE_RUN_DIR="${APACHE_RUN_DIR:-/usr/local/apache2/logs}"
config="${APACHE_CONF:-$APACHE_RUN_DIR/httpd.conf}"

# 1. Fail fast: envsubst turns a missing variable into "".
require_settings() {
    for name in APACHE_PORT APACHE_STATUS_PORT BACKEND_HOST BACKEND_PORT DOMAIN_NAME; do
        [ -n "$(printenv "$name")" ] || { echo "apache: $name must be set and non-empty" >&2; exit 1; }
    done
    # Every line of the access log: text, or one JSON object (docs/monitoring.md, "Logs").
    case "${LOG_FORMAT:=text}" in
        json | text) export LOG_FORMAT ;;
        *) echo "apache: LOG_FORMAT must be json or text, not '$LOG_FORMAT'" >&2; exit 1 ;;
    esac
}

# Every replica, as address:port: one per address of each BACKEND_HOST.
# Apache resolves a member's name once and keeps one address, and a scaled
# Compose service resolves to one address per replica.
replicas() {
    for host in $BACKEND_HOST; do
        addresses=$(getent ahostsv4 "$host" | awk '{ print $1 }' | sort -u)
        [ -n "$addresses" ] || { echo "apache: cannot resolve BACKEND_HOST $host" >&2; return 1; }
        for address in $addresses; do
            echo "$address:$BACKEND_PORT"
        done
    done
}

# One BalancerMember per replica, waiting $1 seconds for its answers (the
# timeout ladder in docs/limits.md), with $2 saying how connections are reused.
balancer_members() {
    for replica in $APACHE_REPLICAS; do
        printf '        BalancerMember "http://%s" connectiontimeout=2 timeout=%s retry=2 %s\n' \
            "$replica" "$1" "$2"
    done
}

# 2. Render with an explicit list of variables, for the replicas given.
render_config() {
    export STATIC_ROOT="${STATIC_ROOT:-/app/staticfiles}"
    export APACHE_REPLICAS="$1"
    # Reads reuse pooled connections for 4 s (ttl), less than Gunicorn's 5 s
    # keep-alive. Writes open a fresh one each: a replica that stops closes
    # its idle ones, and a POST sent on one just then could not be sent
    # again; a fresh connection is refused instead, and goes to the next one.
    APACHE_READ_MEMBERS=$(balancer_members 2 ttl=4)
    APACHE_WRITE_MEMBERS=$(balancer_members 10 disablereuse=On)
    export APACHE_READ_MEMBERS APACHE_WRITE_MEMBERS
    # mod_cache's lock files (httpd.conf), written by Apache's children as
    # www-data: also when Apache starts as root (`docker run --user 0`),
    # whose run folder they could not write to.
    mkdir -p "$APACHE_RUN_DIR/pages-lock"
    [ "$(id -u)" != 0 ] || chown www-data:www-data "$APACHE_RUN_DIR/pages-lock"
    # shellcheck disable=SC2016
    envsubst '${APACHE_RUN_DIR} ${APACHE_PORT} ${APACHE_STATUS_PORT} ${DOMAIN_NAME} ${STATIC_ROOT} ${APACHE_READ_MEMBERS}
              ${APACHE_WRITE_MEMBERS} ${LOG_FORMAT}' \
        < "$template" > "$config"
}

# 3. Check it with httpd itself before anything serves.
check_config() {
    httpd -t -f "$config"
}

# Apache has no way to follow a name's addresses at run time, and Compose
# gives a replica that restarts or is added a new address. So, beside the
# server: every 2 s, resolve BACKEND_HOST again; when the answer changed,
# render, check and reload gracefully (SIGUSR1: requests in flight finish).
# Only names can change: for IPv4 addresses there is nothing to follow.
follow_backends() {
    case " $BACKEND_HOST " in *[!0-9.\ ]*) ;; *) return 0 ;; esac
    while sleep 2; do
        found=$(replicas 2>/dev/null) || continue
        [ "$found" != "$APACHE_REPLICAS" ] || continue
        if render_config "$found" && check_config; then
            kill -USR1 "$(cat "$APACHE_RUN_DIR/httpd.pid")"
            echo "apache: the replicas changed; reloaded with $(echo "$found" | wc -l) members"
        else
            echo "apache: the replicas changed, but the new config was refused" >&2
        fi
    done
}

# 4. Become the command (PID 1, gets the signals); httpd gets the checked file.
case "${1:-}" in
    httpd | httpd-foreground)
        require_settings
        found=$(replicas)
        render_config "$found"
        check_config
        follow_backends &
        set -- "$@" -f "$config"
        ;;
esac
exec "$@"
