"""The CleanRL-style scripts train end to end on tiny budgets and log what CleanRL logs to TensorBoard."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Sessions end by step HORIZON at the latest: PPO's 64 steps per user (8 users) end 16 sessions or more,
# DQN's 250 per user (4 users) 32 or more; the test needs 10.
HORIZON = 30

TINY = {
    "cleanrl_ppo.py": [
        "--total-timesteps", "512", "--num-envs", "8", "--num-steps", "32", "--num-minibatches", "2",
        "--update-epochs", "2", "--hidden-size", "16",
    ],
    "cleanrl_dqn.py": [
        "--total-timesteps", "1000", "--num-envs", "4", "--learning-starts", "400", "--batch-size", "16",
        "--hidden-size", "16", "--buffer-size", "2000", "--target-network-frequency", "50",
    ],
}
LOSS = {"cleanrl_ppo.py": "losses/value_loss", "cleanrl_dqn.py": "losses/td_loss"}


@pytest.mark.parametrize("script", sorted(TINY))
def test_cleanrl_script_logs_episodic_returns(script, tmp_path):
    command = [
        sys.executable, str(EXAMPLES / script), *TINY[script],
        "--max-episode-steps", str(HORIZON), "--log-dir", str(tmp_path), "--seed", "3",
    ]
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mean episodic return of the last" in result.stdout.splitlines()[-1]

    (run_dir,) = tmp_path.iterdir()  # runs/{run_name}, redirected by --log-dir
    assert run_dir.name.startswith(f"DriftingUser-v0__{script[:-3]}__3__")
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("charts/episodic_return", "charts/episodic_length", "charts/SPS", LOSS[script]):
        assert tag in tags, f"{tag} not logged; logged: {tags}"

    returns = [event.value for event in events.Scalars("charts/episodic_return")]
    lengths = [event.value for event in events.Scalars("charts/episodic_length")]
    assert len(returns) == len(lengths) >= 10
    # rewards are clicks: a return counts the clicks of one session, at most one per step
    assert all(math.isfinite(r) and r >= 0 and r == int(r) for r in returns)
    assert all(1 <= length <= HORIZON for length in lengths)
    assert all(r <= length for r, length in zip(returns, lengths))
    assert max(returns) > 0
