"""The refactoring guard: a fixed-seed run always gets the same fingerprint, and any change shows."""

import json

import numpy as np

from benchmarks import fixed_seed_fingerprints as fingerprints
from benchmarks.command_line import main


def test_fingerprints_see_values_dtypes_and_shapes():
    base = fingerprints.fingerprint(np.arange(6, dtype=np.float32))
    assert base == fingerprints.fingerprint(np.arange(6, dtype=np.float32))
    assert base != fingerprints.fingerprint(np.arange(6, dtype=np.float64))
    assert base != fingerprints.fingerprint(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert base != fingerprints.fingerprint(np.arange(6, dtype=np.float32) + np.float32(1e-6))


def test_a_rollout_fingerprint_is_reproducible_and_depends_on_the_seed():
    settings = {"obs_mode": "ids", "preset": "abrupt"}
    first = fingerprints.vector_rollout(settings, seed=5)
    assert fingerprints.vector_rollout(settings, seed=5) == first
    assert fingerprints.vector_rollout(settings, seed=6) != first


def test_compare_exits_non_zero_on_a_changed_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprints, "compute", lambda data_path=None, progress=True: {"run": "aaaa", "other": "bbbb"})
    (tmp_path / "same.json").write_text(json.dumps({"run": "aaaa", "other": "bbbb"}))
    (tmp_path / "changed.json").write_text(json.dumps({"run": "aaaa", "other": "cccc"}))
    assert main(["fingerprints", "--out", str(tmp_path / "out"), "--compare", str(tmp_path / "same.json")]) == 0
    assert json.loads((tmp_path / "out" / "fingerprints.json").read_text()) == {"run": "aaaa", "other": "bbbb"}
    assert main(["fingerprints", "--out", str(tmp_path / "out"), "--compare", str(tmp_path / "changed.json")]) == 1
