# shellcheck shell=sh
# tls=acme, sourced by entrypoint.sh: the acme service installs the CA's
# certificate in the tls volume and renews it there.
# shellcheck source=/dev/null
. "$(dirname "$0")/self-signed.sh"

# Until the acme service installs the first certificate from the CA,
# HAProxy serves a self-signed one; one that is there is kept, whatever its
# age: renewing it is the acme service's job.
make_certificate() {
    [ -s "$HAPROXY_CERTIFICATE" ] || make_self_signed
}
