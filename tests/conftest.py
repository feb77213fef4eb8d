"""Test-wide settings: caches go to a temporary folder, never to the user's home."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("RECENV_CACHE_DIR", str(tmp_path_factory.mktemp("recenv-cache")))
    yield
    patch.undo()
