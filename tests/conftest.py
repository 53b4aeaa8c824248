"""Fixtures shared by every tier: the combination matrix and cached bakes."""

import pytest

PROXY_CHOICES = {
    "both": {"use_nginx": True, "use_apache": True},
    "nginx": {"use_nginx": True, "use_apache": False},
    "apache": {"use_nginx": False, "use_apache": True},
}
MYSQL_VERSIONS = ("8.4", "8.0")
COMBINATIONS = {
    f"{proxies}-mysql{version}": {**answers, "mysql_version": version}
    for proxies, answers in PROXY_CHOICES.items()
    for version in MYSQL_VERSIONS
}


@pytest.fixture(scope="session")
def bake_combination(cookies_session):
    """Bake a named combination once per session; later calls reuse it."""
    baked = {}

    def bake(name):
        if name not in baked:
            result = cookies_session.bake(extra_context=COMBINATIONS[name])
            assert result.exception is None, f"{name} failed to bake: {result.exception}"
            baked[name] = result.project_path
        return baked[name]

    return bake


@pytest.fixture(params=COMBINATIONS)
def project(request, bake_combination):
    """A baked project, once for every combination of the choice prompts."""
    return bake_combination(request.param)


@pytest.fixture(params=PROXY_CHOICES)
def proxy_project(request, bake_combination):
    """A baked project for each proxy choice (the MySQL version does not
    change what runs natively)."""
    return bake_combination(f"{request.param}-mysql8.4")
