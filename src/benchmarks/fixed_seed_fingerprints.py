"""Fingerprints of fixed-seed runs: how a refactor shows that it kept every number.

    recenv fingerprints --out before                           # on the commit before: before/fingerprints.json
    recenv fingerprints --compare before/fingerprints.json     # after: exit status 1 on any change

One SHA-256 (16 hex digits) per run, over every array the run returns: scalar-env and vector-env
rollouts of every synthetic preset and observation mode (random actions from a fixed generator,
across resets and truncation at the horizon), each vector autoreset mode, a persona with a scripted
shift, training logs of the default behaviour policy, organic histories and their drift statistics;
with ``--data PATH``, MovieLens-100K (``ml100k``) rollouts too. Only public entry points are used
(``gym.make``, ``gym.make_vec``, :func:`recenv.offline.logging_policies.make_logs`, ...), so the same script runs
on both sides of a refactor that keeps them. Fingerprints are for one machine and one torch version:
compare runs made on the same machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import recenv
from recenv import EnvConfig
from recenv.offline.drift_statistics import drift_statistics
from recenv.offline.logging_policies import make_logs
from recenv.offline.organic_histories import simulate_organic_histories
from recenv.threads import torch_threads

SCALAR_STEPS = 260
"""Steps of a scalar rollout: past the horizon of 200, so truncation and a reset are in it."""
VECTOR_STEPS = 230
VECTOR_USERS = 8


def fingerprint(*arrays: Any) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes, as 16 hex digits."""
    digest = hashlib.sha256()
    for value in arrays:
        array = np.ascontiguousarray(np.asarray(value))
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _info_arrays(info: dict[str, Any]) -> list[np.ndarray]:
    return [np.asarray(info[key]) for key in sorted(info) if "final" not in key]


def scalar_rollout(settings: dict[str, Any], seed: int = 3, action_seed: int = 7) -> str:
    env = gym.make("DriftingUser-v0", **settings)
    actions = np.random.default_rng(action_seed)
    observation, info = env.reset(seed=seed)
    parts: list[Any] = [observation, *_info_arrays(info)]
    for _ in range(SCALAR_STEPS):
        observation, reward, terminated, truncated, info = env.step(int(actions.integers(env.action_space.n)))
        parts += [observation, [reward, terminated, truncated], *_info_arrays(info)]
        if terminated or truncated:
            observation, info = env.reset()
            parts += [observation, *_info_arrays(info)]
    return fingerprint(*parts)


def vector_rollout(settings: dict[str, Any], seed: int = 5, action_seed: int = 11) -> str:
    envs = gym.make_vec("DriftingUser-v0", num_envs=VECTOR_USERS, **{"device": "cpu", **settings})
    actions = np.random.default_rng(action_seed)
    observation, info = envs.reset(seed=seed)
    parts: list[Any] = [observation, *_info_arrays(info)]
    for _ in range(VECTOR_STEPS):
        observation, reward, terminated, truncated, info = envs.step(
            actions.integers(envs.single_action_space.n, size=VECTOR_USERS))
        parts += [observation, reward, terminated, truncated, *_info_arrays(info)]
    return fingerprint(*parts)


def persona_rollout() -> str:
    env = gym.make("DriftingUser-v0", obs_mode="history")
    observation, _ = env.reset(seed=1, options={"persona": np.ones(16), "shifts": [(5, np.arange(16.0))]})
    parts: list[Any] = [observation]
    for step in range(20):
        observation, reward, *_ = env.step(step)
        parts += [observation, [reward]]
    return fingerprint(*parts)


def logs(preset: str, users: int, seed: int) -> str:
    log = make_logs(EnvConfig(preset=preset), users, seed=seed, progress=False)
    return fingerprint(log.user, log.step, log.item, log.click, log.propensity, log.click_probability)


def organic_histories_and_statistics() -> dict[str, str]:
    catalog = recenv.default_catalog()
    lengths = np.array([5, 40, 120, 200, 0, 33] * 20)
    histories = simulate_organic_histories(catalog, recenv.make_params("mixed"), lengths, torch.Generator().manual_seed(4))
    statistics = drift_statistics(histories, catalog.latents, catalog.topics)
    summary = json.dumps(statistics.to_dict(), sort_keys=True, default=str).encode()
    return {
        "organic/mixed": fingerprint(histories.items, histories.offsets),
        "drift_statistics": fingerprint(np.frombuffer(summary, dtype=np.uint8), statistics.per_user),
    }


def runs(data_path: str | None) -> dict[str, Callable[[], str | dict[str, str]]]:
    """Name → the run that makes its fingerprint."""
    table: dict[str, Callable[[], str | dict[str, str]]] = {}
    for preset in recenv.SYNTHETIC_PRESETS:
        for mode in recenv.OBS_MODES:
            settings = {"preset": preset, "obs_mode": mode}
            table[f"scalar/{preset}/{mode}"] = lambda s=settings: scalar_rollout(s)
            table[f"vector/{preset}/{mode}"] = lambda s=settings: vector_rollout(s)
    table["vector/mixed/encoded/same_step"] = lambda: vector_rollout({"autoreset_mode": "same_step"})
    table["vector/mixed/history/disabled"] = lambda: vector_rollout({"obs_mode": "history", "autoreset_mode": "disabled"})
    table["scalar/mixed/persona"] = persona_rollout
    if data_path is not None:
        for mode in ("history", "ids"):
            settings = {"preset": "ml100k", "obs_mode": mode, "data_path": data_path}
            table[f"scalar/ml100k/{mode}"] = lambda s=settings: scalar_rollout(s)
            table[f"vector/ml100k/{mode}"] = lambda s=settings: vector_rollout(s)
    table["logs/mixed/600"] = lambda: logs("mixed", 600, seed=0)
    table["logs/abrupt/300"] = lambda: logs("abrupt", 300, seed=2)
    table["organic histories and drift statistics"] = organic_histories_and_statistics
    return table


def compute(data_path: str | None = None, progress: bool = True) -> dict[str, str]:
    """Every fingerprint (call it on one torch thread, as :func:`check` does; how long it takes:
    docs/results/tuning-notes.md)."""
    fingerprints: dict[str, str] = {}
    for name, run in tqdm(runs(data_path).items(), desc="fingerprints", unit="run", disable=not progress):
        result = run()
        fingerprints.update(result if isinstance(result, dict) else {name: result})
    return fingerprints


def check(out: Path | None = None, compare_with: Path | None = None, data: str | None = None) -> int:
    """Compute the fingerprints (on one torch thread: the same arithmetic whatever the machine's core
    count), print them, write them to ``out`` (JSON) when given, and compare them with the file
    ``compare_with`` when given: 1 when a fingerprint changed, else 0 (the command's exit status)."""
    with torch_threads(1):
        fingerprints = compute(data)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(fingerprints, indent=2) + "\n")
    for name, value in fingerprints.items():
        print(f"{name:40s} {value}")
    if compare_with is None:
        return 0
    expected = json.loads(compare_with.read_text())
    changed = sorted(name for name in expected.keys() & fingerprints.keys() if expected[name] != fingerprints[name])
    missing = sorted(expected.keys() ^ fingerprints.keys())
    print(f"\n{len(expected.keys() & fingerprints.keys()) - len(changed)} identical, {len(changed)} changed"
          + (f": {changed}" if changed else "") + (f"; only on one side: {missing}" if missing else ""))
    return 1 if changed else 0
