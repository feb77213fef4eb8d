"""What the logs do to the encoder: privileged logs, deployable logs, deployable logs weighted by
inverse propensity.

    recenv encoder-logs --logged-users 6000     # measured: docs/results/encoders.md

Three encoders are trained on preset ``mixed`` (``--logged-users`` logged sessions each, at most 15
epochs): on logs of the old ε-oracle policy (:class:`recenv.offline.logging_policies.MixedBehaviourPolicy`,
privileged), on :func:`recenv.offline.logging_policies.make_logs` (what ships), and on the same with
``TrainingConfig(inverse_propensity=True)``. Each is evaluated on its own log's held-out users
(:func:`recenv.offline.encoder_training.evaluate`) and over every item of the catalog in the states
uniformly random recommendations lead 500 fresh users to
(:func:`recenv.offline.encoder_training.catalog_calibration`). Writes ``encoder_logs.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

import recenv
from benchmarks.protocol import prepare_encoders
from recenv import EnvConfig
from recenv.offline.encoder_training import TrainingConfig, catalog_calibration, evaluate, split_users, train_encoder
from recenv.offline.logging_policies import MixedBehaviourPolicy, make_logs
from recenv.offline.logs import collect_logs

SETUPS = ("privileged mixed logs", "deployable logs", "deployable logs + IPS")


def measure(users: int, seed: int = 0) -> dict[str, dict]:
    config = EnvConfig(preset="mixed", device="cpu")
    prepare_encoders({"mixed": config})  # the calibration's envs observe through the preset's encoder
    catalog = recenv.default_catalog()
    results = {}
    for name in tqdm(SETUPS, desc="encoder logs", unit="encoder"):
        started = time.perf_counter()
        if name.startswith("privileged"):
            log = collect_logs(config, MixedBehaviourPolicy(seed=seed), users, seed=seed, progress=False)
        else:
            log = make_logs(config, users, seed=seed, progress=False)
        train_log, validation_log, test_log = split_users(log, (0.8, 0.1, 0.1), seed=seed)
        training = TrainingConfig(device="cpu", max_epochs=15, seed=seed, inverse_propensity=name.endswith("IPS"))
        model, history = train_encoder(train_log, validation_log, catalog, training, progress=False)
        metrics = evaluate(model, train_log, test_log, catalog)["lstm"]
        results[name] = {
            "auc": metrics["auc"], "log_loss": metrics["log_loss"], "calibration_held_out": metrics["calibration"],
            "catalog_calibration": catalog_calibration(model, config, 500, seed=seed + 1),
            "epochs": history["epochs_run"], "seconds": time.perf_counter() - started,
        }
        tqdm.write(f"{name} {json.dumps(results[name])}")
    return results


def write_report(out: Path, command: str, users: int = 6000, seed: int = 0) -> Path:
    """:func:`measure`, written to ``out / "encoder_logs.json"`` (with the command); returns its path."""
    results = measure(users, seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "encoder_logs.json"
    path.write_text(json.dumps({"command": command, "users": users, "seed": seed, "results": results}, indent=1) + "\n")
    return path
