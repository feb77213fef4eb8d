"""The served recommender: an agent, loaded once, that ranks the catalog for a logged history.

A service has no simulated user, only the history it was told about; :class:`ServedRecommender`
turns a history into the agent's observation (:class:`serving.observer.HistoryObserver`, the same
observation the env would give) and ranks items by the agent's own scores:

=======================  ==========================================  ===================
agent (file ``agent``)    score of an item                            shown items
=======================  ==========================================  ===================
SupervisedLSTMAgent       logit of the LSTM's P(click)                left out (its rule)
DQNAgent                  Q(s, item)                                  kept
PPOAgent                  the policy's logit                          kept
QLearningAgent            Q(abstract state, item)                     kept
LongTermValueAgent        Q(s, item) with the session's click counts  kept
SB3DQNAgent               SB3's Q-network output                      kept
SB3PPOAgent               the SB3 policy's logit                      kept
=======================  ==========================================  ===================

The first item of a ranking is the agent's ``predict()`` choice for that observation (ties aside;
for the supervised model, whose rule never re-shows an item in a session, the items shown this
session are left out, as its ``predict()`` does; the long-term value agent gets the memory it keeps
in-process, how often each item was clicked this session, counted from the feedback). The other
saved agents read more than the observation and the session's feedback (their own encoder over the
raw past, or the env), and are refused with a clear error.

The default agent, with no file, is the supervised next-click LSTM with the shipped encoder of the
default preset (``mixed``): the service works with no training.

Only the catalog's public side is read (titles, topics, embeddings): a deployed recommender knows
nothing of quality or clickbait (``docs/model.md`` §5).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import (
    DQNAgent,
    LongTermValueAgent,
    PPOAgent,
    QLearningAgent,
    SB3DQNAgent,
    SB3PPOAgent,
    SupervisedLSTMAgent,
)
from agents.persistence import saved_env_config
from recenv import DriftingUserEnv, EnvConfig
from recenv.public_view import public_view
from recenv.weights_file import read_weights_file
from serving.observer import HistoryObserver, ObserverState

__all__ = ["SERVED_AGENTS", "AgentFileError", "ServedKind", "ServedRecommender", "UnservableAgentError", "session_memory"]


class UnservableAgentError(ValueError):
    """An agent file the service cannot serve (unknown kind, or an agent that reads more than its observation)."""


class AgentFileError(ValueError):
    """A path given as an agent file that is not one: a directory, a file that cannot be opened, or
    a file that is not a saved recenv agent (the message says which, and what is accepted)."""


def _as_numpy(scores: Any) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        return scores.detach().cpu().numpy()
    return np.asarray(scores)


def _sb3_observations(agent: Any, observations: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(observations, dtype=torch.float32, device=agent.model.device)


def _sb3_q_values(agent: Any, observations: np.ndarray, clicked_items: list[int]) -> np.ndarray:
    with torch.no_grad():
        return _as_numpy(agent.model.q_net(_sb3_observations(agent, observations)))


def _sb3_policy_logits(agent: Any, observations: np.ndarray, clicked_items: list[int]) -> np.ndarray:
    with torch.no_grad():
        distribution = agent.model.policy.get_distribution(_sb3_observations(agent, observations))
        return _as_numpy(distribution.distribution.logits)


def _torch_scores(method: str) -> Callable[[Any, np.ndarray, list[int]], np.ndarray]:
    def scores(agent: Any, observations: np.ndarray, clicked_items: list[int]) -> np.ndarray:
        with torch.no_grad():
            return _as_numpy(getattr(agent, method)(observations))

    return scores


def _long_term_values(agent: Any, observations: np.ndarray, clicked_items: list[int]) -> np.ndarray:
    """Q(s, ·) with the session memory the agent keeps in-process: how often each item was clicked
    this session (:class:`agents.long_term_value.SessionMemory`), here counted from the feedback."""
    clicked = np.zeros((1, agent.num_items), dtype=np.float32)
    np.add.at(clicked[0], np.asarray(clicked_items, dtype=np.int64), 1.0)
    with torch.no_grad():
        return _as_numpy(agent.q_values(observations, clicked))


@dataclass(frozen=True)
class ServedKind:
    """How one kind of agent is served.

    :param agent_class: builds the agent from a (public) env; ``load(path)`` reads its file.
    :param scores: ``(agent, observations (1, S), items clicked this session) → (1, N)``, higher is better.
    :param score_name: what the score is, for the API's responses.
    :param skips_shown: the agent never shows an item twice in a session (its rule, kept in serving).
    """

    agent_class: type
    scores: Callable[[Any, np.ndarray, list[int]], np.ndarray]
    score_name: str
    skips_shown: bool = False


SERVED_AGENTS: dict[str, ServedKind] = {
    "SupervisedLSTMAgent": ServedKind(SupervisedLSTMAgent, lambda a, o, _: a.click_logits(o), "click logit",
                                      skips_shown=True),
    "DQNAgent": ServedKind(DQNAgent, _torch_scores("q_values"), "Q value"),
    "PPOAgent": ServedKind(PPOAgent, _torch_scores("logits"), "policy logit"),
    "QLearningAgent": ServedKind(QLearningAgent, lambda a, o, _: a.q_table[a.states(o)], "Q value"),
    "LongTermValueAgent": ServedKind(LongTermValueAgent, _long_term_values, "long-term value Q"),
    "SB3DQNAgent": ServedKind(SB3DQNAgent, _sb3_q_values, "Q value"),
    "SB3PPOAgent": ServedKind(SB3PPOAgent, _sb3_policy_logits, "policy logit"),
}
"""Agent kind (the ``agent`` field of its file) → how it is served."""


class ServedRecommender:
    """One agent, loaded once, and what it needs to rank items for a logged history.

    Build it with :meth:`default` or :meth:`from_file`. Thread-safe for concurrent requests: it
    holds no per-session state (sessions hold theirs, :mod:`serving.sessions`).

    :param agent: the agent (made for ``env``).
    :param kind: the agent's kind, a key of :data:`SERVED_AGENTS`.
    :param env: a scalar env of the agent's config: the catalog, the encoder and the observation's
        shape come from its public view.
    :param source: where the agent came from (a path, or ``"default"``), for the health endpoint.
    """

    def __init__(self, agent: Any, kind: str, env: DriftingUserEnv, source: str):
        if kind not in SERVED_AGENTS:
            raise UnservableAgentError(_unservable(kind))
        self.agent = agent
        self.kind = kind
        self.served = SERVED_AGENTS[kind]
        self.source = source
        view = public_view(env)
        self.config: EnvConfig = view.config
        if self.config.slate_size != 1:
            # The endpoints take one clicked item per feedback; a slate env's history (and, with
            # slate_history="shown", its encoder) records screens, which the sessions do not keep.
            raise UnservableAgentError(f"the agent's env shows slates of {self.config.slate_size} items; the service "
                                       "serves agents of one-item envs (slate_size=1)")
        self.catalog = view.catalog  # the public catalog: no quality, no clickbait
        self.num_items = int(self.catalog.num_items)
        self.titles: tuple[str, ...] = tuple(self.catalog.titles or self.catalog.texts)
        self.topic_names: tuple[str, ...] = tuple(self.catalog.topic_names)
        self.item_topics = np.asarray(self.catalog.topics, dtype=np.int64)
        encoder = view.encoder if self.config.obs_mode == "encoded" else None
        self.observer = HistoryObserver(self.config.obs_mode, np.asarray(self.catalog.embeddings),
                                        self.config.max_episode_steps, self.config.history_length, encoder)
        self._latents: np.ndarray | None = None

    # ---------------------------------------------------------------- construction

    @classmethod
    def default(cls, device: str = "cpu") -> ServedRecommender:
        """The supervised next-click LSTM with the shipped encoder of the default preset."""
        env = DriftingUserEnv(config=EnvConfig(device=device))
        return cls(SupervisedLSTMAgent(public_view(env)), "SupervisedLSTMAgent", env, "default")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], device: str = "cpu") -> ServedRecommender:
        """A saved reference agent (``agent.save(path)``), with the env config recorded in its file.

        :raises FileNotFoundError: no such file.
        :raises AgentFileError: a directory, a file that cannot be opened, or not a saved agent (read
            with torch's weights-only loader, which runs no code from the file).
        :raises UnservableAgentError: an agent kind the service cannot serve.
        """
        path = Path(path)
        kind = _saved_agent_kind(path)
        if kind not in SERVED_AGENTS:
            raise UnservableAgentError(_unservable(kind, path))
        config = dataclasses.replace(saved_env_config(path), device=device)
        env = DriftingUserEnv(config=config)
        agent = SERVED_AGENTS[kind].agent_class(public_view(env))
        agent.load(path)
        return cls(agent, kind, env, os.fspath(path))

    # ---------------------------------------------------------------- ranking

    def rank(self, observation: np.ndarray, session_items: list[int], k: int,
             session_clicks: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best items for one observation: ``(item ids (k,), their scores (k,))``, best first.

        :param session_items: the items shown this session, oldest first. Agents whose rule never
            re-shows an item in a session leave them out, with the agent's own reset: once every item
            has been shown, all are allowed again and the memory starts over
            (:func:`agents.supervised_lstm.choose_unshown`).
        :param session_clicks: 0/1 per item of ``session_items`` (for agents that remember what was
            clicked this session; default: none clicked).

        Ties go to the lower item id, as ``argmax`` does.
        """
        clicks = [0] * len(session_items) if session_clicks is None else session_clicks
        clicked_items = [item for item, click in zip(session_items, clicks) if click]
        scores = np.asarray(self.served.scores(self.agent, observation[None], clicked_items), dtype=np.float64)[0]
        candidates = scores.copy()
        if self.served.skips_shown:
            candidates[list(session_memory(session_items, self.num_items))] = -np.inf
        order = np.argsort(-candidates, kind="stable")[:k]
        return order, scores[order]

    # ---------------------------------------------------------------- histories

    def start(self, items: list[int], clicks: list[int]) -> ObserverState:
        return self.observer.start(items, clicks)

    def persona_history(self, persona: str, length: int) -> list[int]:
        """The ``length`` catalog items closest to a persona text (cosine of latents, best first),
        used as a new user's past, all clicked: the stated interests as a logged history. Embeds
        the text with the catalog's own language model (local files only; loaded on first use)."""
        latent = np.asarray(self.catalog.latent_of_text(persona), dtype=np.float64)
        if self._latents is None:
            self._latents = np.asarray(self.catalog.latents, dtype=np.float64)
        closeness = self._latents @ latent
        order = np.argsort(-closeness, kind="stable")[:length]
        return [int(i) for i in order[::-1]]  # the closest item last: the most recent interaction

    def interest_by_topic(self, state: ObserverState) -> list[dict[str, Any]] | None:
        """The encoder's estimate of the user's interest: mean predicted P(click) of each topic's
        items (``None`` for agents served without the encoder)."""
        probabilities = self.observer.click_probabilities(state)
        if probabilities is None:
            return None
        sums = np.bincount(self.item_topics, weights=probabilities, minlength=len(self.topic_names))
        counts = np.maximum(np.bincount(self.item_topics, minlength=len(self.topic_names)), 1)
        return [{"topic": name, "p_click": float(value)} for name, value in zip(self.topic_names, sums / counts)]

    def describe(self) -> dict[str, Any]:
        return {"agent": self.kind, "source": self.source, "score": self.served.score_name,
                "obs_mode": self.config.obs_mode, "preset": self.config.preset, "num_items": self.num_items,
                "catalog": self.catalog.fingerprint}


def session_memory(session_items: list[int], num_items: int) -> set[int]:
    """The items a no-repeat agent still avoids after showing ``session_items``: it clears its
    memory when every item has been shown, before choosing the next one."""
    memory: set[int] = set()
    for item in session_items:
        if len(memory) == num_items:
            memory.clear()
        memory.add(item)
    return set() if len(memory) == num_items else memory


_ACCEPTED = "the service loads files written by agent.save(path) for one of: " + ", ".join(sorted(SERVED_AGENTS))


def _saved_agent_kind(path: Path) -> Any:
    """The ``agent`` field of a saved agent file.

    :raises FileNotFoundError: nothing at ``path``.
    :raises AgentFileError: ``path`` is a directory, cannot be opened, or is not a saved recenv agent.
    """
    if not path.exists():
        raise FileNotFoundError(f"no agent file at {path}; {_ACCEPTED}")
    if path.is_dir():
        raise AgentFileError(f"{path} is a directory, not an agent file; {_ACCEPTED}")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise AgentFileError(f"cannot open agent file {path}: {error.strerror or error}") from None
    try:
        payload = read_weights_file(path, "agent")
    except ValueError as error:
        cause = error.__cause__
        why = (f"torch's weights-only loader, which runs no code from a file, could not read it: {type(cause).__name__}"
               if cause is not None else "a torch file, but it holds no dict of weights")
        raise AgentFileError(f"{path} is not a saved recenv agent ({why}); {_ACCEPTED}") from None
    if "agent" not in payload:
        raise AgentFileError(f"{path} is a torch file but not a saved recenv agent (it records no agent kind); "
                             f"{_ACCEPTED}")
    return payload["agent"]


def _unservable(kind: Any, path: Path | None = None) -> str:
    where = f"{path} holds" if path is not None else "got"
    return (f"{where} agent kind {kind!r}, which the service cannot serve; served kinds: {sorted(SERVED_AGENTS)} "
            "(the others read more than their observation and the session's feedback: their own encoder over the raw past, or the env)")
