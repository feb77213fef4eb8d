"""Training and evaluation of the next-click LSTM (:mod:`recenv.encoder`) on simulated logs.

The recipe, top to bottom (:func:`train_and_evaluate`):

1. Log sessions with the default behaviour policy (:class:`recenv.offline.logs.MixedBehaviourPolicy`)
   on the simulator (:func:`recenv.offline.logs.make_logs`); split *users* into train / validation / test.
2. Train with binary cross-entropy on every logged interaction (each click predicted from the
   interactions before it), Adam, gradient clipping; early stopping on the validation loss of
   session interactions; the best epoch's weights are kept.
3. Evaluate on the held-out users' session interactions against two references fitted on the
   training logs (:mod:`recenv.offline.click_predictors`): item popularity and a static profile. Reported:
   AUC, log loss, the write-up's MSE between predicted probability and the observed click (the
   Brier score), and MSE to the simulator's true click probability.

``python -m recenv.offline.encoder_training train --default`` reproduces the shipped default weights
(seeded; on the CPU the run is deterministic).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from recenv.catalog import Catalog, default_catalog
from recenv.config import EnvConfig
from recenv.encoder import EncoderConfig, NextClickLSTM, default_encoder_path, save_encoder
from recenv.offline.click_predictors import PopularityPredictor, StaticProfilePredictor, auc, brier, log_loss
from recenv.offline.logs import InteractionLog, LoggedSessions, make_logs
from recenv.params import UserModelParams
from recenv.presets import SYNTHETIC_PRESETS, preset_catalog
from recenv.simulator import resolve_device

__all__ = [
    "FIRST_USE_EPOCHS",
    "FIRST_USE_USERS",
    "TrainingConfig",
    "evaluate",
    "split_users",
    "train_and_evaluate",
    "train_encoder",
    "train_for_catalog",
]


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


def _to_device(sessions: LoggedSessions, index: np.ndarray, embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
    length = int(sessions.mask[index].sum(1).max())
    device = embeddings.device
    items = torch.as_tensor(sessions.items[index, :length], device=device)
    clicks = torch.as_tensor(sessions.clicks[index, :length], device=device)
    mask = torch.as_tensor(sessions.mask[index, :length], device=device)
    in_session = torch.as_tensor(sessions.steps[index, :length] >= 0, device=device) & mask
    return embeddings[items.clamp_min(0)], clicks, mask, in_session


def predict_sessions(model: NextClickLSTM, sessions: LoggedSessions, embeddings: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """P(click) of every logged interaction given the ones before it, ``(U, L)`` (NaN on padding)."""
    out = np.full(sessions.items.shape, np.nan, dtype=np.float64)
    model.eval()
    with torch.no_grad():
        for index in _batches(sessions, batch_size, rng=None):
            x, clicks, mask, _ = _to_device(sessions, index, embeddings)
            probabilities = torch.sigmoid(model.sequence_logits(x, clicks)).cpu().numpy()
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
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    train, validation = train_log.sessions(), validation_log.sessions()
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
            x, clicks, mask, _ = _to_device(train, index, embeddings)
            logits = model.sequence_logits(x, clicks)
            loss = loss_fn(logits[mask], clicks[mask])
            optimizer.zero_grad()
            (loss / mask.sum()).backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            total, count = total + loss.item(), count + int(mask.sum())
        validation_loss = _session_log_loss(model, validation, embeddings)
        history["train_loss"].append(total / count)
        history["validation_loss"].append(validation_loss)
        history["epoch_seconds"].append(time.perf_counter() - started)
        if writer is not None:
            writer.add_scalar("loss/train", total / count, epoch)
            writer.add_scalar("loss/validation_session", validation_loss, epoch)
        bar.set_postfix(train=f"{total / count:.4f}", validation=f"{validation_loss:.4f}")
        if validation_loss < best[0] - 1e-5:
            best = (validation_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
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
    return model, history


def _session_log_loss(model: NextClickLSTM, sessions: LoggedSessions, embeddings: torch.Tensor) -> float:
    probabilities = predict_sessions(model, sessions, embeddings)
    rows = sessions.mask & (sessions.steps >= 0)
    return log_loss(probabilities[rows], sessions.clicks[rows])


# ---------------------------------------------------------------- evaluation


def evaluate(model: NextClickLSTM, train_log: InteractionLog, test_log: InteractionLog, catalog: Catalog) -> dict[str, dict[str, float]]:
    """Metrics of the LSTM and the two references on the test users' session interactions."""
    device = next(model.parameters()).device
    embeddings = torch.tensor(catalog.embeddings, device=device)
    test = test_log.sessions()
    rows = test.mask & (test.steps >= 0)
    clicks = test.clicks[rows]
    true_probability = test.click_probability[rows]
    popularity = PopularityPredictor().fit(train_log, catalog.num_items)
    static = StaticProfilePredictor(catalog.embeddings).fit(train_log.sessions())
    predictions = {
        "lstm": predict_sessions(model, test, embeddings)[rows],
        "popularity": popularity.predict(test.items[rows]),
        "static_profile": static.predict(test)[rows],
    }
    # The simulator's own click probability: the ceiling no predictor can beat on average.
    predictions["true_probability"] = true_probability
    return {
        name: {
            "auc": auc(p, clicks),
            "log_loss": log_loss(p, clicks),
            "mse_click": brier(p, clicks),
            "mse_true_probability": brier(p, true_probability),
        }
        for name, p in predictions.items()
    }


def train_and_evaluate(
    config: EnvConfig,
    num_users: int,
    training: TrainingConfig,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | None = None,
) -> tuple[NextClickLSTM, dict[str, Any]]:
    """Steps 1–3 of the module docstring on users simulated as ``config`` says; returns the model
    and a report (metrics, history, setup)."""
    started = time.perf_counter()
    log = make_logs(config, num_users, seed=seed, progress=progress)
    catalog = preset_catalog(config.catalog, config.preset, config.data_path)
    train_log, validation_log, test_log = split_users(log, (0.8, 0.1, 0.1), seed=seed)
    model, history = train_encoder(train_log, validation_log, catalog, training, progress, tensorboard_dir)
    report = {
        "preset": config.preset,
        "num_users": num_users,
        "interactions": len(log),
        "training": asdict(training),
        "history": history,
        "metrics": evaluate(model, train_log, test_log, catalog),
        "wall_seconds": time.perf_counter() - started,
    }
    return model, report


def evaluate_on_presets(model: NextClickLSTM, catalog: Catalog, num_users: int, seed: int, progress: bool = True) -> dict[str, Any]:
    """The model's metrics, beside both references, on fresh logs of every synthetic preset."""
    results = {}
    for name in SYNTHETIC_PRESETS:
        log = make_logs(EnvConfig(catalog=catalog, preset=name), num_users, seed=seed, progress=progress)
        train_log, test_log = split_users(log, (0.5, 0.5), seed=seed)
        results[name] = evaluate(model, train_log, test_log, catalog)
    return results


FIRST_USE_USERS = 6_000
FIRST_USE_EPOCHS = 15


def train_for_catalog(catalog: Catalog, path: Path, params: UserModelParams | None = None) -> Path:
    """First-use training for a catalog without weights: ``FIRST_USE_USERS`` logged sessions of users
    with ``params`` (default: preset ``mixed``) and the default warm-up and horizon, at most
    ``FIRST_USE_EPOCHS`` epochs (a few minutes on CPU), progress bars, the result cached at ``path``.
    These budgets are fixed; for others, train with :func:`train_and_evaluate` and pass ``encoder=PATH``."""
    print(f"recenv: no encoder weights for catalog {catalog.fingerprint}; training them once (cached at {path})")
    training = TrainingConfig(max_epochs=FIRST_USE_EPOCHS)
    model, report = train_and_evaluate(EnvConfig(catalog=catalog, params=params), FIRST_USE_USERS, training)
    return save_encoder(model, path, catalog, extra={"report": report})


# ---------------------------------------------------------------- command line


def _print_metrics(title: str, metrics: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'predictor':16s} {'AUC':>7s} {'log loss':>9s} {'MSE click':>10s} {'MSE true p':>11s}")
    for name, m in metrics.items():
        print(f"  {name:16s} {m['auc']:7.4f} {m['log_loss']:9.4f} {m['mse_click']:10.4f} {m['mse_true_probability']:11.4f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m recenv.offline.encoder_training", description="Train the next-click LSTM state encoder.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="log sessions, train, evaluate, write weights + metrics JSON")
    train.add_argument("--default", action="store_true", help="reproduce the shipped default weights (writes recenv/assets)")
    train.add_argument("--preset", default="mixed", choices=sorted(SYNTHETIC_PRESETS), help="user model the logs come from")
    train.add_argument("--users", type=int, default=24_000, help="sessions to log (80/10/10 train/validation/test users)")
    train.add_argument("--eval-users", type=int, default=4_000, help="sessions per preset for the every-preset evaluation (0: skip)")
    train.add_argument("--hidden-size", type=int, default=TrainingConfig.hidden_size)
    train.add_argument("--epochs", type=int, default=TrainingConfig.max_epochs, help="maximum epochs (early stopping)")
    train.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    train.add_argument("--lr", type=float, default=TrainingConfig.learning_rate)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu (default: bit-reproducible), cuda or auto")
    train.add_argument("--out", type=Path, default=Path("results/encoder/encoder.pt"), help="weights file; metrics go beside it as .json")
    train.add_argument("--tensorboard", default=None, help="TensorBoard log folder (optional)")
    args = parser.parse_args(argv)

    if args.default:
        args.out = default_encoder_path()
    catalog = default_catalog()
    training = replace(TrainingConfig(), hidden_size=args.hidden_size, max_epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.lr, seed=args.seed, device=args.device)
    model, report = train_and_evaluate(EnvConfig(preset=args.preset), args.users, training, seed=args.seed,
                                       tensorboard_dir=args.tensorboard)
    _print_metrics(f"held-out users, preset {args.preset} (session interactions)", report["metrics"])
    if args.eval_users:
        report["metrics_by_preset"] = evaluate_on_presets(model, catalog, args.eval_users, seed=args.seed + 1)
        for name, metrics in report["metrics_by_preset"].items():
            _print_metrics(f"fresh logs, preset {name}", metrics)
    report["command"] = "python -m recenv.offline.encoder_training " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    save_encoder(model, args.out, catalog, extra={"metrics": report["metrics"]})
    metrics_path = args.out.with_suffix(".json")
    metrics_path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out} and {metrics_path}")


if __name__ == "__main__":
    main()
