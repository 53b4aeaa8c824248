"""Certificates for the HTTPS tests.

A test CA and the certificates it signs (for `tls=own`), and the
certificate a server presents, verified with Python's ssl module (the
Docker tier's ACME test CA is Pebble, in an image of its own). What a
server offers (versions, ALPN) the stack checks see for themselves.
"""

import socket
import ssl
from pathlib import Path

from .commands import run


def self_signed(folder, name, *, ca=False, days=30):
    """A certificate and key, signed by themselves, valid for `days`:
    (certificate, key). For a server `name` is its host name; for a CA, its own name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    certificate, key = folder / f"{name}.crt", folder / f"{name}.key"
    if ca:
        usage = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    else:
        usage = [f"subjectAltName=DNS:{name},IP:127.0.0.1"]
    run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        + ["-nodes", "-days", str(days), "-subj", f"/CN={name}"]
        + [part for extension in usage for part in ("-addext", extension)]
        + ["-keyout", key, "-out", certificate]
    )
    return certificate, key


def signed_by(ca, folder, name):
    """A server certificate and key for `name`, signed by the CA `ca`: (certificate, key)."""
    folder = Path(folder)
    key, request, certificate = (folder / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    run(
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        + ["-subj", f"/CN={name}", "-keyout", key, "-out", request]
    )
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n")
    run(
        ["openssl", "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1]]
        + ["-CAcreateserial", "-days", "30", "-extfile", extensions, "-out", certificate]
    )
    return certificate, key


def verified(port, server_name, ca_file, connection=None):
    """The certificate's serial number, once it verified for `server_name`
    against `ca_file`, on `connection` (one to 127.0.0.1:port if None)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        connection or socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.getpeercert()["serialNumber"]
