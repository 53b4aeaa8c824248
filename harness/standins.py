"""Stand-ins for the official images, built from Debian's packages.

No container registry is reachable here, so every image a baked project
names (its Dockerfiles' FROM lines and the database's `image:`) is built
locally under exactly that name from tests/standins/. Each builds FROM a
minimal root filesystem of the Debian suite that carries the official
image's version line, made with mmdebstrap and imported once per machine;
BuildKit's cache in the engine's data root makes later builds take seconds.
"""

import hashlib
import tempfile
from pathlib import Path

from . import debian
from .commands import run
from .processes import find_binary
from .template import TEMPLATE

STANDINS = TEMPLATE / "tests" / "standins"
# The answers whose images have stand-ins: the version lines Debian carries,
# so that each stand-in runs the line its name promises.
ANSWERS = {"mysql_version": "9.7", "python_version": "3.13"}
SUITES = ("trixie", "sid")
# Newer suites' Release files on a frozen mirror may be past their
# Valid-Until; kept in the image, so that the project's own apt-get works.
MMDEBSTRAP_OPTIONS = ["--variant=minbase", '--aptopt=Acquire::Check-Valid-Until "false"']
HOST_CERTIFICATES = Path("/etc/ssl/certs")


def base_image(engine, suite):
    """django-ha/debian:<suite>, made again only when its recipe changes."""
    tag = f"django-ha/debian:{suite}"
    source = f"deb {debian.mirror()} {suite} main"
    recipe = hashlib.sha256(repr((suite, source, MMDEBSTRAP_OPTIONS)).encode()).hexdigest()[:16]
    label = '{{ index .Config.Labels "django-ha.recipe" }}'
    built = engine.docker("image", "inspect", "--format", label, tag, check=False)
    if built.returncode == 0 and built.stdout.strip() == recipe:
        return tag
    mmdebstrap = find_binary("mmdebstrap", package="mmdebstrap")
    with tempfile.TemporaryDirectory() as workdir:
        rootfs = Path(workdir) / f"{suite}.tar"
        run([mmdebstrap, "--quiet", *MMDEBSTRAP_OPTIONS, suite, rootfs, source], timeout=900)
        engine.docker(
            "import",
            "--change",
            f"LABEL django-ha.recipe={recipe}",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            'CMD ["bash"]',
            rootfs,
            tag,
        )
    return tag


def build(engine):
    """Every stand-in image, under its official name; returns those names."""
    for suite in SUITES:
        base_image(engine, suite)
    compose_file = STANDINS / "compose.yml"
    env = {"HOST_CERTIFICATES": str(HOST_CERTIFICATES)}
    engine.docker("compose", "--file", compose_file, "build", timeout=1800, **env)
    images = engine.docker("compose", "--file", compose_file, "config", "--images", **env)
    return images.stdout.split()
