"""recenv: a Gymnasium simulator of recommendation users whose interests drift.

``import recenv`` registers ``DriftingUser-v0``::

    import gymnasium as gym
    import recenv

    env = gym.make("DriftingUser-v0")                       # one user
    envs = gym.make_vec("DriftingUser-v0", num_envs=1024)   # 1024 users as one batch of tensors

The package is layered; each layer imports only from those below it (``pyproject.toml`` holds the
import-linter contracts that keep it so, ``docs/development.md`` the picture). Offline tooling (log
collection, encoder training, click predictors, drift statistics and fitting) is in
:mod:`recenv.offline`, which ``import recenv`` does not load.
"""

from gymnasium.envs.registration import register, registry

from recenv.catalog import Catalog, default_catalog
from recenv.config import DEFAULT_MAX_EPISODE_STEPS, OBS_MODES, EnvConfig
from recenv.env import DriftingUserEnv
from recenv.observation import session_clock, split_session_context, unflatten_history
from recenv.params import UserModelParams
from recenv.presets import PRESET_NAMES, SYNTHETIC_PRESETS, make_params
from recenv.vector_env import DriftingUserVectorEnv
from recenv.vector_wrappers import wrap_users

__all__ = [
    "Catalog",
    "DEFAULT_MAX_EPISODE_STEPS",
    "DriftingUserEnv",
    "DriftingUserVectorEnv",
    "EnvConfig",
    "OBS_MODES",
    "PRESET_NAMES",
    "SYNTHETIC_PRESETS",
    "UserModelParams",
    "default_catalog",
    "make_params",
    "session_clock",
    "split_session_context",
    "unflatten_history",
    "wrap_users",
]

__version__ = "0.1.0"

# No max_episode_steps here: both envs truncate at their config's horizon themselves, so that
# gym.make(config=...) and gym.make_vec(config=...) keep the config's horizon as it is.
if "DriftingUser-v0" not in registry:
    register(
        id="DriftingUser-v0",
        entry_point="recenv.env:DriftingUserEnv",
        vector_entry_point="recenv.vector_env:DriftingUserVectorEnv",
    )
