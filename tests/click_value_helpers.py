"""Helpers shared by the tests of the agents built on a click model and afterstate values
(tests/test_long_term_value.py, tests/test_slate_q.py)."""

import numpy as np
import torch


def click_logits(env, observations):
    """The env's public next-click LSTM's logits for every item, from encoded observations."""
    hidden = torch.as_tensor(observations[:, :-2], dtype=torch.float32)
    embeddings = torch.as_tensor(np.array(env.catalog.embeddings), dtype=torch.float32)
    with torch.no_grad():
        return env.encoder.click_logits_all(hidden, embeddings).numpy()


def randomise(values, seed=0):
    """Every parameter of a module drawn from N(0, 1) (W ≡ 0 at the start would hide the values)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in values.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
