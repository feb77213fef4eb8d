"""benchmarks/side_by_side.py: the summary arithmetic on hand-built timings, a version without
ground_truth=False, a bad revision, and a tiny end-to-end run against a git revision (timings are
not asserted)."""

import csv
import json
import math

import pytest

from benchmarks import side_by_side
from benchmarks.command_line import main
from benchmarks.side_by_side import Configuration, Timing


def test_medians_ratios_and_round_ranges_are_computed_by_hand():
    encoded, lean = Configuration(1024, "encoded", False), Configuration(1024, "encoded", True)
    speeds = {"baseline": [100.0, 300.0, 200.0], "candidate": [250.0, 450.0, 500.0]}  # user-steps in 1 s
    timings = [Timing(version, r, encoded, int(speed), 1.0) for version, values in speeds.items()
               for r, speed in enumerate(values)]
    timings.append(Timing("candidate", 0, lean, 600, 2.0))  # the baseline had no ground_truth=False
    rows = side_by_side.summarize(timings, [encoded, lean])
    assert (rows[0]["baseline_median"], rows[0]["candidate_median"]) == (200.0, 450.0)
    assert rows[0]["ratio_of_medians"] == pytest.approx(2.25)
    # Per-round ratios 2.5, 1.5, 2.5: paired within a round, not across rounds.
    assert (rows[0]["round_ratio_min"], rows[0]["round_ratio_max"], rows[0]["rounds"]) == (1.5, 2.5, 3)
    assert rows[1]["candidate_median"] == 300.0 and math.isnan(rows[1]["baseline_median"]) and rows[1]["rounds"] == 0
    table = side_by_side.markdown(rows, "old", "new")
    assert "| N = 1,024, encoded | 200 | 450 | 2.25× | 1.50×–2.50× | 3 |" in table
    assert "| N = 1,024, encoded, ground_truth=False | — | 300 | — |" in table


def test_a_version_that_is_neither_a_checkout_nor_a_revision_is_refused(tmp_path):
    with (pytest.raises(ValueError, match="neither a checkout of recenv nor a revision"),
          side_by_side.checkout(str(tmp_path / "no-such-revision"))):
        pass


def test_a_revision_is_timed_from_its_own_worktree_beside_this_checkout(tmp_path):
    out = tmp_path / "out"
    text = main(["side-by-side", "--torch-threads", "1", "--baseline", "HEAD", "--users", "4", "--obs-modes", "ids", "--lean", "--rounds", "1",
                              "--seconds", "0.05", "--out", str(out)])
    with open(out / "side_by_side.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert sorted((r["version"], r["lean"]) for r in rows) == [
        ("baseline", "False"), ("baseline", "True"), ("candidate", "False"), ("candidate", "True")]
    assert all(float(r["user_steps_per_second"]) > 0 for r in rows)
    summary = json.loads((out / "side_by_side.json").read_text())
    assert summary["versions"]["baseline"] != "not a git checkout"
    assert "ratio of medians" in text
    # The temporary worktree is gone again.
    assert not any("recenv-side-by-side-" in line for line in
                   side_by_side.subprocess.run(["git", "-C", str(side_by_side.REPOSITORY), "worktree", "list"],
                                               capture_output=True, text=True, check=True).stdout.splitlines())
