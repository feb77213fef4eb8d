"""PPOAgent: GAE by hand, learning fills the log and moves the policy, persistence, the public view."""

import numpy as np
import pytest
import torch

from agents import PPOAgent, PPOConfig, run_sessions
from agents.ppo import generalized_advantages
from agents.training_log import TrainingLog
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.public_view import PublicVectorEnv, public_view

SMALL = PPOConfig(hidden_size=32, item_size=16, num_steps=16, num_minibatches=2, update_epochs=2, learning_rate=3e-3)


def _public_env(num_envs=8):
    return public_view(DriftingUserVectorEnv(num_envs=num_envs, config=EnvConfig(preset="mixed", device="cpu")))


def _observations(env, seed=0, steps=5):
    """A batch of observations from a few random steps (so they are not all session starts)."""
    observation, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        observation, *_ = env.step(rng.integers(env.catalog.num_items, size=env.num_envs))
    return np.array(observation)


def test_gae_matches_a_hand_computed_rollout():
    """Three users, three vector steps. User 0 clicks, then terminates; step 2 is its reset step (no
    transition). User 1 is truncated at step 0 (bootstrapped from its final observation), step 1 is
    its reset step, step 2 the first step of its next session. User 2 has no reset steps (as in
    same-step autoreset): the chain must stop at its truncation and at its termination by itself."""
    gamma, lam = 0.9, 0.8
    t = lambda rows, dtype=torch.float32: torch.tensor(rows, dtype=dtype)
    rewards = t([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = t([[0.5, 0.2, 0.3], [0.4, 0.7, 0.2], [0.3, 0.1, 0.6]])
    next_values = t([[0.4, 0.6, 0.5], [0.3, 0.1, 0.4], [0.2, 0.5, 0.7]])
    terminated = t([[False, False, False], [True, False, True], [False, False, False]], torch.bool)
    truncated = t([[False, True, True], [False, False, False], [False, False, False]], torch.bool)
    valid = t([[True, True, True], [True, False, True], [False, True, True]], torch.bool)
    advantages, returns = generalized_advantages(rewards, values, next_values, terminated, truncated, valid, gamma, lam)

    # user 0: δ0 = 1 + 0.9·0.4 − 0.5 = 0.86, δ1 = 0 − 0.4 (terminated: no bootstrap); A1 = −0.4,
    # A0 = 0.86 + 0.9·0.8·(−0.4) = 0.572; the reset step gets 0.
    # user 1: A0 = δ0 = 1 + 0.9·0.6 − 0.2 = 1.34 (truncated: bootstrap, but no chain into the reset step);
    # A2 = δ2 = 1 + 0.9·0.5 − 0.1 = 1.35.
    # user 2: A2 = 0.9·0.7 − 0.6 = 0.03; A1 = 1 − 0.2 = 0.8 (terminated: neither bootstrap nor chain);
    # A0 = 0.9·0.5 − 0.3 = 0.15 (truncated: bootstrap, no chain; chaining would give 0.726).
    expected = t([[0.572, 1.34, 0.15], [-0.4, 0.0, 0.8], [0.0, 1.35, 0.03]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, t([[1.072, 1.54, 0.45], [0.0, 0.0, 1.0], [0.0, 1.45, 0.63]]))


def test_a_short_learn_fills_the_log_and_changes_the_policy(one_torch_thread):
    env = _public_env()
    agent = PPOAgent(env, SMALL, device="cpu")
    agent.log = TrainingLog(every=500)
    batch = _observations(_public_env(16), seed=3)
    with torch.no_grad():
        before = agent.logits(batch).clone()
    agent.learn(env, 3_000, progress=False)
    history = agent.log.history
    assert len(history) >= 6
    assert 3_000 <= history[-1]["steps"] < 3_000 + 8 * 16  # the budget counts transitions, little overshoot
    assert [row["steps"] for row in history] == sorted(row["steps"] for row in history)
    for key in ("episode_return", "policy_loss", "value_loss", "entropy", "approx_kl", "explained_variance"):
        assert np.isfinite(history[-1][key]), key
    assert 0.0 < history[-1]["entropy"] <= np.log(agent.num_items) + 1e-4
    with torch.no_grad():
        after = agent.logits(batch)
    assert (after - before).abs().max() > 1e-3


def test_the_reset_step_after_a_session_is_no_transition(monkeypatch, one_torch_thread):
    """In next-step autoreset the step after a user's session ended resets them: learn must hand
    GAE (and so the losses) a mask that is False exactly there."""
    from agents import ppo

    rollouts = []

    def spy(rewards, values, next_values, terminated, truncated, valid, gamma, gae_lambda):
        rollouts.append((rewards.clone(), terminated | truncated, valid.clone()))
        # within a rollout, the value of the observation a step returned is the next step's value
        torch.testing.assert_close(next_values[:-1], values[1:])
        return generalized_advantages(rewards, values, next_values, terminated, truncated, valid, gamma, gae_lambda)

    monkeypatch.setattr(ppo, "generalized_advantages", spy)
    env = _public_env()
    PPOAgent(env, SMALL, device="cpu").learn(env, 1_500, progress=False)
    rewards, done, valid = (torch.cat([rollout[i] for rollout in rollouts]) for i in range(3))
    assert (~valid).sum() >= 8  # sessions ended (and were reset) during training
    assert valid[0].all()
    torch.testing.assert_close(valid[1:], ~done[:-1])
    assert (rewards[~valid] == 0).all() and not done[~valid].any()
    assert len(rollouts) >= 6


def test_save_and_load_give_the_same_actions(tmp_path, one_torch_thread):
    env = _public_env()
    trained = PPOAgent(env, SMALL, device="cpu").learn(env, 1_000, progress=False)
    path = trained.save(tmp_path / "ppo.pt")
    other = PPOAgent(env, PPOConfig(hidden_size=32, item_size=16, seed=1), device="cpu")
    batch = _observations(_public_env(32), seed=4)
    expected, _ = trained.predict(batch)
    assert not np.array_equal(other.predict(batch)[0], expected)  # a different agent acts otherwise ...
    loaded = other.load(path)
    np.testing.assert_array_equal(loaded.predict(batch)[0], expected)  # ... until it loads the file
    assert loaded.config == trained.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.value(torch.as_tensor(batch)), trained.value(torch.as_tensor(batch)))


def test_stochastic_predict_uses_the_agents_own_generator(one_torch_thread):
    env = _public_env()
    batch = _observations(env)
    first, second = PPOAgent(env, SMALL, device="cpu"), PPOAgent(env, SMALL, device="cpu")
    global_state = torch.random.get_rng_state()
    sampled = first.predict(batch, deterministic=False)[0]
    assert torch.equal(torch.random.get_rng_state(), global_state)  # no global RNG
    np.testing.assert_array_equal(second.predict(batch, deterministic=False)[0], sampled)
    # a near-uniform policy over 500 items samples different items, not its argmax
    assert len(set(sampled.tolist())) > 1 and not np.array_equal(sampled, first.predict(batch)[0])
    action, _ = first.predict(batch[0], deterministic=False)
    assert np.ndim(action) == 0 and 0 <= int(action) < first.num_items


def test_learns_and_is_evaluated_on_the_public_view(one_torch_thread):
    env = _public_env()
    assert isinstance(env, PublicVectorEnv)
    agent = PPOAgent(env, SMALL, device="cpu").learn(env, 500, progress=False)
    records = run_sessions(agent, 16, seed=1_000_000, config=EnvConfig(preset="mixed", device="cpu"), progress=False)
    assert len(records.returns) == 16 and np.all(records.returns >= 0)


def test_learn_refuses_a_scalar_env_and_other_autoreset_modes():
    import gymnasium as gym

    env = gym.make("DriftingUser-v0", device="cpu")
    with pytest.raises(TypeError, match="vector env"):
        PPOAgent(env, SMALL, device="cpu").learn(env, 100, progress=False)
    same_step = DriftingUserVectorEnv(num_envs=2, autoreset_mode="same_step", config=EnvConfig(device="cpu"))
    with pytest.raises(ValueError, match="next-step autoreset"):
        PPOAgent(same_step, SMALL, device="cpu").learn(same_step, 100, progress=False)
