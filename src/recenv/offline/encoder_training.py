"""Training and evaluation of the next-click LSTM (:mod:`recenv.encoder`) on simulated logs.

The recipe, top to bottom (:func:`train_and_evaluate`), for one environment's dynamics:

1. Log sessions the way a deployed recommender would (:func:`recenv.offline.logging_policies.make_logs`:
   behaviour policies that read nothing privileged, with propensities) on the simulator; split
   *users* into train / validation / test.
2. Train with binary cross-entropy on every logged interaction (each click predicted from the
   interactions before it), Adam, gradient clipping; early stopping on the validation loss of
   session interactions; the best epoch's weights are kept. Logs of slates (``slate_history=
   "shown"``) are read screen by screen: each interaction is predicted from the screens before its
   own, its logit gets a learnt **position term** of its slot (0 for the first), and each screen's
   response is fitted by the choice model of the simulator's slates, a conditional logit over the
   screen's items and a no-click option of utility 0 (:func:`screen_choice_log_probabilities`;
   for one item per screen it is the binary cross-entropy above). The position terms are nuisance
   parameters of the training only: position bias is explained away there, so the model's logit
   is the item's utility for the user wherever it is shown, the same quantity as the one-item
   model's (the shallow position tower of Zhao et al. 2019, "Recommending what video to watch
   next", reduced to one number per slot). Optionally each session interaction is
   weighted by inverse propensity, ``min((1/N) / propensity, max_importance_weight)``: the loss of
   a uniformly random policy's interactions, estimated from the logged ones.
3. Evaluate on the held-out users' session interactions against two references fitted on the
   training logs (:mod:`recenv.offline.click_predictors`): item popularity and a static profile.
   Reported: AUC, log loss, the Brier score against the click and MSE to the simulator's true click
   probability; and **calibration by item class** (clickbait or not): the mean predicted minus the
   mean true P(click), on the held-out logged interactions and on every item of the catalog in the
   states a uniformly random policy leads users to (:func:`catalog_calibration`).

The weights shipped for the named presets come from one command (seeded; on the CPU each run is
deterministic)::

    python -m recenv.offline.encoder_training ship --data PATH_TO_ML100K
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from recenv.catalog import Catalog
from recenv.config import DEFAULT_SLATE_POSITION_DECAY, EnvConfig
from recenv.encoder import (
    FIRST_USE_EPOCHS,
    FIRST_USE_SLATE_USERS,
    FIRST_USE_USERS,
    EncoderConfig,
    NextClickLSTM,
    first_use_training,
    matched_weights_path,
    save_encoder,
    shipped_encoder_path,
)
from recenv.observation import EncodedObservation
from recenv.offline.click_predictors import PopularityPredictor, StaticProfilePredictor, auc, brier, log_loss
from recenv.offline.logging_policies import make_logs
from recenv.offline.logs import InteractionLog, LoggedSessions
from recenv.presets import PRESET_NAMES, REAL_DATA_PRESETS
from recenv.simulator import UserSimulator, resolve_device

__all__ = [
    "SHIPPED_USERS",
    "TrainingConfig",
    "catalog_calibration",
    "evaluate",
    "predict_sessions",
    "prepare_encoder",
    "previous_screens",
    "screen_choice_log_probabilities",
    "screen_keys",
    "split_users",
    "train_and_evaluate",
    "train_encoder",
    "train_on_first_use",
]

SHIPPED_USERS = FIRST_USE_USERS
"""Sessions logged for each shipped encoder (80/10/10 train/validation/test users); first use logs as many."""


@dataclass(frozen=True)
class TrainingConfig:
    """How the next-click LSTM is trained.

    :param hidden_size: H, LSTM state size (the encoded observation's size).
    :param head_size: P, size of the click head's projections.
    :param max_epochs: upper bound on passes over the training users.
    :param batch_size: sessions per gradient step.
    :param learning_rate: Adam's step size.
    :param patience: epochs without validation improvement before stopping early.
    :param max_grad_norm: gradient clipping threshold.
    :param seed: seeds the weight initialisation and the batch order.
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    :param inverse_propensity: weight each session interaction by ``(1/N) / propensity``, capped
        at ``max_importance_weight`` (warm-up interactions, of unknown propensity, weigh 1).
    :param max_importance_weight: the cap on inverse-propensity weights.
    """

    hidden_size: int = 64
    head_size: int = 64
    max_epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    patience: int = 3
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = "auto"
    inverse_propensity: bool = False
    max_importance_weight: float = 10.0


# ---------------------------------------------------------------- data


def split_users(log: InteractionLog, fractions: Sequence[float], seed: int) -> list[InteractionLog]:
    """Split a log by *user* (held-out users never appear in training)."""
    users = np.unique(log.user)
    np.random.default_rng(seed).shuffle(users)
    bounds = np.cumsum([0, *(round(f * len(users)) for f in fractions)])
    bounds[-1] = len(users)
    return [log.select_users(users[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _batches(sessions: LoggedSessions, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    # Sessions of similar length share a batch (less padding); the batch order is shuffled.
    order = np.argsort(sessions.mask.sum(1), kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _first_of_screen(steps: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Whether each interaction opens its screen (a new step; every padding entry, outside
    ``mask``, is a screen of its own), and its screen's first position, ``(U, L)``."""
    starts = np.ones(steps.shape, dtype=bool)
    starts[:, 1:] = steps[:, 1:] != steps[:, :-1]
    if mask is not None:
        starts |= ~mask
    positions = np.broadcast_to(np.arange(steps.shape[1]), steps.shape)
    return starts, np.maximum.accumulate(np.where(starts, positions, 0), axis=1)


def previous_screens(steps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
    """For logged sessions' steps ``(U, L)`` (``mask``: which entries are interactions, not
    padding; default all), the position of the last interaction of the screen before each
    interaction's screen (−1: none), ``(U, L)`` — the state each is predicted from
    (:meth:`recenv.encoder.NextClickLSTM.sequence_logits`); a screen is the interactions of one
    step (a slate's k, or one item). ``None`` when every screen is one interaction (each predicted
    from all before it, the default)."""
    starts, first_of_screen = _first_of_screen(steps, mask)
    if starts.all():
        return None
    return (first_of_screen - 1).astype(np.int64)


def screen_keys(steps: np.ndarray, items: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For logged sessions ``(U, L)``: each interaction's screen as a key ``u·L + p`` (``p`` the
    position of the screen's first interaction), and whether its item already appeared earlier on
    the same screen (a repeat: an empty slot, never chosen, ``docs/model.md`` §2)."""
    _, first_of_screen = _first_of_screen(steps, mask)
    positions = np.broadcast_to(np.arange(steps.shape[1]), steps.shape)
    keys = np.arange(steps.shape[0])[:, None] * steps.shape[1] + first_of_screen
    repeated = np.zeros(steps.shape, dtype=bool)
    for offset in range(1, int((positions - first_of_screen).max(initial=0)) + 1):
        earlier = np.zeros(steps.shape, dtype=bool)
        earlier[:, offset:] = (items[:, offset:] == items[:, :-offset]) & (keys[:, offset:] == keys[:, :-offset])
        repeated |= earlier
    return keys.astype(np.int64), repeated


def screen_choice_log_probabilities(logits: torch.Tensor, keys: torch.Tensor, available: torch.Tensor
                                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The conditional logit with a no-click option of utility 0 (``docs/model.md`` §2) over each
    screen's interactions: ``log P(this one is chosen) = logit − log(1 + Σ_screen exp(logit))``.

    :param logits: ``(b, L)`` each interaction's logit (its position term included).
    :param keys: ``(b, L)`` its screen (:func:`screen_keys`); :param available: ``(b, L)`` bool,
        the interactions that can be chosen (not padding, not a repeat on their screen).
    :return: ``log P(chosen)`` of every interaction ``(b, L)`` (−inf where not available) and
        ``log(1 + Σ exp(logit))`` of every screen key ``(b·L,)`` (0 for keys of no screen).
        With one interaction per screen, ``log P(chosen) = log σ(logit)``: the one-item click model.
    """
    flat_keys, flat_logits = keys.reshape(-1)[available.reshape(-1)], logits.reshape(-1)[available.reshape(-1)]
    size = logits.numel()
    top = torch.zeros(size, dtype=logits.dtype, device=logits.device).scatter_reduce(
        0, flat_keys, flat_logits, reduce="amax", include_self=True)  # max(0, the screen's logits): stable
    total = torch.exp(-top).index_add(0, flat_keys, torch.exp(flat_logits - top[flat_keys]))
    normaliser = top + torch.log(total)
    log_probability = torch.where(available, logits - normaliser[keys], torch.full_like(logits, -torch.inf))
    return log_probability, normaliser


def _to_device(sessions: LoggedSessions, index: np.ndarray, embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
    length = int(sessions.mask[index].sum(1).max())
    device = embeddings.device
    items = torch.as_tensor(sessions.items[index, :length], device=device)
    clicks = torch.as_tensor(sessions.clicks[index, :length], device=device)
    mask = torch.as_tensor(sessions.mask[index, :length], device=device)
    in_session = torch.as_tensor(sessions.steps[index, :length] >= 0, device=device) & mask
    previous = previous_screens(sessions.steps[index, :length], sessions.mask[index, :length])
    previous = None if previous is None else torch.as_tensor(previous, device=device)
    return embeddings[items.clamp_min(0)], clicks, mask, in_session, previous


def importance_weights(sessions: LoggedSessions, num_items: int, cap: float) -> np.ndarray:
    """``(U, L)`` inverse-propensity weights ``min((1/N) / propensity, cap)`` of session
    interactions; 1 where the propensity is unknown (the warm-up), 0 on padding."""
    propensity = sessions.propensity.astype(np.float64)
    known = np.isfinite(propensity) & (propensity > 0)
    weights = np.where(known, np.minimum((1.0 / num_items) / np.where(known, propensity, 1.0), cap), 1.0)
    return np.where(sessions.mask, weights, 0.0).astype(np.float32)


def _screens_on(sessions: LoggedSessions, index: np.ndarray, length: int, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's screen keys, which interactions can be chosen, and which open a screen, ``(b, length)``."""
    keys, repeated = screen_keys(sessions.steps[index, :length], sessions.items[index, :length], sessions.mask[index, :length])
    opens = keys == np.arange(length) + np.arange(len(index))[:, None] * length
    device = mask.device
    return (torch.as_tensor(keys, device=device), mask & ~torch.as_tensor(repeated, device=device),
            mask & torch.as_tensor(opens, device=device))


def _position_terms(slot_bias: torch.Tensor | None, sessions: LoggedSessions, index: np.ndarray, length: int,
                    device: torch.device) -> torch.Tensor | float:
    """The logit terms of the logged slots ``(b, length)`` (slot 0: 0), or 0 without position terms."""
    if slot_bias is None:
        return 0.0
    table = torch.cat([torch.zeros(1, device=device), slot_bias])
    return table[torch.as_tensor(sessions.slots[index, :length], device=device)]


def predict_sessions(model: NextClickLSTM, sessions: LoggedSessions, embeddings: torch.Tensor, batch_size: int = 256,
                     slot_bias: torch.Tensor | None = None) -> np.ndarray:
    """P(click) of every logged interaction given the ones before it, ``(U, L)`` (NaN on padding).

    For logs of slates: P(this item is the screen's choice) under the conditional logit, from the
    state after the screens before its own; with ``slot_bias`` ``(k − 1,)``, the position terms of
    slots 1..k−1 added to the logits."""
    out = np.full(sessions.items.shape, np.nan, dtype=np.float64)
    model.eval()
    with torch.no_grad():
        for index in _batches(sessions, batch_size, rng=None):
            x, clicks, mask, _, previous = _to_device(sessions, index, embeddings)
            logits = model.sequence_logits(x, clicks, previous)
            logits = logits + _position_terms(slot_bias, sessions, index, logits.shape[1], logits.device)
            if previous is None:
                probabilities = torch.sigmoid(logits).cpu().numpy()
            else:  # screens of slates: P(this one is chosen) under the conditional logit
                keys, available, _ = _screens_on(sessions, index, logits.shape[1], mask)
                probabilities = torch.exp(screen_choice_log_probabilities(logits, keys, available)[0]).cpu().numpy()
            length = probabilities.shape[1]
            out[index, :length] = np.where(mask.cpu().numpy(), probabilities, np.nan)
    return out


# ---------------------------------------------------------------- training


def train_encoder(
    train_log: InteractionLog,
    validation_log: InteractionLog,
    catalog: Catalog,
    config: TrainingConfig = TrainingConfig(),
    progress: bool = True,
    tensorboard_dir: str | None = None,
) -> tuple[NextClickLSTM, dict[str, Any]]:
    """Fit a :class:`NextClickLSTM` by BCE with early stopping; returns it (eval mode) and a history."""
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)  # weight initialisation; a generator cannot be passed to nn.Module init
    model = NextClickLSTM(EncoderConfig(catalog.embedding_dim, config.hidden_size, config.head_size)).to(device)
    embeddings = torch.tensor(catalog.embeddings, device=device)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    train, validation = train_log.sessions(), validation_log.sessions()
    slots = int(train_log.slot.max()) + 1 if len(train_log) else 1
    # Logs of slates: one learnt logit term per slot after the first (the module docstring, step 2).
    slot_bias = torch.zeros(slots - 1, device=device, requires_grad=True) if slots > 1 else None
    if slot_bias is not None and config.inverse_propensity:
        raise ValueError("inverse_propensity weights single interactions; logs of slates are fitted screen by screen "
                         "(a choice per screen), which it does not cover: train them without it")
    optimizer = torch.optim.Adam([*model.parameters(), *([] if slot_bias is None else [slot_bias])],
                                 lr=config.learning_rate)
    weights = (importance_weights(train, catalog.num_items, config.max_importance_weight) if config.inverse_propensity
               else train.mask.astype(np.float32))
    rng = np.random.default_rng(config.seed)
    writer = None
    if tensorboard_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(tensorboard_dir)
    history: dict[str, Any] = {"train_loss": [], "validation_loss": [], "epoch_seconds": []}
    best = (math.inf, None, 0)
    bar = tqdm(range(config.max_epochs), desc="training next-click LSTM", unit="epoch", disable=not progress)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for index in _batches(train, config.batch_size, rng):
            x, clicks, mask, _, previous = _to_device(train, index, embeddings)
            weight = torch.as_tensor(weights[index, : mask.shape[1]], device=device)[mask]
            logits = model.sequence_logits(x, clicks, previous)
            if slot_bias is None:
                loss = (loss_fn(logits[mask], clicks[mask]) * weight).sum()
                denominator = weight.sum()
            else:  # logs of slates: the screen's choice likelihood (the module docstring, step 2)
                logits = logits + _position_terms(slot_bias, train, index, logits.shape[1], device)
                keys, available, opens = _screens_on(train, index, logits.shape[1], mask)
                _, normaliser = screen_choice_log_probabilities(logits, keys, available)
                chosen = available & (clicks > 0.5)
                # −log P(the screen's response): log(1 + Σ e^logit) minus the chosen one's logit, if any.
                loss = normaliser[keys[opens]].sum() - logits[chosen].sum()
                denominator = opens.sum().to(logits.dtype)
            optimizer.zero_grad()
            (loss / denominator).backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            total, count = total + loss.item(), count + float(denominator)
        validation_loss = _session_log_loss(model, validation, embeddings, slot_bias)
        history["train_loss"].append(total / count)
        history["validation_loss"].append(validation_loss)
        history["epoch_seconds"].append(time.perf_counter() - started)
        if writer is not None:
            writer.add_scalar("loss/train", total / count, epoch)
            writer.add_scalar("loss/validation_session", validation_loss, epoch)
        bar.set_postfix(train=f"{total / count:.4f}", validation=f"{validation_loss:.4f}")
        if validation_loss < best[0] - 1e-5:
            best = (validation_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch,
                    None if slot_bias is None else slot_bias.detach().clone())
        elif epoch - best[2] >= config.patience:
            break
    bar.close()
    if writer is not None:
        writer.close()
    model.load_state_dict(best[1])
    model.eval()
    model.requires_grad_(False)
    history["best_epoch"] = best[2]
    history["epochs_run"] = len(history["train_loss"])
    if slot_bias is not None:
        history["slot_bias"] = [0.0, *best[3].tolist()]  # the position terms of the best epoch, slot 0 first
    return model, history


def _session_log_loss(model: NextClickLSTM, sessions: LoggedSessions, embeddings: torch.Tensor,
                      slot_bias: torch.Tensor | None = None) -> float:
    probabilities = predict_sessions(model, sessions, embeddings, slot_bias=slot_bias)
    rows = sessions.mask & (sessions.steps >= 0)
    return log_loss(probabilities[rows], sessions.clicks[rows])


# ---------------------------------------------------------------- evaluation


def evaluate(model: NextClickLSTM, train_log: InteractionLog, test_log: InteractionLog, catalog: Catalog,
             slot_bias: Sequence[float] | None = None) -> dict[str, dict[str, float]]:
    """Metrics of the LSTM and the two references on the test users' session interactions.

    ``slot_bias``: the position terms learnt with the model on logs of slates (``history["slot_bias"]``
    of :func:`train_encoder`, slot 0 first); the LSTM is then scored with them (``"lstm"``) and
    without (``"lstm_without_position"``: the item's appeal alone). The references read no slot."""
    device = next(model.parameters()).device
    embeddings = torch.tensor(catalog.embeddings, device=device)
    test = test_log.sessions()
    rows = test.mask & (test.steps >= 0)
    clicks = test.clicks[rows]
    true_probability = test.click_probability[rows]
    popularity = PopularityPredictor().fit(train_log, catalog.num_items)
    static = StaticProfilePredictor(catalog.embeddings).fit(train_log.sessions())
    terms = None if slot_bias is None else torch.tensor(list(slot_bias)[1:], dtype=torch.float32, device=device)
    predictions = {
        "lstm": predict_sessions(model, test, embeddings, slot_bias=terms)[rows],
        "popularity": popularity.predict(test.items[rows]),
        "static_profile": static.predict(test)[rows],
    }
    if terms is not None:
        predictions["lstm_without_position"] = predict_sessions(model, test, embeddings)[rows]
    # The simulator's own click probability: the ceiling no predictor can beat on average.
    predictions["true_probability"] = true_probability
    clickbait = catalog.clickbait[test.items[rows]] >= CLICKBAIT_THRESHOLD
    return {
        name: {
            "auc": auc(p, clicks),
            "log_loss": log_loss(p, clicks),
            "mse_click": brier(p, clicks),
            "mse_true_probability": brier(p, true_probability),
            "calibration": {
                item_class: {"predicted": float(p[which].mean()), "true": float(true_probability[which].mean()),
                             "bias": float(p[which].mean() - true_probability[which].mean()), "count": int(which.sum())}
                for item_class, which in (("clickbait", clickbait), ("other", ~clickbait)) if which.any()
            },
        }
        for name, p in predictions.items()
    }


CLICKBAIT_THRESHOLD = 0.5
"""Items with clickbait score c ≥ this count as clickbait in the calibration by class."""


def catalog_calibration(model: NextClickLSTM, config: EnvConfig, num_users: int = 500, steps: int = 30,
                        seed: int = 0) -> dict[str, dict[str, float]]:
    """Calibration over the whole catalog: ``num_users`` users of ``config``'s dynamics are shown
    uniformly random items for ``steps`` steps (a user who leaves is replaced); at every step the
    model predicts P(click) of *every* item from its encoding of the user's history, beside the
    simulator's true P(click) (privileged: this is evaluation). Returns, per item class, the mean
    predicted and true probabilities and their difference (``bias``)."""
    config = config.replace(device="cpu")
    simulator = UserSimulator(config, num_users)
    simulator.seed(seed)
    model = model.to("cpu")
    observer = EncodedObservation(simulator, config.max_episode_steps, model)
    rng = np.random.default_rng(seed)
    embeddings = torch.tensor(simulator.catalog.embeddings)
    clickbait = torch.as_tensor(simulator.catalog.clickbait >= CLICKBAIT_THRESHOLD)
    sums = {"clickbait": np.zeros(2), "other": np.zeros(2)}
    present = {"clickbait": bool(clickbait.any()), "other": bool((~clickbait).any())}  # a catalog may have no clickbait
    with torch.inference_mode():
        observer.reset(torch.arange(num_users), simulator.reset())
        for _ in range(steps):
            predicted = torch.sigmoid(model.click_logits_all(observer.hidden, embeddings))
            true = simulator.click_probabilities()
            for item_class, columns in (("clickbait", clickbait), ("other", ~clickbait)):
                if not present[item_class]:
                    continue
                sums[item_class] += [float(predicted[:, columns].mean()), float(true[:, columns].mean())]
            actions = torch.as_tensor(rng.integers(simulator.catalog.num_items, size=num_users))
            outcome = simulator.step(actions)
            observer.step(actions, outcome.click)
            left = torch.nonzero(outcome.terminated | (simulator.session_steps() >= config.max_episode_steps))[:, 0]
            if len(left):
                observer.reset(left, simulator.reset(left))
    return {
        item_class: {"predicted": total[0] / steps, "true": total[1] / steps, "bias": (total[0] - total[1]) / steps}
        for item_class, total in sums.items() if present[item_class]
    }


def train_and_evaluate(
    config: EnvConfig,
    num_users: int,
    training: TrainingConfig,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | None = None,
    calibration_users: int = 500,
) -> tuple[NextClickLSTM, dict[str, Any]]:
    """Steps 1–3 of the module docstring on users simulated as ``config`` says; returns the model
    and a report (metrics, calibration over the catalog, history, setup)."""
    started = time.perf_counter()
    log = make_logs(config, num_users, seed=seed, progress=progress)
    catalog = config.resolved_catalog()
    train_log, validation_log, test_log = split_users(log, (0.8, 0.1, 0.1), seed=seed)
    model, history = train_encoder(train_log, validation_log, catalog, training, progress, tensorboard_dir)
    report = {
        "preset": config.preset,
        "num_users": num_users,
        "interactions": len(log),
        "logging_policy": log.metadata["policy"],
        "training": asdict(training),
        "history": history,
        "metrics": evaluate(model, train_log, test_log, catalog, history.get("slot_bias")),
        "wall_seconds": time.perf_counter() - started,
    }
    if config.history_record is not None:
        report["history_format"] = config.history_record
    if calibration_users and config.history_record is None:
        # One item at a time from random states (catalog_calibration) is not what a model of slate
        # impressions predicts (P(chosen among k)); its calibration is the logged rows' above.
        report["catalog_calibration"] = catalog_calibration(model, config, calibration_users, seed=seed + 1)
    return model, report


def _training_record(num_users: int, training: TrainingConfig, seed: int) -> dict[str, Any]:
    return {"users": num_users, "seed": seed, "logs": "recenv.offline.logging_policies.make_logs", **asdict(training)}


def prepare_encoder(config: EnvConfig) -> Path | None:
    """Train and cache the encoder weights that ``config``'s dynamics need, if they are missing.

    What an environment of ``config`` observes through with ``obs_mode="encoded"`` and
    ``encoder=None``: the shipped weights of its dynamics, or the first-use cache's
    (:func:`recenv.encoder.matched_weights_path`). When neither exists, this trains them with the
    fixed first-use budgets (:func:`train_on_first_use`) and caches them there, so every
    environment built after it finds them; building an environment never trains.

    :return: the weights file (shipped, cached or just trained; ``config.encoder`` when that is a
        path), or None when there is none to prepare: another ``obs_mode``, or an encoder given as a model.
    """
    if config.obs_mode != "encoded":
        return None
    if config.encoder is not None:
        return Path(config.encoder) if isinstance(config.encoder, (str, os.PathLike)) else None
    catalog = config.resolved_catalog()
    _, path = matched_weights_path(catalog, config.user_model, config.history_record)
    if not path.exists():
        train_on_first_use(config, path)
    return path


def train_on_first_use(config: EnvConfig, path: Path) -> Path:
    """The training :func:`prepare_encoder` runs for dynamics without weights (``config``'s catalog
    and user model): :data:`recenv.encoder.FIRST_USE_USERS` logged sessions with the default warm-up
    and horizon, at most :data:`recenv.encoder.FIRST_USE_EPOCHS` epochs, progress bars, the result
    cached at ``path``. For histories that record whole slates (``config.history_record``):
    :data:`recenv.encoder.FIRST_USE_SLATE_USERS` sessions logged with slates of ``config.slate_size``.
    These budgets are fixed, so that the cache key names them; for others, train with
    :func:`train_and_evaluate` and pass ``encoder=PATH``. How long it takes:
    :data:`recenv.encoder.FIRST_USE_MINUTES` (measured: docs/results/encoders.md; an earlier
    measurement of the first-use training: docs/results/tuning-notes.md)."""
    history = config.history_record
    slates = {} if history is None else {"slate_size": config.slate_size, "slate_history": config.slate_history,
                                         "slate_position_decay": config.slate_position_decay}
    dynamics = EnvConfig(catalog=config.catalog, preset=config.preset, params=config.user_model,
                         data_path=config.data_path, **slates)
    catalog = dynamics.resolved_catalog()
    users = FIRST_USE_USERS if history is None else FIRST_USE_SLATE_USERS
    what = "" if history is None else f", histories of whole slates of {config.slate_size}"
    print(f"recenv: training the encoder of these dynamics once (catalog {catalog.fingerprint}, preset {config.preset} "
          f"with its parameters as given{what}); cached at {path}")
    training = TrainingConfig(max_epochs=FIRST_USE_EPOCHS, device="cpu")
    model, report = train_and_evaluate(dynamics, users, training, calibration_users=0)
    return save_encoder(model, path, catalog, dynamics.user_model,
                        training={**_training_record(users, training, 0), **first_use_training(history)},
                        extra={"report": report}, history=history)


def train_preset(preset: str, num_users: int = SHIPPED_USERS, training: TrainingConfig | None = None, seed: int = 0,
                 data_path: str | None = None, out: Path | None = None, progress: bool = True,
                 tensorboard_dir: str | None = None, slate_size: int = 1,
                 slate_history: str = "chosen") -> tuple[Path, dict[str, Any]]:
    """Train and evaluate the encoder of a named preset; write the weights (default: where the
    shipped ones live, ``recenv/assets/encoder_<preset>.pt``) and the report beside them (``.json``).

    With ``slate_history="shown"`` (and ``slate_size`` > 1) the logs are of slates and the encoder
    reads histories of whole slates, as first use trains it (:func:`train_on_first_use`) but with
    this budget; such weights have no shipped place, so ``out`` is required. Pass the file to
    ``EnvConfig(encoder=...)`` (or ``compare --encoder``)."""
    training = training or TrainingConfig(device="cpu")
    config = EnvConfig(preset=preset, data_path=data_path, slate_size=slate_size, slate_history=slate_history)
    if config.history_record is not None and out is None:
        raise ValueError("an encoder of whole-slate histories is not shipped: give out=PATH for its weights")
    model, report = train_and_evaluate(config, num_users, training, seed=seed, progress=progress,
                                       tensorboard_dir=tensorboard_dir)
    catalog = config.resolved_catalog()
    out = out or shipped_encoder_path(preset)
    save_encoder(model, out, catalog, config.user_model, training=_training_record(num_users, training, seed),
                 extra={"metrics": report["metrics"]}, history=config.history_record)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return out, report


# ---------------------------------------------------------------- command line


def _print_report(report: dict[str, Any]) -> None:
    print(f"\npreset {report['preset']}: held-out users' session interactions")
    print(f"  {'predictor':16s} {'AUC':>7s} {'log loss':>9s} {'MSE click':>10s} {'MSE true p':>11s} {'bias clickbait':>15s} {'bias other':>11s}")
    for name, m in report["metrics"].items():
        bias = {k: v["bias"] for k, v in m["calibration"].items()}
        print(f"  {name:16s} {m['auc']:7.4f} {m['log_loss']:9.4f} {m['mse_click']:10.4f} {m['mse_true_probability']:11.4f} "
              f"{bias.get('clickbait', float('nan')):15.4f} {bias.get('other', float('nan')):11.4f}")
    if "catalog_calibration" in report:
        biases = ", ".join(f"{name} {c['bias']:+.4f}" for name, c in report["catalog_calibration"].items())
        print(f"  every item, random-policy states: bias {biases}")


def _overrides(text: str) -> dict[str, Any]:
    """``--params``: a JSON object of user-model overrides."""
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}): give an object such as '{{\"clickbait\": false}}'") from None
    if not isinstance(overrides, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of user-model fields, got {text!r}")
    return overrides


def main(argv: Sequence[str] | None = None, prog: str = "python -m recenv.offline.encoder_training") -> None:
    """The encoder command line (``recenv encoder ...`` hands its arguments here, with its own ``prog``)."""
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Train the next-click LSTM state encoder of a preset's dynamics.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="log sessions of one preset, train, evaluate, write weights + report JSON")
    train.add_argument("--preset", default="mixed", choices=PRESET_NAMES, help="the dynamics the logs come from")
    train.add_argument("--data", default=None, help="MovieLens-100K folder (preset ml100k; default $RECENV_ML100K)")
    train.add_argument("--users", type=int, default=SHIPPED_USERS, help="sessions to log (80/10/10 train/validation/test users)")
    train.add_argument("--hidden-size", type=int, default=TrainingConfig.hidden_size)
    train.add_argument("--epochs", type=int, default=TrainingConfig.max_epochs, help="maximum epochs (early stopping)")
    train.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    train.add_argument("--lr", type=float, default=TrainingConfig.learning_rate)
    train.add_argument("--inverse-propensity", action="store_true", help="weight session interactions by inverse propensity")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu (default: bit-reproducible), cuda or auto")
    train.add_argument("--out", type=Path, default=Path("results/encoder/encoder.pt"), help="weights file; the report goes beside it as .json")
    train.add_argument("--tensorboard", default=None, help="TensorBoard log folder (optional)")
    train.add_argument("--slate-size", type=int, default=1, help="log slates of this many items (with --slate-history)")
    train.add_argument("--slate-history", default="chosen", choices=("chosen", "shown"),
                       help="shown: the history records whole slates and the encoder is trained on them "
                            "screen by screen, as first use does (default chosen: one item per step)")
    prepare = commands.add_parser(
        "prepare", help="train and cache the encoder that environments of these dynamics need, as first use does "
                        "(nothing to do when it is shipped or cached); prints the weights file")
    prepare.add_argument("--preset", default="mixed", choices=PRESET_NAMES, help="the preset whose dynamics")
    prepare.add_argument("--data", default=None, help="MovieLens-100K folder (preset ml100k; default $RECENV_ML100K)")
    prepare.add_argument("--params", type=_overrides, default=None,
                         help='user-model overrides as JSON, e.g. \'{"clickbait": false}\' (default: the preset\'s own)')
    prepare.add_argument("--slate-size", type=int, default=1, help="items per slate (with --slate-history shown)")
    prepare.add_argument("--slate-history", default="chosen", choices=("chosen", "shown"),
                         help="shown: the encoder of histories of whole slates (default chosen: one item per step)")
    prepare.add_argument("--slate-position-decay", type=float, default=DEFAULT_SLATE_POSITION_DECAY,
                         help="the slates' position effect λ (with --slate-history shown)")
    ship = commands.add_parser("ship", help="reproduce the shipped weights of every preset (writes recenv/assets)")
    ship.add_argument("--data", default=None, help="MovieLens-100K folder for preset ml100k (default $RECENV_ML100K; "
                                                   "without it ml100k is skipped, said so)")
    ship.add_argument("--presets", nargs="+", default=list(PRESET_NAMES), choices=PRESET_NAMES)
    args = parser.parse_args(argv)

    if args.command == "train":
        training = replace(TrainingConfig(), hidden_size=args.hidden_size, max_epochs=args.epochs, batch_size=args.batch_size,
                           learning_rate=args.lr, seed=args.seed, device=args.device,
                           inverse_propensity=args.inverse_propensity)
        path, report = train_preset(args.preset, args.users, training, seed=args.seed, data_path=args.data,
                                    out=args.out, tensorboard_dir=args.tensorboard, slate_size=args.slate_size,
                                    slate_history=args.slate_history)
        _print_report(report)
        print(f"\nwrote {path} and {path.with_suffix('.json')}")
        return


    if args.command == "prepare":
        config = EnvConfig(preset=args.preset, data_path=args.data, params=args.params, slate_size=args.slate_size,
                           slate_history=args.slate_history, slate_position_decay=args.slate_position_decay)
        print(f"encoder weights: {prepare_encoder(config)}")
        return

    for preset in args.presets:
        if preset in REAL_DATA_PRESETS and args.data is None and not os.environ.get("RECENV_ML100K"):
            print(f"skipping preset {preset}: it needs --data or $RECENV_ML100K")
            continue
        path, report = train_preset(preset, data_path=args.data if preset in REAL_DATA_PRESETS else None)
        _print_report(report)
        print(f"wrote {path} ({report['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
