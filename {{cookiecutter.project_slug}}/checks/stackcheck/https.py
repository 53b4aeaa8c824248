"""HTTPS: the handshake, the certificate and the redirects."""

import re
import ssl
import warnings
from urllib.parse import urlsplit

from .clients import connect, fetch, same_place, stylesheet
from .stack import Stack


def handshake(stack: Stack, *, maximum=None):
    """Meet the site's HTTPS port: (TLS version, ALPN protocol). The client
    offers old versions too when asked to (its own defaults would refuse them
    first), so a refusal is the server's."""
    url = urlsplit(stack.url())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # old versions are offered on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        if maximum:
            context.maximum_version = maximum
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        connect(stack, url.hostname, url.port) as raw,
        context.wrap_socket(raw, server_hostname=stack.domain) as tls,
    ):
        return tls.version(), tls.selected_alpn_protocol()


def check_https_offers_http2_on_tls_12_or_newer(stack: Stack):
    version, protocol = handshake(stack)
    assert version in ("TLSv1.2", "TLSv1.3"), version
    assert protocol == "h2", f"ALPN chose {protocol}"
    assert handshake(stack, maximum=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    with warnings.catch_warnings():  # offering them is the point: they must be refused
        warnings.simplefilter("ignore", DeprecationWarning)
        old_versions = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    for old in old_versions:
        try:
            version, _ = handshake(stack, maximum=old)
        except ssl.SSLError as error:
            # The server's alert, not this client's refusal to even offer it.
            assert error.reason == "TLSV1_ALERT_PROTOCOL_VERSION", f"{old.name}: {error}"
            continue
        raise AssertionError(f"a {old.name} client was accepted ({version})")


def check_plain_http_is_sent_to_https_with_its_path(stack: Stack):
    path = "/posts/new/?q=moved"
    response = fetch(stack, "haproxy-http", path, allow_redirects=False)
    assert response.status_code == 301, response.status_code
    location = response.headers["Location"]
    assert same_place(location, stack.url(path=path)), f"redirected to {location}"


def check_https_answers_carry_hsts(stack: Stack):
    for path in ("/", stylesheet(stack)):  # Django's answer, and a web server's own
        header = fetch(stack, path=path).headers.get("Strict-Transport-Security", "")
        max_age = re.search(r"max-age=(\d+)", header)
        assert max_age and int(max_age.group(1)) >= 365 * 86400, f"{path}: HSTS {header!r}"


HTTPS = [
    check_https_offers_http2_on_tls_12_or_newer,
    check_plain_http_is_sent_to_https_with_its_path,
    check_https_answers_carry_hsts,
]
