"""Test-wide settings: caches go to a temporary folder, never to the user's home; pictures are
drawn off screen (human render mode opens no window during tests)."""

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("RECENV_CACHE_DIR", str(tmp_path_factory.mktemp("recenv-cache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _no_silent_first_use_training(request, monkeypatch):
    """Training an encoder for dynamics without shipped weights takes minutes; a test that would
    do it by accident (``recenv.offline.prepare_encoder``, or a comparison that prepares its
    scenarios' encoders, on new dynamics) fails instead, saying so. Building an env never trains:
    it raises ``MissingEncoderWeights``. Tests that mean to train carry
    ``@pytest.mark.first_use_training`` (and shrink the budgets)."""
    if request.node.get_closest_marker("first_use_training"):
        return
    import recenv.offline.encoder_training as training

    def refuse(config, path):
        raise RuntimeError(
            "this test would train an encoder for dynamics without shipped weights "
            f"(preset {config.preset!r}, user-model overrides {config.params!r}); use obs_mode='history' or 'ids', "
            "pass an encoder, or mark the test first_use_training"
        )

    monkeypatch.setattr(training, "train_on_first_use", refuse)


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread: batches of a few hundred users gain nothing from threads,
    and on a shared machine threads that wait for each other make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
