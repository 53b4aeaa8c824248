# shellcheck shell=sh
# tls=self-signed, sourced by entrypoint.sh: a certificate HAProxy makes for
# itself, kept in the tls volume in HAProxy's one-file form.
export HAPROXY_CERTIFICATE="${HAPROXY_CERTIFICATE:-/var/lib/haproxy/tls/site.pem}"

# A self-signed certificate for DOMAIN_NAME (an EC P-256 key, for a year).
make_self_signed() {
    echo "haproxy: making a self-signed certificate for $DOMAIN_NAME"
    case "$DOMAIN_NAME" in
        *[!0-9.]*) name="DNS:$DOMAIN_NAME" ;;
        *) name="IP:$DOMAIN_NAME" ;;
    esac
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -days 365 -subj "/CN=$DOMAIN_NAME" -addext "subjectAltName=$name" \
        -keyout "$HAPROXY_CERTIFICATE.key" -out "$HAPROXY_CERTIFICATE.crt" 2>/dev/null \
        && cat "$HAPROXY_CERTIFICATE.crt" "$HAPROXY_CERTIFICATE.key" > "$HAPROXY_CERTIFICATE" \
        && rm "$HAPROXY_CERTIFICATE.crt" "$HAPROXY_CERTIFICATE.key")
}

# Made on the first start, and again when it has less than 30 days left.
make_certificate() {
    openssl x509 -checkend 2592000 -noout -in "$HAPROXY_CERTIFICATE" 2>/dev/null || make_self_signed
}
