"""What the scalar and the vector environment share: how they are built from an :class:`EnvConfig`,
the accessors they expose, and how they check actions.

Building an environment never trains. With ``obs_mode="encoded"`` on a catalog and user model that
no shipped or cached encoder was trained for (an ablation switch, custom parameters, a custom
catalog), :func:`build_simulation` raises :class:`recenv.encoder.MissingEncoderWeights`, whose
message names the command (``recenv encoder prepare ...``) and the function
(:func:`recenv.offline.prepare_encoder`) that train and cache them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recenv.catalog import Catalog
from recenv.config import EnvConfig
from recenv.encoder import NextClickLSTM, resolve_encoder
from recenv.observation import OBSERVATION_BUILDERS, EncodedObservation, ObservationBuilder
from recenv.params import UserModelParams
from recenv.simulator import UserSimulator

__all__ = ["DriftingUserBase", "build_simulation", "int_seed", "validate_items"]

_IN_FORKED_CHILD = False


def _mark_forked_child() -> None:
    global _IN_FORKED_CHILD
    _IN_FORKED_CHILD = True


# AsyncVectorEnv forks by default. OpenMP's thread pool does not survive a fork, and the first
# multi-threaded torch op in the child then hangs; an env built in a forked child therefore runs
# torch single-threaded (as PyTorch's own DataLoader workers do). One user gains nothing from threads.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def build_simulation(config: EnvConfig, num_users: int) -> tuple[UserSimulator, ObservationBuilder]:
    """The simulator of ``num_users`` users and the observation builder that ``config`` asks for.

    :raises recenv.encoder.MissingEncoderWeights: ``obs_mode="encoded"`` on dynamics whose encoder
        is neither shipped nor cached (:func:`recenv.offline.prepare_encoder` makes it).
    """
    if _IN_FORKED_CHILD:
        torch.set_num_threads(1)
    simulator = UserSimulator(config, num_users)
    if config.obs_mode != "encoded":
        return simulator, OBSERVATION_BUILDERS[config.obs_mode](simulator, config.max_episode_steps)
    history = config.history_record
    encoder = resolve_encoder(simulator.catalog, simulator.user_model, config.encoder, simulator.device, history, config)
    return simulator, EncodedObservation(simulator, config.max_episode_steps, encoder)


def int_seed(seed: Any) -> int | None:
    """A seed as Gymnasium's seeding takes it: None, or a non-negative Python int (numpy integers
    and 0-d integer arrays are converted; Gymnasium itself refuses them).

    :raises TypeError: not an integer (bools included). :raises ValueError: negative.
    """
    if seed is None:
        return None
    if isinstance(seed, np.ndarray) and seed.ndim == 0:
        seed = seed.item()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative int, got {seed!r} of type {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return int(seed)


def validate_items(actions: Any, num_items: int, num_users: int | None, device: torch.device) -> Tensor:
    """Item indices as an int64 tensor on ``device``: ``(num_users,)``, or ``(1,)`` for one action
    (``num_users=None``: the scalar env, which takes an int, a 0-d or 1-element array or tensor).

    :raises TypeError: not integers (floats, bools, other types).
    :raises ValueError: wrong shape, or an index outside ``[0, num_items)``.
    """
    allowed = f"integers in [0, {num_items - 1}]"
    if num_users is None:
        if isinstance(actions, np.ndarray):
            if actions.shape not in ((), (1,)):
                raise ValueError(f"action must be a single item index, got an array of shape {actions.shape}")
            actions = actions.reshape(()).item()
        if isinstance(actions, Tensor):
            if actions.numel() != 1 or actions.is_floating_point() or actions.dtype == torch.bool:
                raise ValueError(f"action must be a single integer item index, got tensor {actions!r}")
            actions = int(actions.item())
        if isinstance(actions, (bool, np.bool_)) or not isinstance(actions, (int, np.integer)):
            raise TypeError(
                f"action must be an integer item index in [0, {num_items - 1}], "
                f"got {actions!r} of type {type(actions).__name__}"
            )
        if not 0 <= actions < num_items:
            raise ValueError(f"action {actions} is out of range; allowed: {allowed}")
        return torch.tensor([int(actions)], dtype=torch.int64, device=device)
    tensor = _index_tensor(actions, device, f"actions must be integer item indices in [0, {num_items - 1}]")
    if tensor.shape != (num_users,):
        raise ValueError(f"actions must have shape ({num_users},), one item per user; got {tuple(tensor.shape)}")
    tensor = tensor.long()
    if (bad := _out_of_range(tensor, num_items)) is not None:
        raise ValueError(f"action {bad} is out of range; allowed: {allowed}")
    return tensor


def validate_slates(actions: Any, num_items: int, slate_size: int, num_users: int | None, device: torch.device) -> Tensor:
    """Slates as an int64 tensor on ``device``: ``(num_users, k)``, or ``(1, k)`` for the scalar env
    (``num_users=None``), which takes a sequence, array or tensor of k item indices.

    An item repeated within a slate is allowed (a random ``MultiDiscrete`` sample may repeat one):
    its later slots are empty (never chosen, no satiation; ``docs/model.md`` §2, "Slates").

    :raises TypeError: not integers.
    :raises ValueError: wrong shape, or an index outside ``[0, num_items)``.
    """
    allowed = f"integers in [0, {num_items - 1}]"
    expected = (slate_size,) if num_users is None else (num_users, slate_size)
    tensor = _index_tensor(actions, device, f"a slate must hold {slate_size} integer item indices in [0, {num_items - 1}]")
    if tuple(tensor.shape) != expected:
        who = "the action" if num_users is None else "actions"
        raise ValueError(f"{who} must have shape {expected} (slate_size={slate_size} items"
                         f"{'' if num_users is None else ' per user'}); got {tuple(tensor.shape)}")
    tensor = tensor.long().reshape(-1, slate_size)
    if (bad := _out_of_range(tensor, num_items)) is not None:
        raise ValueError(f"item {bad} in a slate is out of range; allowed: {allowed}")
    return tensor


def _index_tensor(actions: Any, device: torch.device, refusal: str) -> Tensor:
    """Actions (an array, a sequence or a tensor) as an integer tensor on ``device``, in contiguous
    memory (torch refuses the negative strides of a reversed numpy view).

    :raises TypeError: ``"<refusal>, got dtype ..."`` for floats, bools or anything not integers.
    """
    if isinstance(actions, Tensor):
        tensor = actions.to(device)
    else:
        array = np.asarray(actions)
        if array.dtype.kind not in "iu":
            raise TypeError(f"{refusal}, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)
    if tensor.is_floating_point() or tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{refusal}, got dtype {tensor.dtype}")
    return tensor


def _out_of_range(tensor: Tensor, num_items: int) -> int | None:
    """An index of ``tensor`` outside ``[0, num_items)`` (the lowest if one is negative, else the
    highest), or None."""
    low, high = int(tensor.min()), int(tensor.max())
    if low < 0:
        return low
    return high if high >= num_items else None


class DriftingUserBase:
    """The accessors of both environments, over ``self._simulator`` and ``self._observer``.

    Arrays are per user: the scalar env (``_single_user = True``) returns user 0's values without
    the user axis, the vector env all users' values with it.
    """

    config: EnvConfig
    _simulator: UserSimulator
    _observer: ObservationBuilder
    _single_user: bool

    @property
    def catalog(self) -> Catalog:
        """The items (the resolved catalog: the preset's own when ``config.catalog`` is None)."""
        return self._simulator.catalog

    @property
    def user_model(self) -> UserModelParams:
        """The user model simulated (``config.user_model``: the preset's parameters with the
        overrides ``config.params`` applied)."""
        return self._simulator.user_model

    @property
    def preset(self) -> str:
        return self.config.preset

    @property
    def obs_mode(self) -> str:
        return self.config.obs_mode

    @property
    def encoder(self) -> NextClickLSTM | None:
        """The frozen state encoder behind ``obs_mode="encoded"`` (None in other modes)."""
        return getattr(self._observer, "encoder", None)

    def _per_user(self, tensor: Tensor) -> np.ndarray:
        array = tensor.cpu().numpy().copy()
        return array[0] if self._single_user else array

    # ---------------------------------------------------------------- what a recommender knows

    def warmup_history(self) -> tuple[np.ndarray, np.ndarray]:
        """The past the current user(s) arrived with: item ids and clicks, ``(W,)`` each (vector
        env: ``(N, W)``).

        Not privileged: it is the logged history any recommender would have (the same as
        ``info["warmup_items"]``/``info["warmup_clicks"]`` at reset)."""
        warmup = self._simulator.warmup
        return self._per_user(warmup.items), self._per_user(warmup.clicks)

    def recent_items(self) -> np.ndarray:
        """The last ``history_length`` items the history recorded, oldest first, ``(K,)`` (vector
        env: ``(N, K)``); −1 before the user's history began. Not privileged: it is what the
        recommender itself showed (of a slate, what ``slate_history`` says is recorded)."""
        return self._per_user(self._simulator.recent_items)

    def recent_clicks(self) -> np.ndarray:
        """The clicks of :meth:`recent_items` (1.0 or 0.0; 0 before the history began), same shape.
        Not privileged: a recommender logs which of its items were clicked."""
        return self._per_user(self._simulator.recent_clicks)

    # ---------------------------------------------------------------- privileged accessors

    def user_state(self) -> dict[str, np.ndarray]:
        """Privileged: the hidden state (copies): ``interest`` θ ``(k,)``, ``satiation`` s ``(k,)``,
        ``patience`` b, ``step`` t (vector env: a leading user axis). For the oracle and analysis only."""
        state = self._simulator.require_state()
        return {
            "interest": self._per_user(state.interest),
            "satiation": self._per_user(state.satiation),
            "patience": self._per_user(state.patience),
            "step": self._per_user(state.step),
        }

    def click_probabilities(self) -> np.ndarray:
        """Privileged: the true P(click) of every item now, ``(N_items,)`` (vector env:
        ``(num_envs, N_items)``) float32 (the oracle's view)."""
        with torch.inference_mode():
            return self._per_user(self._simulator.click_probabilities())
