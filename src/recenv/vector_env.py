"""The native vector environment: N users simulated as one batch of tensors (CPU or CUDA)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.spaces import Discrete, MultiDiscrete
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from recenv.buffers import RecycledArrays
from recenv.config import EnvConfig
from recenv.env_base import DriftingUserBase, build_simulation, int_seed, validate_items, validate_slates
from recenv.rendering import SessionRecorder, SessionScreen, UserViews, recent_items_text, tile_frames
from recenv.reset_options import ResetOptions, parse_reset_options
from recenv.simulator import StepOutcome, Warmup

__all__ = ["DriftingUserVectorEnv", "batch_seed"]

_STEP_INFO_KEYS = ("click_probability", "best_click_probability", "patience", "regime_shift", "topic")
_SLATE_INFO_KEYS = ("chosen_slot", "recorded_item")
"""Slates only, public: which slot the user chose (−1: none) and the item the history records."""
_SLATE_GROUND_TRUTH_KEYS = ("slot_click_probability",)
"""Slates only, ground truth: ``(N, k)`` P(each slot is chosen)."""
_AUTORESET_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
}


def batch_seed(seed: int | Sequence[int | None] | None, num_users: int) -> int | None:
    """The one int seed of the batch's generator, from any seed Gymnasium's vector API accepts:
    None, a Python or numpy integer, or a sequence of ``num_users`` seeds (one per user).

    :raises TypeError: not an integer, or a list holding something else than integers and None.
    :raises ValueError: a list of the wrong length, negative seeds, or a list mixing None and seeds
        (the users share one generator: they are reseeded together or not at all).
    """
    if seed is None or isinstance(seed, (int, np.integer, np.ndarray)) and np.ndim(seed) == 0:
        return int_seed(seed)
    if not isinstance(seed, (Sequence, np.ndarray)) or isinstance(seed, (str, bytes)):
        raise TypeError(f"seed must be an int or a list of {num_users} ints (one per user), got {seed!r}")
    seeds = seed.tolist() if isinstance(seed, np.ndarray) else list(seed)
    if len(seeds) != num_users:
        raise ValueError(f"a list of seeds needs one per user: {num_users}, got {len(seeds)}")
    if all(value is None for value in seeds):
        return None
    if any(value is None for value in seeds):
        raise ValueError(
            "a list of seeds must seed every user or none: the users share one generator, so some of them "
            "cannot be reseeded alone (reset those users with options={'reset_mask': mask} instead)"
        )
    ints = [int_seed(value) for value in seeds]
    if num_users == 1:
        return ints[0]
    return int(np.random.SeedSequence(ints).generate_state(1, dtype=np.uint64)[0])


class DriftingUserVectorEnv(DriftingUserBase, VectorEnv):
    """
    ## Description

    ``num_envs`` users of :class:`recenv.DriftingUserEnv`, simulated as one batch of tensors: every
    step is a handful of batched tensor operations over all users, not a Python loop over
    environments. The dynamics are the scalar environment's own (both run
    :class:`recenv.simulator.UserSimulator`; with ``num_envs=1`` and the same seed the two produce
    identical rollouts).

    ## Action Space

    ``MultiDiscrete([N] * num_envs)``: one item index per user; with ``slate_size=k > 1``,
    ``MultiDiscrete`` of shape ``(num_envs, k)``: a slate per user (``single_action_space``:
    ``MultiDiscrete([N] * k)``).

    ## Observation Space

    ``(num_envs, *single_observation_space.shape)``, the scalar env's observation per user.

    ## Rewards, Starting State, Episode End

    As in the scalar env, per user: truncation at ``max_episode_steps`` (200 by default).

    ## Info

    Arrays of shape ``(num_envs,)`` for the scalar env's step keys (``click_probability``,
    ``best_click_probability``, ``patience``, ``regime_shift``, ``topic``), each with a boolean mask
    ``_key`` that is False for users that were reset in this step instead of stepped. Users reset in
    this step also get ``warmup_items``/``warmup_clicks`` ``(num_envs, W)`` (masked the same way).

    ## Autoreset

    ``autoreset_mode="next_step"`` (default, Gymnasium's): a user that terminated or truncated is
    reset on the following ``step()``, which returns its first observation with reward 0 and ignores
    its action. ``"same_step"``: it is reset in the step that ended it; the last observation of the
    finished session is in ``info["final_obs"]`` (an object array, ``None`` elsewhere) and its step
    info in ``info["final_info"]``. ``"disabled"``: nobody is reset until you call
    ``reset(options={"reset_mask": mask})``; a user whose session ended keeps being simulated
    meanwhile, with meaningless results (evaluation harnesses use this mode: every user's random
    draws then stay the same whatever the agent does). ``metadata["autoreset_mode"]`` says which.

    ## Arguments

    ```python
    import gymnasium as gym
    import recenv
    envs = gym.make_vec("DriftingUser-v0", num_envs=1024, device="auto")
    ```

    Every setting of :class:`recenv.EnvConfig`, as keywords or as ``config=`` (the same as the
    scalar env; here ``device`` defaults to ``"auto"``: CUDA when present), exposed as
    ``envs.config``; and, for the batch itself:

    - ``num_envs``: number of users N.
    - ``autoreset_mode``: ``"next_step"``, ``"same_step"`` or ``"disabled"``.
    - ``array_type``: ``"numpy"`` (default) or ``"torch"`` (tensors on ``device``, no copies to host).
    - ``ground_truth``: True (default) for the ground-truth step info above, which evaluation
      reads; False for none of it (``click_probability``, ``best_click_probability``,
      ``patience``, ``regime_shift``; ``topic`` stays), and no best P(click) over all items computed
      at each step: for training, where an agent may not read it anyway (the public view hides it).
      The simulation is the same either way.
    - ``render_mode``: ``None``, ``"ansi"``, ``"rgb_array"`` or ``"human"``, the scalar env's views
      of the first ``render_users`` users (default ``min(num_envs, 4)``; only those are recorded).
      ``render()`` returns one view per user, as Gymnasium's vector envs do: a sequence of length
      ``num_envs`` whose items are made when read (``envs.render()[0]`` draws user 0; users past
      ``render_users`` raise ``IndexError``), so Gymnasium's vector ``RecordVideo`` works (with
      ``record_first_only=True`` beyond ``render_users``). ``"human"`` shows the first users side
      by side in a window, updated at every step; ``recenv.rendering.tile_frames`` makes such a
      grid of ``rgb_array`` frames.

    Reset options (``persona``, ``shifts``) apply to every user and stay in force for the
    autoresets that follow, until the next ``reset()``. ``reset(options={"reset_mask": mask})``
    resets only the users where the boolean ``(num_envs,)`` mask is True.

    ## Version History

    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "rgb_array", "human"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP,
    }
    _single_user = False

    def __init__(
        self,
        num_envs: int = 1,
        config: EnvConfig | None = None,
        autoreset_mode: str | AutoresetMode = "next_step",
        array_type: str = "numpy",
        render_mode: str | None = None,
        render_users: int | None = None,
        ground_truth: bool = True,
        **settings: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs = {num_envs!r} is not allowed; expected an int >= 1")
        if isinstance(autoreset_mode, AutoresetMode):
            autoreset_mode = {v: k for k, v in _AUTORESET_MODES.items()}.get(autoreset_mode, str(autoreset_mode))
        if autoreset_mode not in _AUTORESET_MODES:
            raise ValueError(f"unknown autoreset_mode {autoreset_mode!r}; allowed: {list(_AUTORESET_MODES)}")
        if array_type not in ("numpy", "torch"):
            raise ValueError(f"unknown array_type {array_type!r}; allowed: 'numpy', 'torch'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; allowed: None or {self.metadata['render_modes']}")
        render_users = min(num_envs, 4) if render_users is None else render_users
        if isinstance(render_users, bool) or not isinstance(render_users, int) or not 1 <= render_users <= num_envs:
            raise ValueError(f"render_users = {render_users!r} is not allowed; expected an int in [1, num_envs]")
        self.config = EnvConfig.build(config, **settings)
        self.render_mode = render_mode
        self.render_users = render_users
        if not isinstance(ground_truth, bool):
            raise TypeError(f"ground_truth must be a bool, got {ground_truth!r}")
        self.ground_truth = ground_truth
        self._info_keys = _STEP_INFO_KEYS if ground_truth else ("topic",)
        if self.config.slate_size > 1:
            self._info_keys += _SLATE_INFO_KEYS + (_SLATE_GROUND_TRUTH_KEYS if ground_truth else ())
        self.metadata = {**type(self).metadata, "autoreset_mode": _AUTORESET_MODES[autoreset_mode]}
        self.num_envs = num_envs
        self.array_type = array_type
        self._simulator, self._observer = build_simulation(self.config, num_users=num_envs)
        self.device = self._simulator.device
        k = self.config.slate_size
        if k == 1:
            self.single_action_space = Discrete(self.catalog.num_items)
            self.action_space = MultiDiscrete(np.full(num_envs, self.catalog.num_items))
        else:
            self.single_action_space = MultiDiscrete(np.full(k, self.catalog.num_items))
            self.action_space = MultiDiscrete(np.full((num_envs, k), self.catalog.num_items))
        self.single_observation_space = self._observer.space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._observation_arrays = RecycledArrays(self.observation_space.shape, self.observation_space.dtype)
        self._options = ResetOptions()
        self._generator_seeded = False
        self._needs_reset: Tensor | None = None  # (N,) bool; None until the first reset
        # Pictures need the first users' whole sessions, which the simulator does not keep.
        pictures = render_mode in ("rgb_array", "human")
        horizon, patience = self.config.max_episode_steps, self.user_model.initial_patience
        self._sessions = [SessionRecorder(patience, horizon) for _ in range(render_users)] if pictures else None
        self._screen = SessionScreen(self.catalog, "DriftingUser-v0 (vector)", fps=self.metadata["render_fps"])

    @property
    def max_episode_steps(self) -> int:
        """The horizon (``config.max_episode_steps``)."""
        return self.config.max_episode_steps

    # ---------------------------------------------------------------- Gymnasium API

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every user (or those in ``options["reset_mask"]``).

        ``seed``: an int (a Python or numpy integer) seeds the batch's one generator; a list of
        ``num_envs`` seeds, one per user as Gymnasium's ``SyncVectorEnv`` takes them, seeds it
        from the whole list (order matters; at ``num_envs=1``, ``[s]`` is the same as ``s``). The
        users share one generator, so user ``i`` does not replay a scalar env seeded ``seed[i]``;
        and a list reseeds all users or none (all ``None``), never some of them.
        """
        seed = batch_seed(seed, self.num_envs)
        super().reset(seed=seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        self._options = parse_reset_options(options, self.catalog)
        if seed is not None or not self._generator_seeded:
            self._simulator.seed_from(self.np_random)
            self._generator_seeded = True
        with torch.no_grad():
            if mask is None or self._needs_reset is None:
                index = torch.arange(self.num_envs, device=self.device)
            else:
                mask = np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask)
                if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                    raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
                index = torch.as_tensor(np.flatnonzero(mask), device=self.device)
            warmup = self._reset_users(index)
            observation = self._observe()
            if self._needs_reset is None:
                self._needs_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            self._needs_reset[index] = False
            info = self._warmup_info(warmup, index)
        if self.render_mode == "human":
            self.render()
        return observation, info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if self._needs_reset is None:
            raise RuntimeError("step() was called before reset(); call envs.reset() first")
        simulator = self._simulator
        with torch.no_grad():
            k = self.config.slate_size
            item_ids = (validate_items(actions, self.catalog.num_items, self.num_envs, self.device) if k == 1
                        else validate_slates(actions, self.catalog.num_items, k, self.num_envs, self.device))
            outcome = simulator.step(item_ids, best_click_probability=self.ground_truth)
            self._observer.step(outcome.history_items, outcome.history_clicks)
            if self._sessions is not None:
                self._record_step(outcome.recorded_item, outcome)
            terminated = outcome.terminated
            truncated = (simulator.state.step >= self.max_episode_steps) & ~terminated
            reward = outcome.click
            info = self._step_info(outcome)

            if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
                resetting = self._needs_reset
                if bool(resetting.any()):
                    index = resetting.nonzero()[:, 0]
                    warmup = self._reset_users(index)
                    reward = torch.where(resetting, 0.0, reward)
                    terminated, truncated = terminated & ~resetting, truncated & ~resetting
                    for key in self._info_keys:
                        info[f"_{key}"] = self._out(~resetting)
                    info.update(self._warmup_info(warmup, index))
                observation = self._observe()
                self._needs_reset = terminated | truncated
            elif self.metadata["autoreset_mode"] == AutoresetMode.DISABLED:
                observation = self._observe()
            else:  # SAME_STEP
                observation = self._observe()
                done = terminated | truncated
                if bool(done.any()):
                    index = done.nonzero()[:, 0]
                    final_obs = np.full(self.num_envs, None, dtype=object)
                    for user in index.tolist():
                        final_obs[user] = observation[user].copy() if self.array_type == "numpy" else observation[user].clone()
                    info["final_info"] = {key: value for key, value in info.items()}
                    info["_final_info"] = self._out(done)
                    info["final_obs"], info["_final_obs"] = final_obs, self._out(done)
                    warmup = self._reset_users(index)
                    info.update(self._warmup_info(warmup, index))
                    observation = self._observe()
        if self.render_mode == "human":
            self.render()
        return observation, self._out(reward), self._out(terminated), self._out(truncated), info

    def render(self) -> UserViews | None:
        """One view per user (see ``render_mode`` in the class docstring): texts (``"ansi"``) or
        ``(480, 640, 3)`` uint8 pictures (``"rgb_array"``), made when read; None in ``"human"``
        mode, after showing the first ``render_users`` users in the window."""
        if self.render_mode is None:
            gym.logger.warn(
                f"render() needs a render_mode, one of {self.metadata['render_modes']}, e.g. "
                'gym.make_vec("DriftingUser-v0", num_envs=4, render_mode="rgb_array")'
            )
            return None
        if self._needs_reset is None:
            raise RuntimeError("render() was called before reset(); call envs.reset() first")
        if self.render_mode == "ansi":
            return UserViews(self.num_envs, self._user_text, self.num_envs)
        if self._sessions is None:
            raise RuntimeError(f"render_mode was changed to {self.render_mode!r} after construction; pass it to make_vec")
        frames = UserViews(self.num_envs, self._user_picture, self.render_users)
        if self.render_mode == "human":
            self._screen.show(lambda: tile_frames(list(frames)))
            return None
        return frames

    def close_extras(self, **kwargs: Any) -> None:
        """Closes the render window and frees the figure."""
        self._screen.close()

    def suppress_regime_shifts(self, steps: Any) -> None:
        """Counterfactual evaluation (privileged: it scripts the simulation): user ``b``'s random
        regime shift at session step ``steps[b]`` does not happen (−1: none), every random draw
        staying as it was. Call after ``reset``; cleared when a user is reset. Used by
        :func:`agents.run_sessions` to replay sessions with a shift scripted off."""
        self._simulator.suppress_regime_shifts(torch.as_tensor(np.asarray(steps), dtype=torch.int64))

    # ---------------------------------------------------------------- helpers

    def _reset_users(self, index: Tensor) -> Warmup:
        warmup = self._simulator.reset(index, persona=self._options.persona, shifts=self._options.shifts)
        self._observer.reset(index, warmup)
        if self._sessions is not None:
            drawn = index[index < len(self._sessions)]
            if len(drawn):
                state = self._simulator.state
                interest, patience = state.interest[drawn].cpu().numpy(), state.patience[drawn].tolist()
                for row, user in enumerate(drawn.tolist()):
                    self._sessions[user].reset(interest[row], patience[row])
        return warmup

    def _record_step(self, item_ids: Tensor, outcome: StepOutcome) -> None:
        """Record the step of the drawn users (not those whose step is an autoreset: their
        recorder is reset by :meth:`_reset_users` right after)."""
        count = len(self._sessions)
        first = slice(0, count)
        values = torch.stack([
            item_ids[first].float(), outcome.topic[first].float(), outcome.click[first], outcome.patience[first],
            outcome.regime_shift[first].float(), outcome.terminated[first].float(),
        ]).T.cpu().numpy()
        interest = self._simulator.state.interest[first].cpu().numpy()
        skipped = (self._needs_reset[first].cpu().numpy() if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
                   else np.zeros(count, dtype=bool))
        for user, (item, topic, click, patience, shifted, terminated) in enumerate(values.tolist()):
            if not skipped[user] and self._sessions[user].started:
                self._sessions[user].record_step(int(item), int(topic), click, patience, interest[user],
                                                 regime_shift=bool(shifted), terminated=bool(terminated))

    def _user_picture(self, user: int) -> np.ndarray:
        return self._screen.picture(self._sessions[user], label=f"user {user}")

    def _user_text(self, user: int) -> str:
        simulator = self._simulator
        return recent_items_text(self.catalog, simulator.recent_items[user].tolist(),
                                 simulator.recent_clicks[user].tolist(), int(simulator.state.step[user]),
                                 float(simulator.state.patience[user]), label=f"DriftingUser {user}")

    def _observe(self) -> Any:
        if self.array_type == "torch":
            return self._observer.observe(self._simulator)
        array = self._observation_arrays.take()
        if self.device.type == "cpu":
            self._observer.observe(self._simulator, out=torch.from_numpy(array))
        else:
            torch.from_numpy(array).copy_(self._observer.observe(self._simulator))
        return array

    def _out(self, tensor: Tensor) -> Any:
        if self.array_type == "torch":
            return tensor.clone()
        return tensor.cpu().numpy()

    def _step_info(self, outcome: StepOutcome) -> dict[str, Any]:
        info: dict[str, Any] = {}
        every_user = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        for key in self._info_keys:
            info[key] = self._out(getattr(outcome, key))
            info[f"_{key}"] = self._out(every_user)
        return info

    def _warmup_info(self, warmup: Warmup, index: Tensor) -> dict[str, Any]:
        steps = warmup.items.shape[1]
        items = torch.full((self.num_envs, steps), -1, dtype=torch.int64, device=self.device)
        clicks = torch.zeros((self.num_envs, steps), device=self.device)
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        items[index], clicks[index], mask[index] = warmup.items, warmup.clicks, True
        return {
            "warmup_items": self._out(items),
            "_warmup_items": self._out(mask),
            "warmup_clicks": self._out(clicks),
            "_warmup_clicks": self._out(mask),
        }
