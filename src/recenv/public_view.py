"""The public view: what a non-privileged agent may read, and an error for anything else.

The information policy (``docs/model.md`` §5) says a non-privileged agent sees observations,
rewards, the terminated/truncated flags, the users' logged past and the catalog's public side
(texts, titles, topics, embeddings and the latents derived from them) — never the clickbait scores,
the quality, the ground truth in ``info``, the user state or the true click probabilities. The
comparison (:mod:`benchmarks.protocol`) and the evaluation harness (:func:`agents.run_sessions`)
hand every agent that does not declare ``privileged = True`` these views instead of the env, the
catalog and the training logs:

- :class:`PublicCatalog`: the catalog without ``quality`` and ``clickbait``;
- :class:`PublicVectorEnv` / :class:`PublicEnv`: the env's Gymnasium API with the ground-truth keys
  removed from ``info`` (:data:`GROUND_TRUTH_INFO_KEYS`), the public accessors
  (``warmup_history()``, ``recent_items()``, ``catalog``, ``config`` and ``user_model`` — the
  population's parameters are documented, not any user's state —, ``encoder``, spaces) and nothing else; ``unwrapped`` is the view itself;
- :class:`PublicLog`: an :class:`~recenv.offline.logs.InteractionLog` without its
  ``click_probability`` column.

Reaching for anything hidden raises :class:`InformationPolicyError`, which names what was read.
The views stop honest mistakes and make a breach explicit; they are not a sandbox (Python lets a
determined caller reach the wrapped object).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from recenv.catalog import Catalog
from recenv.env import DriftingUserEnv
from recenv.offline.logs import InteractionLog, LoggedSessions
from recenv.vector_env import DriftingUserVectorEnv

__all__ = [
    "GROUND_TRUTH_INFO_KEYS",
    "InformationPolicyError",
    "PublicCatalog",
    "PublicEnv",
    "PublicLog",
    "PublicVectorEnv",
    "public_view",
]

GROUND_TRUTH_INFO_KEYS = ("click_probability", "best_click_probability", "patience", "regime_shift",
                          "slot_click_probability")
"""Step ``info`` keys that only the simulator knows; the public views drop them (and their ``_`` masks)."""

_POLICY = "docs/model.md §5 (the information policy)"


class InformationPolicyError(PermissionError):
    """A non-privileged agent read something the information policy hides from it.

    Not an ``AttributeError``, so ``getattr(x, name, default)`` cannot swallow it.
    """


def _refuse(owner: str, name: str, why: str) -> InformationPolicyError:
    return InformationPolicyError(
        f"a non-privileged agent tried to read {owner}.{name} ({why}); see {_POLICY}. "
        "A reference that needs it must declare `privileged = True`, and is marked privileged in every table."
    )


class PublicCatalog:
    """The public side of a :class:`~recenv.catalog.Catalog`: everything but ``quality`` and ``clickbait``."""

    _PUBLIC = frozenset({
        "texts", "titles", "topics", "topic_names", "embeddings", "model_id", "latent_dim", "num_items",
        "num_topics", "embedding_dim", "projection_mean", "projection", "project", "latents",
        "topic_centroids", "latent_of_text", "fingerprint",
    })
    _HIDDEN: ClassVar[dict[str, str]] = {"quality": "item quality is hidden", "clickbait": "clickbait scores are hidden"}

    __slots__ = ("__catalog",)

    def __init__(self, catalog: Catalog):
        self.__catalog = catalog

    def __getattr__(self, name: str) -> Any:
        if name in self._HIDDEN:
            raise _refuse("catalog", name, self._HIDDEN[name])
        if name in self._PUBLIC:
            return getattr(self.__catalog, name)
        raise AttributeError(f"the public catalog has no attribute {name!r}; public: {sorted(self._PUBLIC)}")

    def __len__(self) -> int:
        return len(self.__catalog)

    def __repr__(self) -> str:
        return f"PublicCatalog({self.__catalog!r})"


_ENV_PUBLIC = frozenset({
    "config", "preset", "obs_mode", "encoder", "max_episode_steps", "device", "array_type",
    "warmup_history", "recent_items", "recent_clicks", "spec", "user_model",
})
_ENV_HIDDEN = {
    "user_state": "the user's hidden state",
    "click_probabilities": "the true click probabilities",
    "suppress_regime_shifts": "scripting the simulation is for the evaluation harness",
    "_simulator": "the simulator's internals",
    "_observer": "the observation builder's internals",
}


def _strip_info(info: dict[str, Any]) -> dict[str, Any]:
    hidden = set(GROUND_TRUTH_INFO_KEYS) | {f"_{key}" for key in GROUND_TRUTH_INFO_KEYS}
    public = {key: value for key, value in info.items() if key not in hidden}
    if isinstance(public.get("final_info"), dict):
        public["final_info"] = _strip_info(public["final_info"])
    return public


class _PublicAccessors:
    """What both views share: ``self._outer`` is the env they were given (wrappers included), which
    they step; ``self._inner`` the recenv env under it, whose public accessors they forward."""

    _outer: Any
    _inner: DriftingUserEnv | DriftingUserVectorEnv

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        observation, info = self._outer.reset(seed=seed, options=options)
        return observation, _strip_info(info)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self._outer.step(actions)
        return observation, reward, terminated, truncated, _strip_info(info)

    def render(self) -> Any:
        # Every render mode shows hidden state: the pictures the true interest, picture and text the patience.
        raise _refuse("env", "render()", "its pictures and texts show the user's true interest and patience; "
                      "render the env itself, for people")

    def __getattr__(self, name: str) -> Any:
        if name in _ENV_HIDDEN:
            raise _refuse("env", name, _ENV_HIDDEN[name])
        if name in _ENV_PUBLIC:
            return getattr(self._inner, name)
        raise AttributeError(f"the public view of the env has no attribute {name!r}; public: {sorted(_ENV_PUBLIC)}")

    @property
    def catalog(self) -> PublicCatalog:
        return PublicCatalog(self._inner.catalog)

    @property
    def unwrapped(self) -> Any:
        """The view itself: the env underneath is not public."""
        return self

    def get_wrapper_attr(self, name: str) -> Any:
        return getattr(self, name)


class PublicVectorEnv(_PublicAccessors, VectorEnv):
    """A :class:`~recenv.vector_env.DriftingUserVectorEnv` as a non-privileged agent sees it."""

    def __init__(self, env: DriftingUserVectorEnv):
        inner = env.unwrapped
        if not isinstance(inner, DriftingUserVectorEnv):
            raise TypeError(f"PublicVectorEnv wraps a DriftingUserVectorEnv, got {type(inner).__name__}")
        self.__dict__["_inner"] = inner
        self.__dict__["_outer"] = env
        self.num_envs = inner.num_envs
        self.metadata = inner.metadata
        self.render_mode = None
        self.single_observation_space, self.single_action_space = inner.single_observation_space, inner.single_action_space
        self.observation_space, self.action_space = inner.observation_space, inner.action_space

    def close(self, **kwargs: Any) -> None:
        self._outer.close(**kwargs)

    def __repr__(self) -> str:
        return f"PublicVectorEnv({self._inner!r})"


class PublicEnv(_PublicAccessors, gym.Env):
    """A :class:`~recenv.env.DriftingUserEnv` (possibly under Gymnasium wrappers) as a
    non-privileged agent sees it; a Gymnasium env itself, so SB3 can train on it."""

    def __init__(self, env: gym.Env):
        inner = env.unwrapped
        if not isinstance(inner, DriftingUserEnv):
            raise TypeError(f"PublicEnv wraps a DriftingUserEnv, got {type(inner).__name__}")
        self.__dict__["_inner"] = inner
        self.__dict__["_outer"] = env
        self.metadata = inner.metadata
        self.render_mode = None  # render() is refused: it shows hidden state
        self.observation_space, self.action_space = inner.observation_space, inner.action_space

    def close(self) -> None:
        self._outer.close()


class PublicSessions:
    """:class:`~recenv.offline.logs.LoggedSessions` without ``click_probability``."""

    _PUBLIC = frozenset({"items", "clicks", "mask", "steps", "users", "propensity", "slots"})

    __slots__ = ("__sessions",)

    def __init__(self, sessions: LoggedSessions):
        self.__sessions = sessions

    def __getattr__(self, name: str) -> Any:
        if name == "click_probability":
            raise _refuse("log sessions", name, "the simulator's true click probabilities are not in a deployable log")
        if name in self._PUBLIC:
            return getattr(self.__sessions, name)
        raise AttributeError(f"the public log sessions have no attribute {name!r}; public: {sorted(self._PUBLIC)}")

    def __len__(self) -> int:
        return len(self.__sessions)

    def select(self, index: np.ndarray) -> PublicSessions:
        return PublicSessions(self.__sessions.select(index))


class PublicLog:
    """An :class:`~recenv.offline.logs.InteractionLog` as a deployed system would have recorded it:
    ``user``, ``step``, ``slot``, ``item``, ``click``, ``propensity``, ``metadata`` — no ``click_probability``."""

    _PUBLIC = frozenset({"user", "step", "slot", "item", "click", "propensity", "metadata", "num_users"})

    __slots__ = ("__log",)

    def __init__(self, log: InteractionLog):
        self.__log = log

    def __getattr__(self, name: str) -> Any:
        if name == "click_probability":
            raise _refuse("log", name, "the simulator's true click probabilities are not in a deployable log")
        if name in self._PUBLIC:
            return getattr(self.__log, name)
        raise AttributeError(f"the public log has no attribute {name!r}; public: {sorted(self._PUBLIC | {'sessions', 'select_users'})}")

    def __len__(self) -> int:
        return len(self.__log)

    def sessions(self) -> PublicSessions:
        return PublicSessions(self.__log.sessions())

    def select_users(self, users: np.ndarray) -> PublicLog:
        return PublicLog(self.__log.select_users(users))


def public_view(thing: Any) -> Any:
    """The public view of an env (scalar or vector, wrapped or not), a catalog or a log; a view is
    returned as it is."""
    if isinstance(thing, (PublicEnv, PublicVectorEnv, PublicCatalog, PublicLog)):
        return thing
    if isinstance(thing, Catalog):
        return PublicCatalog(thing)
    if isinstance(thing, InteractionLog):
        return PublicLog(thing)
    inner = getattr(thing, "unwrapped", None)
    if isinstance(inner, DriftingUserVectorEnv):
        return PublicVectorEnv(thing)
    if isinstance(inner, DriftingUserEnv):
        return PublicEnv(thing)
    raise TypeError(f"no public view of {type(thing).__name__}: expected a DriftingUser-v0 env, a Catalog or an InteractionLog")
