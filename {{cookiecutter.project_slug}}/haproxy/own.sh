# shellcheck shell=sh
# tls=own, sourced by entrypoint.sh: HAProxy's one file, made from the
# certificate and key that Compose mounts from tls/ (secrets), readable by
# the haproxy user only.
export HAPROXY_CERTIFICATE="${HAPROXY_CERTIFICATE:-/var/lib/haproxy/site.pem}"
certificate_file=/run/secrets/tls_certificate
key_file=/run/secrets/tls_key

# The certificate (with its chain), then the key. HAProxy's check refuses a
# key that does not belong to the certificate.
make_certificate() {
    for file in "$certificate_file" "$key_file"; do
        [ -r "$file" ] || {
            echo "haproxy: cannot read $file: it must be readable by the haproxy user, uid 99 (see docs/https.md)" >&2
            exit 1
        }
    done
    (umask 077 && cat "$certificate_file" "$key_file" > "$HAPROXY_CERTIFICATE")
}
