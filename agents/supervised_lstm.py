"""SupervisedLSTMAgent: greedy on the next-click LSTM's predicted click probability."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.base import BaseAgent, unwrap_env
from recenv.observation import split_session_context

__all__ = ["SupervisedLSTMAgent"]


class SupervisedLSTMAgent(BaseAgent):
    """The supervised baseline: recommend ``argmax_i P(click | history, item i)``.

    The probability comes from the next-click LSTM of :mod:`recenv.encoder` — the same network that
    encodes observations. With ``obs_mode="encoded"`` the observation *is* the LSTM state after the
    user's whole history, updated with each step's feedback, so the agent scores all items from it
    directly (the session context at the end of the observation plays no part). It predicts the next
    click only (myopic) and does no reinforcement learning.

    :param env: an env with ``obs_mode="encoded"``.
    :param encoder: the model to score with (default: the env's own encoder).
    """

    def __init__(self, env: Any, encoder: Any = None):
        super().__init__(env)
        inner = unwrap_env(env)
        if self.obs_mode != "encoded":
            raise ValueError(f"SupervisedLSTMAgent reads LSTM states: use obs_mode='encoded', not {self.obs_mode!r}")
        self.encoder = encoder if encoder is not None else inner.encoder
        self.device = next(self.encoder.parameters()).device
        self._item_embeddings = torch.as_tensor(np.array(self.catalog.embeddings), device=self.device)

    def click_probabilities(self, observation: Any) -> np.ndarray:
        """P(click) the LSTM predicts for every item, ``(B, N)`` (or ``(N,)`` for one observation)."""
        batch, single = self._as_batch(observation)
        with torch.no_grad():
            hidden = torch.as_tensor(split_session_context(batch)[0], dtype=torch.float32, device=self.device)
            probabilities = torch.sigmoid(self.encoder.click_logits_all(hidden, self._item_embeddings)).cpu().numpy()
        return probabilities[0] if single else probabilities

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        return self._result(np.atleast_2d(self.click_probabilities(batch)).argmax(1), single), state
