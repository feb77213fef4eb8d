"""benchmarks/scaling.py: generated catalogs, the per-user memory and slope arithmetic, and a tiny
end-to-end run (timings are not asserted)."""

import csv

import numpy as np
import pytest

from benchmarks import scaling
from benchmarks.command_line import main


def test_generated_catalogs_keep_the_shipped_topics_and_grow_to_any_size():
    small, large = scaling.generated_catalog(300), scaling.generated_catalog(1_200)
    assert (small.num_items, large.num_items) == (300, 1_200)
    assert set(small.topic_names) <= set(large.topic_names)
    base = scaling.generated_catalog(500)
    # Item j of a large catalog is a noisy copy of shipped item j mod 500, with its topic.
    assert [large.topic_names[t] for t in large.topics[500:1000]] == [base.topic_names[t] for t in base.topics]
    cosine = np.sum(large.embeddings[500:1000] * base.embeddings, axis=1)
    assert 0.8 < cosine.mean() < 0.99  # close to its source, not equal to it


def test_memory_per_user_and_slopes_are_computed_by_hand():
    rows = [{"num_users": 1, "resident_bytes": 1000}, {"num_users": 11, "resident_bytes": 3000},
            {"num_users": 101, "resident_bytes": 21_000}]
    per_user = scaling.memory_per_user(rows)
    assert np.isnan(per_user[0]) and per_user[1:] == [200.0, 200.0]
    assert scaling.slope([0, 1, 2], [3.0, 5.0, 7.0]) == pytest.approx((3.0, 2.0))


def _one_row_in_a_fresh_process(monkeypatch, fresh_row):
    """Measure the configuration ``fresh_row`` (``(num_users, num_items, ground_truth)``) in a fresh
    process as the script does, every other one with ``scaling.measure`` (what that process runs) in
    this one; returns the list of configurations asked for, in order.

    Each fresh process costs seconds of imports on a small machine; one with values other than the
    defaults (many users, a larger catalog, ground_truth=False) shows that every argument reaches
    the process and comes back in its row, the others check the plan and the report."""
    real, planned = scaling._in_fresh_process, []

    def measure(num_users, num_items, ground_truth, seconds, device="cpu", array_type="numpy", threads=1):
        planned.append((num_users, num_items, ground_truth))
        if (num_users, num_items, ground_truth) == fresh_row:
            return real(num_users, num_items, ground_truth, seconds, device, array_type, threads)
        return scaling.measure(num_users, num_items, ground_truth, seconds, device=device, array_type=array_type)

    monkeypatch.setattr(scaling, "_in_fresh_process", measure)
    return planned


def test_the_script_writes_its_tables_and_plot(tmp_path, monkeypatch):
    planned = _one_row_in_a_fresh_process(monkeypatch, (1024, 800, False))
    text = main(["scaling", "--torch-threads", "1", "--users", "1", "8", "--items", "500", "800", "--seconds", "0.05", "--out", str(tmp_path)])
    with open(tmp_path / "scaling.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["curve"], r["num_users"], r["num_items"], r["ground_truth"]) for r in rows] == [
        ("users", "1", "500", "True"), ("users", "8", "500", "True"),
        ("items", "1024", "500", "True"), ("items", "1024", "500", "False"),
        ("items", "1024", "800", "True"), ("items", "1024", "800", "False"),
    ]
    assert planned == [(int(r["num_users"]), int(r["num_items"]), r["ground_truth"] == "True") for r in rows]
    assert (1024, 800, False) in planned  # the row measured in a fresh process
    assert all(float(r["user_steps_per_second"]) > 0 and int(r["resident_bytes"]) > 0 for r in rows)
    assert "per 1,000 items per user-step" in text and (tmp_path / "scaling.png").stat().st_size > 0


def test_memory_is_the_devices_on_a_gpu_and_the_resident_set_elsewhere():
    rows = [{"num_users": 1, "device": "cuda:0", "resident_bytes": 10**9, "device_bytes": 1000},
            {"num_users": 11, "device": "cuda:0", "resident_bytes": 5 * 10**9, "device_bytes": 3000}]
    assert [scaling.memory_bytes(r) for r in rows] == [1000, 3000]
    assert scaling.memory_per_user(rows)[1] == 200.0  # the host's resident set does not count on a GPU
    assert scaling.memory_bytes({"num_users": 1, "device": "cpu", "resident_bytes": 7, "device_bytes": 0}) == 7


def test_outputs_kept_as_tensors_are_timed_too(tmp_path, monkeypatch):
    # --array-type torch is how the GPU run avoids copying a million users' observations to the host.
    # Three rows, one of them in a fresh process (seconds of imports each): the array type must reach it.
    planned = _one_row_in_a_fresh_process(monkeypatch, (1024, 500, False))
    text = main(["scaling", "--torch-threads", "1", "--users", "1", "--items", "500", "--seconds", "0.05", "--array-type", "torch",
                         "--out", str(tmp_path)])
    with open(tmp_path / "scaling.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert (1024, 500, False) in planned and len(rows) == 3
    assert {(r["device"], r["array_type"]) for r in rows} == {("cpu", "torch")}
    assert "cpu, torch outputs" in text
