#!/bin/sh
# Start the acme image. `acme renew-forever` gets the site's certificate
# from the ACME CA (ACME_DIRECTORY, Let's Encrypt by default), renews it when
# fewer than 30 days are left, and installs each new one in HAProxy through
# its runtime API: no reload, no connection dropped. `acme renew <days>`
# renews once, now, if fewer than <days> days are left. Any other command
# (a shell, say) runs as it is.
set -eu

# The tls folder is the volume HAProxy reads its certificate from; the
# socket, HAProxy's runtime API, is on a volume they share too.
tls=/var/lib/haproxy/tls
socket=/var/run/haproxy/admin.sock
site="$tls/site.pem"

# 1. Fail fast on a missing or empty required variable, naming it.
require_settings() {
    for name in DOMAIN_NAME ACME_EMAIL ACME_DIRECTORY ACME_PORT; do
        [ -n "$(printenv "$name")" ] || { echo "acme: $name must be set and non-empty" >&2; exit 1; }
    done
}

# lego proves control of DOMAIN_NAME over HTTP-01: its own server answers on
# ACME_PORT, and HAProxy passes /.well-known/acme-challenge/ to it.
lego_for_the_site() {
    lego --accept-tos --server "$ACME_DIRECTORY" --email "$ACME_EMAIL" \
        --domains "$DOMAIN_NAME" --path "$tls/lego" --http --http.port ":$ACME_PORT" "$@"
}

# 2. Install lego's certificate: HAProxy's file for its next start, then the
#    running HAProxy, which swaps it in for new connections.
install() {
    certificate="$tls/lego/certificates/$DOMAIN_NAME"
    (umask 077 && cat "$certificate.crt" "$certificate.key" > "$site.new" && mv "$site.new" "$site")
    printf 'set ssl cert %s <<\n%s\n\n' "$site" "$(cat "$site")" \
        | socat - "UNIX-CONNECT:$socket" >/dev/null
    # 3. HAProxy checks it before taking it: commit refuses a broken one.
    committed=$(printf 'commit ssl cert %s\n' "$site" | socat - "UNIX-CONNECT:$socket")
    case "$committed" in
        *Success!*) ;;
        *) echo "acme: HAProxy refused the certificate: $committed" >&2 && return 1 ;;
    esac
    echo "acme: installed $(openssl x509 -noout -ext subjectAltName -enddate -in "$certificate.crt" | tr '\n' ' ')"
}

# HAProxy finds this container through Docker's DNS a moment after it
# starts, and until then answers the CA's challenge with 503: ask the CA only
# once HAProxy's runtime API shows its acme server running (state 2).
wait_until_haproxy_routes_here() {
    for _ in $(seq 60); do
        printf 'show servers state acme\n' | socat - "UNIX-CONNECT:$socket" \
            | awk '$2 == "acme" && $6 == 2 { found = 1 } END { exit !found }' && return
        sleep 1
    done
    echo "acme: HAProxy did not find this service (server acme) within 60 s" >&2
    return 1
}

# Issue a certificate if there is none yet, else renew it if fewer than $1
# days are left; install it when it changed.
obtain() {
    certificate="$tls/lego/certificates/$DOMAIN_NAME.crt"
    wait_until_haproxy_routes_here
    if [ ! -s "$certificate" ]; then
        lego_for_the_site run
        install
        return
    fi
    before=$(sha256sum "$certificate")
    lego_for_the_site renew --days "$1" --no-random-sleep
    [ "$(sha256sum "$certificate")" = "$before" ] || install
}

# A failure is loud in the log and tried again within the hour; the
# healthcheck turns unhealthy when the certificate gets close to expiry. Each
# try is a fresh run of this script, where any failing step stops it.
renew_forever() {
    while :; do
        if sh "$0" acme renew 30; then
            sleep 43200
        else
            echo "acme: FAILED to get a certificate for $DOMAIN_NAME from $ACME_DIRECTORY;" \
                "trying again in an hour (see docs/https.md)" >&2
            sleep 3600
        fi
    done
}

# 4. Become the command.
case "${1:-} ${2:-}" in
    "acme renew-forever")
        require_settings
        renew_forever
        ;;
    "acme renew")
        require_settings
        obtain "${3:-30}"
        ;;
    *) exec "$@" ;;
esac
