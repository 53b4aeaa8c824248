"""Fixtures that follow what each prompt changes, and one marker per tier.

- `default_project`: one default bake, for what no answer changes.
- `proxy_project`: a bake per proxy choice, for what the proxies change.
- `mysql_project`: a bake per MySQL version, where the version matters.
- `tls_mode`, `tls_project`: a bake per tls answer, for what HTTPS changes.
- `variant_project`: a bake per proxy choice, per tls answer, and with
  `kubernetes`, for what they all change (the compose file, the
  Dockerfiles, the scripts, the READMEs).
- `k8s_project`: each variant that can have them, with the Kubernetes manifests.
- `mysql`: one MySQL server for the app tier; each user makes its own database.

Bakes are made once per session and shared; tests must not change them.
"""

import secrets
import time

import pytest

from harness import standins
from harness.engine import DockerEngine
from harness.mysql import MySQL
from harness.template import MYSQL_VERSIONS, PROXY_CHOICES, TLS_MODES, default_answers, tls_answers

DEFAULTS = default_answers()

# Each tier is one module; `./run-tests -m "not docker and not bench"` runs
# the fast ones, and `-m "not engine"` those that need no Docker Engine (and
# so no root).
TIERS = {
    "test_answers": "bake",
    "test_bake": "bake",
    "test_static": "static",
    "test_k8s": "k8s",
    "test_config": "config",
    "test_app": "app",
    "test_docker": "docker",
    "test_bench": "bench",
}
# The tiers that run images, on the private engine (`engine`, below).
ENGINE_TIERS = {"config", "app", "docker", "bench"}


def pytest_collection_modifyitems(items):
    for item in items:
        tier = TIERS[item.module.__name__]
        item.add_marker(tier)
        if tier in ENGINE_TIERS:
            item.add_marker("engine")


@pytest.fixture(scope="session")
def bake(cookies_session):
    """Bake a project for some answers once per session; later calls reuse it."""
    baked = {}

    def bake_once(**answers):
        # Answers equal to the defaults make the same project: bake it once.
        answers = {key: value for key, value in answers.items() if DEFAULTS[key] != value}
        key = tuple(sorted(answers.items()))
        if key not in baked:
            result = cookies_session.bake(extra_context=answers)
            assert result.exception is None, f"{answers} failed to bake: {result.exception}"
            baked[key] = result.project_path
        return baked[key]

    return bake_once


@pytest.fixture(scope="session")
def default_project(bake):
    return bake()


@pytest.fixture(scope="session", params=PROXY_CHOICES)
def proxy_project(request, bake):
    return bake(**PROXY_CHOICES[request.param])


@pytest.fixture(scope="session", params=TLS_MODES)
def tls_mode(request):
    return request.param


@pytest.fixture(scope="session")
def tls_project(tls_mode, bake):
    return bake(**tls_answers(tls_mode))


# The proxy choices with the default tls answer, then every other tls answer,
# then the Kubernetes manifests beside the compose file.
VARIANTS = (
    PROXY_CHOICES
    | {f"tls={mode}": tls_answers(mode) for mode in TLS_MODES if mode != DEFAULTS["tls"]}
    | {"kubernetes": {"kubernetes": True}}
)


@pytest.fixture(scope="session", params=VARIANTS)
def variant_project(request, bake):
    return bake(**VARIANTS[request.param])


# The variants that can also have the Kubernetes manifests (not tls=acme).
K8S_VARIANTS = {
    name: answers | {"kubernetes": True}
    for name, answers in VARIANTS.items()
    if answers.get("tls") != "acme" and "kubernetes" not in answers
}


@pytest.fixture(scope="session", params=K8S_VARIANTS)
def k8s_project(request, bake):
    return bake(**K8S_VARIANTS[request.param])


@pytest.fixture(scope="session", params=MYSQL_VERSIONS)
def mysql_project(request, bake):
    return bake(mysql_version=request.param)


@pytest.fixture(scope="module")
def mysql(engine, images):
    """One MySQL server, in the mysql image, for the app tier; gone after it,
    so that it takes nothing from the stacks of the Docker tier."""
    with MySQL(engine, secrets.token_hex(16)) as server:
        yield server


@pytest.fixture(scope="session")
def engine():
    """One private Docker Engine for the tiers that run the images (3, 4 and 5)."""
    engine = DockerEngine()
    with engine:
        run_dir = engine.run_dir
        yield engine
    leftovers = {kind: found for kind, found in engine.leftovers(run_dir).items() if found}
    assert leftovers == {}, f"the engine left this behind: {leftovers}"


@pytest.fixture(scope="session")
def images(engine):
    """The stand-ins' names, and the seconds it took to build them (or find them cached)."""
    started = time.monotonic()
    return standins.build(engine), time.monotonic() - started
