"""recenv: a Gymnasium simulator of recommendation users whose interests drift.

``import recenv`` registers ``DriftingUser-v0``::

    import gymnasium as gym
    import recenv

    env = gym.make("DriftingUser-v0")                       # one user
    envs = gym.make_vec("DriftingUser-v0", num_envs=1024)   # 1024 users as one batch of tensors
"""

from gymnasium.envs.registration import register, registry

from recenv.catalog import Catalog, default_catalog
from recenv.env import OBS_MODES, DriftingUserEnv
from recenv.observation import unflatten_history
from recenv.params import PRESETS, UserModelParams, make_params
from recenv.vector_env import DriftingUserVectorEnv

__all__ = [
    "Catalog",
    "DEFAULT_MAX_EPISODE_STEPS",
    "DriftingUserEnv",
    "DriftingUserVectorEnv",
    "OBS_MODES",
    "PRESETS",
    "UserModelParams",
    "default_catalog",
    "make_params",
    "unflatten_history",
]

__version__ = "0.1.0"

DEFAULT_MAX_EPISODE_STEPS = 200
"""The horizon T of ``DriftingUser-v0``: sessions are truncated after this many steps."""

if "DriftingUser-v0" not in registry:
    register(
        id="DriftingUser-v0",
        entry_point="recenv.env:DriftingUserEnv",
        vector_entry_point="recenv.vector_env:DriftingUserVectorEnv",
        max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
    )
