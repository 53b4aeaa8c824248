#!/bin/sh
# Start the nginx image. When the command is nginx, render nginx.conf from the
# environment, check it, and start nginx on that file; any other command (a
# shell, say) runs as it is, with nothing rendered.
set -eu

# The image's paths. The rendered config goes with the pid file and
# temporary files, in the one folder nginx writes to (a tmpfs: the image's
# root is read-only; Kubernetes moves both to an emptyDir).
template=/etc/nginx/templates/nginx.conf
export NGINX_RUN_DIR="${NGINX_RUN_DIR:-/var/cache/nginx}"
config="${NGINX_CONF:-$NGINX_RUN_DIR/nginx.conf}"

# 1. Fail fast: envsubst turns a missing variable into "", and
#    `proxy_pass http://:;` can still look valid.
require_settings() {
    for name in NGINX_PORT NGINX_STATUS_PORT BACKEND_HOST BACKEND_PORT; do
        [ -n "$(printenv "$name")" ] || { echo "nginx: $name must be set and non-empty" >&2; exit 1; }
    done
    # Every line of the access log: text, or one JSON object (docs/monitoring.md, "Logs").
    case "${LOG_FORMAT:=text}" in
        json | text) export LOG_FORMAT ;;
        *) echo "nginx: LOG_FORMAT must be json or text, not '$LOG_FORMAT'" >&2; exit 1 ;;
    esac
}

# 2. Render with an explicit list of variables, so nginx's own $host,
#    $remote_addr... survive.
render_config() {
    export STATIC_ROOT="${STATIC_ROOT:-/app/staticfiles}"
    # The DNS server this container was given: Docker's own (127.0.0.11)
    # under Compose, the cluster's on Kubernetes.
    NGINX_RESOLVER="${NGINX_RESOLVER:-$(sed -n 's/^nameserver[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/resolv.conf | head -n 1)}"
    export NGINX_RESOLVER="${NGINX_RESOLVER:?no nameserver in /etc/resolv.conf: set NGINX_RESOLVER}"
    # BACKEND_HOST may list several hosts. A name (a scaled Compose service)
    # is resolved again at run time, one server per address, so a replica that
    # restarts or is added with a new address gets requests; an IPv4 address
    # is used as it is. Each host is listed twice: a replica that fails is
    # skipped for 2 s, and when every one is skipped at once (one restarting,
    # another dying), nginx tries them all again as backups rather than
    # answering 502 without trying.
    NGINX_UPSTREAM_SERVERS=$(for host in $BACKEND_HOST; do
        case "$host" in
            *[!0-9.]*) resolve=" resolve" ;;
            *) resolve="" ;;
        esac
        printf '        server %s:%s%s max_fails=1 fail_timeout=2s;\n' \
            "$host" "$BACKEND_PORT" "$resolve"
        printf '        server %s:%s%s max_fails=0 backup;\n' \
            "$host" "$BACKEND_PORT" "$resolve"
    done)
    export NGINX_UPSTREAM_SERVERS
    # shellcheck disable=SC2016
    envsubst '${NGINX_RUN_DIR} ${NGINX_PORT} ${NGINX_STATUS_PORT} ${NGINX_RESOLVER}
              ${NGINX_UPSTREAM_SERVERS} ${STATIC_ROOT} ${LOG_FORMAT}' < "$template" > "$config"
}

# 3. Check it with nginx itself before anything serves.
check_config() {
    nginx -t -q -e stderr -c "$config"
}

# 4. Become the command (PID 1, gets the signals); nginx gets the checked file.
if [ "${1:-}" = nginx ]; then
    require_settings
    render_config
    check_config
    set -- "$@" -c "$config"
fi
exec "$@"
