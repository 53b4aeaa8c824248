"""Headless Chromium, driven with Selenium, for the browser walk (Docker tier).

Debian's `chromium` and `chromium-driver`: nothing is downloaded. Chromium
trusts the site's certificate as a user's machine would, through the NSS
database of a profile of its own into which the certificate is imported as a
CA (certutil), not by ignoring certificate errors. A test stack's HAProxy
wants a PROXY protocol header on every connection from this machine
(checks/compose.yml), which no browser sends: a relay adds it, and passes
the TLS connection on untouched.
"""

import contextlib
import os
import socket
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from .commands import run

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextlib.contextmanager
def chromium(folder, certificate, host, size):
    """A headless Chromium whose viewport is `size` (width, height), that
    reaches `host` at 127.0.0.1 and trusts `certificate` for it, and keeps
    every console message."""
    home = Path(folder) / "home"
    nssdb = f"sql:{home}/.pki/nssdb"
    (home / ".pki/nssdb").mkdir(parents=True)
    run(["certutil", "-N", "-d", nssdb, "--empty-password"])
    run(["certutil", "-A", "-d", nssdb, "-t", "C,,", "-n", "site", "-i", certificate])
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        # Its sandbox refuses to run as root, which the test runner is.
        "--no-sandbox",
        f"--user-data-dir={Path(folder) / 'profile'}",
        # English first, as a browser set up in English asks.
        "--lang=en-US",
        f"--host-resolver-rules=MAP {host} 127.0.0.1",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium reads the NSS database in its HOME.
    service = Service(CHROMEDRIVER, env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(options=options, service=service)
    # The viewport as a device of that size shows it (a window is 500 pixels
    # wide at least); narrow is a phone, with its touch screen.
    width, height = size
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        yield driver
    finally:
        driver.quit()


def pipe(source, target):
    """Bytes from `source` to `target` until `source` ends."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def relay_one(client, port, header):
    with client, socket.create_connection(("127.0.0.1", port)) as upstream:
        upstream.sendall(header(upstream))
        back = threading.Thread(target=pipe, args=(upstream, client))
        back.start()
        pipe(client, upstream)
        back.join()


@contextlib.contextmanager
def relay(port, header):
    """A port on 127.0.0.1 that passes each connection on to `port`, first
    sending `header(connection)` there."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                client, _ = listener.accept()
                threading.Thread(target=relay_one, args=(client, port, header), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
