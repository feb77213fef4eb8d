"""The service's observations from a logged history equal the env's, in every obs_mode."""

from __future__ import annotations

import numpy as np
import pytest

from recenv import DriftingUserEnv, EnvConfig
from recenv.public_view import public_view
from serving.observer import HistoryObserver


@pytest.mark.parametrize("obs_mode", ["encoded", "history", "ids"])
def test_replayed_history_gives_the_env_observations(obs_mode):
    env = DriftingUserEnv(config=EnvConfig(obs_mode=obs_mode, history_length=4, device="cpu"))
    view = public_view(env)
    encoder = view.encoder if obs_mode == "encoded" else None
    observer = HistoryObserver(obs_mode, np.asarray(view.catalog.embeddings), view.config.max_episode_steps,
                               view.config.history_length, encoder)
    rng = np.random.default_rng(3)
    checked = 0
    for seed in (0, 1):
        observation, _ = env.reset(seed=seed)
        past_items, past_clicks = (list(map(int, a)) for a in view.warmup_history())
        items, clicks = list(past_items), list(past_clicks)
        state = observer.start(past_items, past_clicks)
        steps = session_clicks = 0
        while True:
            mine = observer.observe(state, items, clicks, steps, session_clicks)
            assert mine.shape == env.observation_space.shape and mine.dtype == observation.dtype
            np.testing.assert_allclose(mine, observation, atol=1e-5, err_msg=f"seed {seed}, step {steps}")
            checked += 1
            action = int(rng.integers(env.action_space.n))
            observation, reward, terminated, truncated, _ = env.step(action)
            click = int(reward)
            state = observer.advance(state, action, click)
            items.append(action)
            clicks.append(click)
            steps += 1
            session_clicks += click
            if terminated or truncated:
                break
    assert checked > 10


def test_encoded_mode_needs_the_encoder():
    with pytest.raises(ValueError, match="needs the encoder"):
        HistoryObserver("encoded", np.zeros((3, 4), dtype=np.float32), 200, 10, None)
