"""What recording whole slates gives the encoder: the one-item encoder reading the chosen items
against the encoder of whole slates, on the same held-out screens.

    recenv slate-history-encoders --eval-users 2000    # measured: docs/results/slates.md

Held-out users (``--eval-users`` sessions, seed ``--seed``, which the encoders' training logs, seed 0,
did not contain) are logged with slates of ``--slate-size`` items by the deployment policies of
:func:`recenv.offline.logging_policies.make_logs`. Before each screen, each encoder reads the
user's history in its own format — the chosen item of every earlier screen (or its first item,
unclicked) for the one-item encoder of the preset, every item shown for the encoder of
``slate_history="shown"`` (trained once by :func:`benchmarks.protocol.prepare_encoders` if not cached) — and scores the screen's items
with its click head. The table gives the within-screen AUC
(:func:`recenv.offline.click_predictors.screen_auc`: how often the chosen item outscores an item
shown with it and skipped), against two references: the slot alone (the earlier slot scores
higher) and the simulator's true choice probability of each slot (privileged; it includes the
position effect, which the encoders' scores leave out), over all screens, the first screen of each
session (both encoders have read the same warm-up: only their training differs) and the later
ones. Writes ``slate_history_encoders.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.protocol import prepare_encoders
from recenv import DriftingUserEnv, EnvConfig
from recenv.encoder import NextClickLSTM
from recenv.offline.click_predictors import screen_auc
from recenv.offline.encoder_training import previous_screens
from recenv.offline.logging_policies import make_logs
from recenv.offline.logs import InteractionLog


def chosen_history(log: InteractionLog) -> InteractionLog:
    """The log as a history of chosen items records it: per screen, one row, the chosen item with
    click 1, or the first slot's item with click 0 (the warm-up rows as they are)."""
    first_of_screen = np.ones(len(log), dtype=bool)
    first_of_screen[1:] = (log.user[1:] != log.user[:-1]) | (log.step[1:] != log.step[:-1])
    screen = np.cumsum(first_of_screen) - 1
    keep = first_of_screen.copy()
    clicked = np.flatnonzero(log.click > 0)
    keep[np.flatnonzero(first_of_screen)[screen[clicked]]] = False  # a clicked screen keeps its chosen row instead
    keep[clicked] = True
    rows = np.flatnonzero(keep)
    return InteractionLog(user=log.user[rows], step=log.step[rows], item=log.item[rows], click=log.click[rows],
                          propensity=log.propensity[rows], click_probability=log.click_probability[rows],
                          slot=np.zeros(len(rows), dtype=np.int16), metadata=dict(log.metadata))


def shown_history_scores(model: NextClickLSTM, log: InteractionLog, embeddings: torch.Tensor) -> np.ndarray:
    """The logit of every row of a log of slates from the encoder's state after the screens before
    its own (no position term), in the log's order."""
    sessions = log.sessions()
    logits = np.full(sessions.items.shape, np.nan)
    lengths = sessions.mask.sum(1)
    with torch.no_grad():
        for start in range(0, len(sessions), 64):
            index = np.arange(start, min(start + 64, len(sessions)))
            width = int(lengths[index].max())
            previous = previous_screens(sessions.steps[index, :width], sessions.mask[index, :width])
            logits[index, :width] = model.sequence_logits(
                embeddings[torch.as_tensor(sessions.items[index, :width]).clamp_min(0)],
                torch.as_tensor(sessions.clicks[index, :width]),
                None if previous is None else torch.as_tensor(previous)).numpy()
    return logits[sessions.mask]


def chosen_history_scores(model: NextClickLSTM, log: InteractionLog, embeddings: torch.Tensor) -> np.ndarray:
    """The logit of every row of a log of slates from the one-item encoder's state after the chosen
    items of the screens before its own (:func:`chosen_history`), in the log's order."""
    history = chosen_history(log).sessions()
    user_rows = np.split(np.arange(len(log)), np.flatnonzero(np.diff(log.user)) + 1)  # the log is sorted by user
    scores = np.full(len(log), np.nan)
    lengths = history.mask.sum(1)
    with torch.no_grad():
        for start in range(0, len(history), 64):
            index = np.arange(start, min(start + 64, len(history)))
            width = int(lengths[index].max())
            outputs, _ = model.encode(embeddings[torch.as_tensor(history.items[index, :width]).clamp_min(0)],
                                      torch.as_tensor(history.clicks[index, :width]))
            h0, _ = model.initial_state(len(index), embeddings.device)
            states = torch.cat([h0[:, None], outputs], 1)  # position p + 1: after history row p
            for row, user in zip(index, range(start, start + len(index))):
                rows = user_rows[user]
                steps = history.steps[row][history.mask[row]]
                # The state before screen t: after every history row of an earlier step.
                before = np.searchsorted(steps, log.step[rows], side="left")
                items = embeddings[torch.as_tensor(log.item[rows])]
                scores[rows] = model.click_logits(states[row - start, before], items).numpy()
    return scores


def measure(users: int, slate_size: int, seed: int, preset: str = "mixed", shown_encoder: Path | None = None
            ) -> dict[str, object]:
    """The table of the module docstring; ``shown_encoder``: a weights file for the whole-slate
    histories instead of the matched one (checked against these dynamics and this history)."""
    config = EnvConfig(preset=preset, slate_size=slate_size, slate_history="shown", device="cpu",
                       encoder=None if shown_encoder is None else str(shown_encoder))
    chosen_config = EnvConfig(preset=preset, slate_size=slate_size, device="cpu")
    started = time.perf_counter()
    prepare_encoders({"shown": config, "chosen": chosen_config})  # the whole-slate one: trained once if not cached
    shown_model = DriftingUserEnv(config=config).encoder
    chosen_model = DriftingUserEnv(config=chosen_config).encoder
    log = make_logs(config, users, seed=seed, progress=True)
    embeddings = torch.tensor(np.array(DriftingUserEnv(config=config.replace(obs_mode="ids", encoder=None)).catalog.embeddings))
    session = log.step >= 0
    scores = {
        "encoder of chosen-item histories": chosen_history_scores(chosen_model, log, embeddings),
        "encoder of whole-slate histories": shown_history_scores(shown_model, log, embeddings),
        "slot alone (earlier is better)": -log.slot.astype(np.float64),
        "true choice probability (privileged, with position)": log.click_probability.astype(np.float64),
    }
    screens = session & (log.slot == 0)
    first = _rows(log, log.step <= 0)  # the first screen: both encoders have read the same warm-up only
    later = _rows(log, log.step != 0)
    return {
        "preset": preset, "slate_size": slate_size, "users": users, "seed": seed, "shown_encoder": config.encoder,
        "screens": int(screens.sum()),
        "screens_with_a_click": int(log.click[session].sum()),
        "screen_auc": {name: screen_auc(value, log) for name, value in scores.items()},
        "screen_auc_first_screen": {name: screen_auc(value[log.step <= 0], first) for name, value in scores.items()},
        "screen_auc_later_screens": {name: screen_auc(value[log.step != 0], later) for name, value in scores.items()},
        "seconds": time.perf_counter() - started,
    }


def _rows(log: InteractionLog, keep: np.ndarray) -> InteractionLog:
    return InteractionLog(**{name: getattr(log, name)[keep] for name in ("user", "step", "item", "click", "propensity",
                                                                          "click_probability", "slot")})


def write_report(out: Path, command: str, users: int = 2000, slate_size: int = 10, seed: int = 1_000,
                 shown_encoder: Path | None = None) -> str:
    """:func:`measure`, written to ``out`` as ``slate_history_encoders[-<weights>].json``; returns the
    table as text."""
    result = measure(users, slate_size, seed, shown_encoder=shown_encoder)
    lines = [f"{result['screens']} held-out screens of {slate_size}, {result['screens_with_a_click']} with a click",
             f"  {'within-screen AUC':54s} {'all':>7s} {'first':>7s} {'later':>7s}"]
    for name, value in result["screen_auc"].items():
        lines.append(f"  {name:54s} {value:7.4f} {result['screen_auc_first_screen'][name]:7.4f} "
                     f"{result['screen_auc_later_screens'][name]:7.4f}")
    out.mkdir(parents=True, exist_ok=True)
    name = "slate_history_encoders" + ("" if shown_encoder is None else f"-{shown_encoder.stem}")
    (out / f"{name}.json").write_text(json.dumps({"command": command, **result}, indent=1) + "\n")
    return "\n".join(lines)
