"""benchmarks/learner_arithmetic.py: the matrix-product counter on a hand-built layer, the ceiling's
arithmetic, and a tiny end-to-end run of the DQN (timings are not asserted)."""

import functools
import json

import pytest
import torch

from benchmarks import learner_arithmetic
from benchmarks.command_line import main
from benchmarks.learner_arithmetic import Arithmetic, MatrixProductCounter


def test_the_counter_sees_a_layers_forward_and_backward_products_and_changes_nothing():
    layer = torch.nn.Linear(3, 5)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    expected = layer(x) @ torch.ones(5, 2)
    with MatrixProductCounter() as counter:
        y = layer(x) @ torch.ones(5, 2)  # addmm (8, 3, 5), then mm (8, 5, 2)
        y.sum().backward()  # mm (8, 2, 5) for the layer's output grad, mm (5, 8, 3) for its weight grad
    assert torch.equal(y, expected)
    assert counter.calls == {(8, 3, 5): 1, (8, 5, 2): 1, (8, 2, 5): 1, (5, 8, 3): 1}


def test_the_ceiling_is_a_thousand_user_steps_over_their_matrix_seconds():
    row = Arithmetic("DQN-embedding", 2, 40_000, 5_000.0, gigaflop_per_thousand_user_steps=7.5,
                     matrix_seconds_per_thousand_user_steps=0.05, gigaflop_per_second=150.0)
    assert row.ceiling == pytest.approx(20_000.0)
    assert "| `DQNAgent` (embedding head) | 2 | 7.50 GFLOP | 50 ms (150 GFLOP/s) | 20,000 | 5,000 |" in (
        learner_arithmetic.markdown([row]))


def test_the_script_counts_the_dqns_steady_state_products(tmp_path, monkeypatch):
    # Runs of 6,000 and 12,000 user-steps: the DQN learns from its 5,000th, so both take gradient steps.
    # Each of the ~20 product shapes is timed for 0.02 s instead of 0.2 s (still 10 calls or more):
    # timings are not asserted, and the counts do not depend on them.
    monkeypatch.setattr(learner_arithmetic, "seconds_per_product",
                        functools.partial(learner_arithmetic.seconds_per_product, min_seconds=0.02))
    main(["learner-arithmetic", "--steps", "6000", "--learner-threads", "1", "--torch-threads", "1", "--out",
          str(tmp_path)])
    (row,) = json.loads((tmp_path / "learner_arithmetic.json").read_text())["results"]
    # Two gradient steps of 256 per 64 user-steps, each ~0.2 GFLOP of products: several GFLOP per 1,000.
    assert 3.0 < row["gigaflop_per_thousand_user_steps"] < 15.0
    assert row["ceiling"] > 0 and row["user_steps"] >= 12_000
