"""run_counterfactual_sessions replays the factual run with the first regime shift scripted off, and nothing else."""

import numpy as np

from agents import RandomAgent, first_shift_steps, run_counterfactual_sessions
from recenv import DriftingUserVectorEnv, EnvConfig


def test_a_random_agent_is_coupled_before_the_shift_in_every_batch():
    """Batches run until their last user leaves, which a suppressed shift can change: the replay
    must still give later batches the factual run's random draws."""
    config = EnvConfig(params={"regime_shift_prob": 0.2}, obs_mode="ids", device="cpu")
    agent = RandomAgent(DriftingUserVectorEnv(num_envs=1, config=config), seed=3)
    factual, counterfactual = run_counterfactual_sessions(agent, num_users=48, seed=7, config=config, batch_size=8,
                                                          progress=False)
    onsets = first_shift_steps(factual)
    lengths = [len(f) != len(c) for f, c in zip(factual.items, counterfactual.items)]
    assert any(lengths)  # some suppressed shift changed a session's length
    for onset, f, c in zip(onsets, factual.items, counterfactual.items):
        before = len(f) if onset < 0 else onset
        np.testing.assert_array_equal(f[:before], c[:before])
