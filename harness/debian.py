"""Debian's packages for the Docker tier, from this host's own mirror.

The Docker Engine and the stand-in images come from Debian suites newer than
the host's (trixie, sid). They are fetched from the mirror the host's apt
sources already name, through a private apt state, so the host's own apt
configuration and packages are never touched.
"""

import re
from pathlib import Path

from .commands import run

SOURCES = Path("/etc/apt/sources.list.d")
ONE_LINE_SOURCES = Path("/etc/apt/sources.list")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def host_codename():
    text = Path("/etc/os-release").read_text()
    return re.search(r"^VERSION_CODENAME=(\S+)", text, re.MULTILINE).group(1)


def mirror():
    """The URI of the Debian archive that the host installs its own suite from."""
    codename = host_codename()
    for path in sorted(SOURCES.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.MULTILINE))
            if codename in fields.get("Suites", "").split() and "URIs" in fields:
                return fields["URIs"].split()[0]
    if ONE_LINE_SOURCES.exists():
        for line in ONE_LINE_SOURCES.read_text().splitlines():
            match = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s", line)
            if match and match.group(2) == codename:
                return match.group(1)
    raise AssertionError(f"no apt source names the host's own suite {codename}")


def source_line(suite):
    # Newer suites' Release files on a frozen mirror may be past their
    # Valid-Until date; the packages are still signed and checked.
    return f"deb [signed-by={KEYRING} check-valid-until=no] {mirror()} {suite} main"


def download(packages, suite, workdir):
    """Download the .deb files of `packages` from `suite` into workdir; their paths."""
    state = Path(workdir)
    for folder in ("lists/partial", "cache/archives/partial", "parts"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(source_line(suite) + "\n")
    options = [
        f"-oDir::Etc::SourceList={state / 'sources.list'}",
        f"-oDir::Etc::SourceParts={state / 'parts'}",
        f"-oDir::State::Lists={state / 'lists'}",
        f"-oDir::Cache={state / 'cache'}",
        "-oAPT::Sandbox::User=root",
        "-qq",
    ]
    run(["apt-get", *options, "update"], timeout=300)
    run(["apt-get", *options, "download", *packages], cwd=state, timeout=300)
    return sorted(state.glob("*.deb"))
