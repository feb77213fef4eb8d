"""Test-wide settings: caches go to a temporary folder, never to the user's home."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("RECENV_CACHE_DIR", str(tmp_path_factory.mktemp("recenv-cache")))
    yield
    patch.undo()


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread: batches of a few hundred users gain nothing from threads,
    and on a shared machine threads that wait for each other make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
