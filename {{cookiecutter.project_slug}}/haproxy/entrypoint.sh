#!/bin/sh
{%- set tls = cookiecutter.tls != "none" %}
# Start the haproxy image. When the command is haproxy, render haproxy.cfg
# from the environment{% if tls %}, make ready the TLS certificate{% endif %}, check them, and start
# HAProxy on that file; any other command (a shell, say) runs as it is,
# with nothing rendered.
set -eu

# The image's paths. It runs as the unprivileged haproxy user, whose home
# is the only writable place for the rendered file (the config folder
# belongs to root; Kubernetes moves the file to an emptyDir).
template=/usr/local/etc/haproxy/haproxy.cfg.template
config="${HAPROXY_CFG:-/var/lib/haproxy/haproxy.cfg}"
{%- if tls %}
# How HAProxy gets its certificate, the tls answer's own file beside this one
# (HAPROXY_CERTIFICATE and make_certificate).
# shellcheck source=/dev/null
. "$(dirname "$0")/{{ cookiecutter.tls }}.sh"
{%- endif %}

# The limits per client (docs/limits.md, "Limits per client"): connections at
# once, requests per 10 s, writes per minute and at once, log-ins per minute,
# sign-ups per hour.
export HAPROXY_CLIENT_CONNECTIONS="${HAPROXY_CLIENT_CONNECTIONS:-100}"
export HAPROXY_CLIENT_REQUESTS="${HAPROXY_CLIENT_REQUESTS:-60}"
export HAPROXY_CLIENT_WRITES="${HAPROXY_CLIENT_WRITES:-30}"
export HAPROXY_CLIENT_WRITES_AT_ONCE="${HAPROXY_CLIENT_WRITES_AT_ONCE:-8}"
export HAPROXY_CLIENT_LOGINS="${HAPROXY_CLIENT_LOGINS:-20}"
export HAPROXY_CLIENT_SIGNUPS="${HAPROXY_CLIENT_SIGNUPS:-20}"

# The variables the config template reads: the bake kept in it only those
# of the chosen web servers and TLS mode.
template_variables() {
    # shellcheck disable=SC2016
    grep -o '${[A-Z0-9_]*}' "$template" | tr -d '${}' | sort -u
}

# 1. Fail fast: envsubst turns a missing variable into "". A limit that is no
#    whole number above 0 is refused here, by name, rather than in HAProxy's
#    words about a line of its config (or, as 0, by refusing every client).
#    Required: what the template reads, less what this file and the TLS
#    mode's work out or default, and the stats password, which is a file.
require_settings() {
    worked_out='HAPROXY_(DNS|CERTIFICATE|HTTPS_SUFFIX|SOCKET|TRUSTED_PROXIES_FILE|CLIENT_.*)'
    for name in $(template_variables | grep -vxE "$worked_out|HAPROXY_STATS_PASSWORD|LOG_FORMAT") \
        HAPROXY_STATS_PASSWORD_FILE; do
        value=$(printenv "$name") || value=""
        [ -n "$value" ] || { echo "haproxy: $name must be set and non-empty" >&2; exit 1; }
        # A secret comes as a file (Compose and Kubernetes secrets), so that
        # it is in no environment.
        case "$name" in
            *_FILE) [ -r "$value" ] && [ -s "$value" ] || {
                echo "haproxy: $name must name a readable, non-empty file, not '$value'" >&2
                exit 1
            } ;;
        esac
    done
    # Every line of the access log: text, or one JSON object (docs/monitoring.md, "Logs").
    case "${LOG_FORMAT:=text}" in
        json | text) export LOG_FORMAT ;;
        *) echo "haproxy: LOG_FORMAT must be json or text, not '$LOG_FORMAT'" >&2; exit 1 ;;
    esac
    for name in HAPROXY_CLIENT_CONNECTIONS HAPROXY_CLIENT_REQUESTS HAPROXY_CLIENT_WRITES \
        HAPROXY_CLIENT_WRITES_AT_ONCE HAPROXY_CLIENT_LOGINS HAPROXY_CLIENT_SIGNUPS; do
        case "$(printenv "$name")" in
            '' | 0* | *[!0-9]*)
                echo "haproxy: $name must be a whole number above 0, not '$(printenv "$name")'" >&2
                exit 1
                ;;
        esac
    done
}

# 2. Render with an explicit list of variables, the template's own (any other
#    $ stays as it is). The result holds the stats password, read from its
#    file in the subshell alone (HAProxy's own environment never has it):
#    readable by its owner only.
render_config() {
    # The DNS server this container was given: Docker's own (127.0.0.11)
    # under Compose, the cluster's on Kubernetes.
    HAPROXY_DNS="${HAPROXY_DNS:-$(sed -n 's/^nameserver[[:space:]]*\([^[:space:]]*\).*/\1:53/p' /etc/resolv.conf | head -n 1)}"
    export HAPROXY_DNS="${HAPROXY_DNS:?no nameserver in /etc/resolv.conf: set HAPROXY_DNS}"
{%- if tls %}
    # The HTTPS port clients reach, for redirects: nothing to add for 443.
    port="${HAPROXY_PUBLIC_HTTPS_PORT:-443}"
    HAPROXY_HTTPS_SUFFIX=$([ "$port" = 443 ] || echo ":$port")
    export HAPROXY_HTTPS_SUFFIX
{%- endif %}
    # The proxies in front whose PROXY protocol header HAProxy believes, one
    # per line, beside the config (HAProxy checks each below); none by default.
    export HAPROXY_TRUSTED_PROXIES_FILE="${config%/*}/trusted-proxies"
    echo "${HAPROXY_TRUSTED_PROXIES:-}" | tr ',' ' ' | tr -s ' ' '\n' | sed '/^$/d' > "$HAPROXY_TRUSTED_PROXIES_FILE"
    export HAPROXY_CLIENT_CONNECTIONS_CLOSED=$((HAPROXY_CLIENT_CONNECTIONS * 2))
    # shellcheck disable=SC2016
    (umask 077 && HAPROXY_STATS_PASSWORD=$(cat "$HAPROXY_STATS_PASSWORD_FILE") \
        && export HAPROXY_STATS_PASSWORD \
        && envsubst "$(template_variables | sed 's/.*/${&}/')" \
        < "$template" > "$config")
}

# 3. Check it with HAProxy itself before anything serves{% if tls %} (the certificate
#    and its key too){% endif %}.
#    Its -q would hide why a check failed, so the output shows on failure only.
check_config() {
    if ! checked=$(haproxy -c -f "$config" 2>&1); then
        echo "$checked" >&2
        return 1
    fi
}

# Steps 1 to 3, for a start and for a reload alike.
prepare() {
    require_settings
{%- if tls %}
    make_certificate
{%- endif %}
    render_config
    check_config
}

# 4. Become the command (PID 1, gets the signals); HAProxy gets the checked file.
#    `reload` (docs/runbook.md), in the running container, prepares a
#    second file the same way (its files read anew, the stats password's
#    among them) and, once HAProxy has accepted it, puts it in place and
#    asks HAProxy to reload: new workers on the same sockets, the old ones
#    finishing what they took.
case "${1:-}" in
    haproxy)
        prepare
        set -- "$@" -f "$config"
        ;;
    reload)
        running="$config"
        config="$running.next"
        prepare
        mv "$config" "$running"
        kill -USR2 1
        echo "haproxy: reloading on the checked config"
        exit 0
        ;;
esac
exec "$@"
