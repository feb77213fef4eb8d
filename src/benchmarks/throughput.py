"""Throughput of DriftingUser-v0: user-steps per second of the scalar env, Gymnasium's
``SyncVectorEnv`` of scalar envs, and the native vector env, across batch sizes and devices.

One *user-step* is one recommendation shown to one user and answered (click or not), with the
observation and info for it built and returned as numpy arrays (the default output) — autoresets
included. Actions are uniformly random and drawn before timing starts. N = 1,024 and the largest N
are also timed with ``ground_truth=False`` (no ground-truth info: what training needs), and Gymnasium's
``CartPole-v1`` through ``gym.make`` is timed in the same run as a reference. Slates
(``--slate-sizes``, default 10) are timed at N = 1,024: one user-step is then one slate of k items
shown and answered (random slates, drawn before timing).

It also times a learner fed by each: Stable-Baselines3's PPO training on N users through SB3's own
``make_vec_env`` (a ``DummyVecEnv`` of N scalar envs) and through :class:`recenv.sb3.SB3VecEnv`
over the native vector env, with the same hyperparameters: training user-steps per second,
rollouts and gradient updates included.

It also times the library's own learners as the comparison trains them (``--learners``, default
DQN-embedding and PPO): their comparison factories and training env (64 users of the native vector
env, no ground-truth info, the public view), on one torch thread and on two: training user-steps
per second of the factory call (``--learner-steps`` user-steps), collection and gradient updates
included.

    recenv throughput --quick          # short timings, N up to 1,024, small training budgets
                                       # (its time: docs/results/tuning-notes.md)
    recenv throughput                  # measured: docs/results/throughput.md

Writes ``throughput.md``, ``throughput.csv`` and ``throughput.json`` into ``--out``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import recenv  # noqa: F401  (registers DriftingUser-v0)
from benchmarks.environment_info import hardware_and_versions, markdown_header, pipe_table
from benchmarks.learner_timing import LEARNERS, Measurement, measure_learner
from benchmarks.options import OptionError

ENV_ID = "DriftingUser-v0"


def _timed(step, min_seconds: float, min_steps: int, warmup_steps: int) -> tuple[int, float]:
    for _ in range(warmup_steps):
        step()
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
    return steps, time.perf_counter() - start


def _one_env(env: gym.Env, min_seconds: float, seed: int) -> tuple[int, float]:
    """Steps of one Gymnasium env with uniformly random actions (drawn before timing and cycled),
    resetting when an episode ends: (steps, seconds)."""
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(env.action_space.n, size=65_536).tolist()
    counter = iter(range(10**12))

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(actions[next(counter) % len(actions)])
        if terminated or truncated:
            env.reset()

    timing = _timed(step, min_seconds, min_steps=200, warmup_steps=50)
    env.close()
    return timing


def measure_single(obs_mode: str, min_seconds: float, seed: int = 0) -> Measurement:
    steps, seconds = _one_env(gym.make(ENV_ID, obs_mode=obs_mode), min_seconds, seed)
    return Measurement("single", 1, "cpu", obs_mode, steps, seconds)


def measure_sync(num_envs: int, obs_mode: str, min_seconds: float, seed: int = 0) -> Measurement:
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="sync", obs_mode=obs_mode)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    steps, seconds = _timed(lambda: envs.step(rng.integers(envs.single_action_space.n, size=num_envs)),
                            min_seconds, min_steps=3, warmup_steps=2)
    envs.close()
    return Measurement("sync", num_envs, "cpu", obs_mode, steps * num_envs, seconds)


def measure_cartpole(min_seconds: float, seed: int = 0) -> Measurement:
    """Gymnasium's ``CartPole-v1`` through ``gym.make``, stepped the same way: the reference the
    native env's speed is quoted against (measured in the same run, on the same machine)."""
    steps, seconds = _one_env(gym.make("CartPole-v1"), min_seconds, seed)
    return Measurement("cartpole", 1, "cpu", "-", steps, seconds)


def measure_native(num_envs: int, device: str, obs_mode: str, min_seconds: float, seed: int = 0,
                   ground_truth: bool = True, slate_size: int = 1) -> Measurement:
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, device=device, obs_mode=obs_mode, ground_truth=ground_truth,
                        slate_size=slate_size)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    num_items = envs.unwrapped.catalog.num_items
    shape = (num_envs,) if slate_size == 1 else (num_envs, slate_size)
    action_batches = [rng.integers(num_items, size=shape) for _ in range(64)]
    counter = iter(range(10**12))

    def step() -> None:
        envs.step(action_batches[next(counter) % len(action_batches)])

    steps, seconds = _timed(step, min_seconds, min_steps=5, warmup_steps=5)
    if device == "cuda":
        torch.cuda.synchronize()
    envs.close()
    return Measurement("native" if ground_truth else "native-lean", num_envs, device, obs_mode, steps * num_envs, seconds,
                       slate_size)


SB3_PPO_KINDS = {"sb3-ppo make_vec_env": "SB3 `make_vec_env` (DummyVecEnv of scalar envs)",
                 "sb3-ppo SB3VecEnv": "`recenv.sb3.SB3VecEnv` over the native vector env"}


def measure_sb3_ppo(kind: str, num_envs: int, total_steps: int, seed: int = 0) -> Measurement:
    """Training user-steps/s of SB3's PPO (``n_steps=128`` per user, SB3's other defaults) on
    ``num_envs`` users fed by SB3's ``make_vec_env`` or by :class:`recenv.sb3.SB3VecEnv`."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from recenv.sb3 import SB3VecEnv

    if kind == "sb3-ppo make_vec_env":
        venv = make_vec_env(ENV_ID, n_envs=num_envs, seed=seed)
    elif kind == "sb3-ppo SB3VecEnv":
        venv = SB3VecEnv(gym.make_vec(ENV_ID, num_envs=num_envs, device="cpu"))
    else:
        raise ValueError(f"unknown SB3 PPO feed {kind!r}; known: {list(SB3_PPO_KINDS)}")
    model = PPO("MlpPolicy", venv, n_steps=128, seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=total_steps)
    seconds = time.perf_counter() - start
    venv.close()
    return Measurement(kind, num_envs, "cpu", "encoded", int(model.num_timesteps), seconds)


def learner_table(results: Sequence[Measurement]) -> str:
    """The learner rows: training user-steps/s on one and on two torch threads."""
    rows = [r for r in results if r.kind.startswith("learner ")]
    if not rows:
        return ""
    columns = ["learner", "N users", "torch threads", "training user-steps", "seconds", "training user-steps/s"]
    return pipe_table(columns, [[LEARNERS[r.kind.removeprefix("learner ")], str(r.num_envs), str(r.threads),
                                 f"{r.user_steps:,}", f"{r.seconds:.1f}", f"{r.user_steps_per_second:,.0f}"] for r in rows])


SLATE_USERS = 1024
"""N of the slate rows (default)."""


def run(sizes: Sequence[int], devices: Sequence[str], obs_modes: Sequence[str], sync_max: int, min_seconds: float,
        slate_sizes: Sequence[int] = (10,), slate_users: int = SLATE_USERS) -> list[Measurement]:
    plan: list[tuple] = [("cartpole", 1, "cpu", "-", 1)]
    for obs_mode in obs_modes:
        plan.append(("single", 1, "cpu", obs_mode, 1))
        plan += [("sync", n, "cpu", obs_mode, 1) for n in sizes if n <= sync_max]
        plan += [("native", n, device, obs_mode, 1) for device in devices for n in sizes]
        plan += [("native-lean", n, device, obs_mode, 1) for device in devices for n in sizes if n in (1024, max(sizes))]
        for k in slate_sizes:
            plan += [(kind, slate_users, device, obs_mode, k) for device in devices for kind in ("native", "native-lean")]
    results = []
    for kind, n, device, obs_mode, k in tqdm(plan, desc="throughput", unit="config"):
        if kind == "cartpole":
            results.append(measure_cartpole(min_seconds))
        elif kind == "native-lean":
            results.append(measure_native(n, device, obs_mode, min_seconds, ground_truth=False, slate_size=k))
        elif kind == "single":
            results.append(measure_single(obs_mode, min_seconds))
        elif kind == "sync":
            results.append(measure_sync(n, obs_mode, min_seconds))
        else:
            results.append(measure_native(n, device, obs_mode, min_seconds, slate_size=k))
    return results


def sb3_ppo_table(results: Sequence[Measurement]) -> str:
    """The SB3 PPO rows: training user-steps/s of each feed, and the native feed's ratio."""
    rows = [r for r in results if r.kind in SB3_PPO_KINDS]
    if not rows:
        return ""
    baseline = {r.num_envs: r.user_steps_per_second for r in rows if r.kind == "sb3-ppo make_vec_env"}
    lines = [
        "| SB3 PPO fed by | N users | training user-steps | seconds | training user-steps/s | × `make_vec_env` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = baseline.get(r.num_envs)
        lines.append(
            f"| {SB3_PPO_KINDS[r.kind]} | {r.num_envs} | {r.user_steps:,} | {r.seconds:.1f} | "
            f"{r.user_steps_per_second:,.0f} | {'' if ratio is None else f'{r.user_steps_per_second / ratio:.1f}'} |"
        )
    return "\n".join(lines) + "\n"


def markdown_table(results: Sequence[Measurement]) -> str:
    results = [r for r in results if r.kind not in SB3_PPO_KINDS and not r.kind.startswith("learner ")]
    single = {r.obs_mode: r.user_steps_per_second for r in results if r.kind == "single"}
    sync = {(r.obs_mode, r.num_envs): r.user_steps_per_second for r in results if r.kind == "sync"}
    cartpole = next((r.user_steps_per_second for r in results if r.kind == "cartpole"), None)
    names = {"single": "`gym.make` (scalar env)", "sync": "`SyncVectorEnv` of scalar envs", "native": "native vector env",
             "native-lean": "native vector env, `ground_truth=False`", "cartpole": "Gymnasium `CartPole-v1`, `gym.make`"}
    lines = [
        "| env | N users | device | obs_mode | user-steps/s | × scalar env | × SyncVectorEnv (same N) | × CartPole |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        speed = r.user_steps_per_second
        vs_sync = sync.get((r.obs_mode, r.num_envs))
        vs_single = f"{speed / single[r.obs_mode]:.1f}" if r.obs_mode in single else ""
        vs_cartpole = "" if cartpole is None else f"{speed / cartpole:.2f}"
        name = names[r.kind] + ("" if r.slate_size == 1 else f", slates of {r.slate_size}")
        lines.append(
            f"| {name} | {r.num_envs} | {r.device} | {r.obs_mode} | {speed:,.0f} | {vs_single} | "
            f"{'' if not r.kind.startswith('native') or vs_sync is None or r.slate_size > 1 else f'{speed / vs_sync:.1f}'} | "
            f"{vs_cartpole} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(results: Sequence[Measurement], out: Path, command: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    info = hardware_and_versions()
    rows = [{**asdict(r), "user_steps_per_second": r.user_steps_per_second} for r in results]
    with open(out / "throughput.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "throughput.json").write_text(json.dumps({"command": command, "environment": info, "results": rows}, indent=2))
    text = (
        markdown_header("Throughput of DriftingUser-v0", info, command)
        + "- One user-step: one item shown to one user and answered, observation and info returned as numpy, autoresets included.\n\n"
        + markdown_table(results)
    )
    if sb3 := sb3_ppo_table(results):
        text += ("\nSB3's PPO training on N users (`n_steps=128` per user, SB3's other defaults, `encoded` "
                 "observations; rollouts and updates included):\n\n" + sb3)
    if learners := learner_table(results):
        text += ("\nThe library's learners as the comparison trains them (their default settings; 64 users of the "
                 "native vector env without ground-truth info, through the public view; the whole `learn` call):\n\n"
                 + learners)
    (out / "throughput.md").write_text(text, encoding="utf-8")
    return text


def write_report(out: Path, command: str, quick: bool = False, sizes: Sequence[int] | None = None,
                 devices: Sequence[str] | None = None, obs_modes: Sequence[str] = ("encoded", "history"),
                 slate_sizes: Sequence[int] = (10,), slate_users: int = SLATE_USERS, sync_max: int = 1024,
                 seconds: float | None = None, sb3_ppo_users: int = 16, sb3_ppo_steps: int | None = None,
                 learners: Sequence[str] = tuple(LEARNERS), learner_steps: int | None = None,
                 learner_threads: Sequence[int] = (1, 2)) -> str:
    """Every measurement (``quick``: N up to 1,024, short timings, smaller training budgets), written
    to ``out`` as ``throughput.md``, ``.csv`` and ``.json``; returns the Markdown.

    Defaults: ``sizes`` 1 64 1024 8192 (quick: up to 1024); ``devices`` cpu, and cuda when present;
    ``seconds`` 3 per configuration (quick 0.5); SB3's PPO 16,384 user-steps per feed (quick 4,096;
    0 skips); learners 100,000 user-steps per thread count (quick 10,000; 0 skips).

    :raises OptionError: a slate size below 2.
    """
    if any(k < 2 for k in slate_sizes):
        raise OptionError("--slate-sizes", f"{' '.join(map(str, slate_sizes))}: slate sizes are at least 2")
    sizes = sizes or ([1, 64, 1024] if quick else [1, 64, 1024, 8192])
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    seconds = seconds if seconds is not None else (0.5 if quick else 3.0)
    results = run(sizes, devices, obs_modes, sync_max, seconds, slate_sizes, slate_users)
    sb3_steps = sb3_ppo_steps if sb3_ppo_steps is not None else (4096 if quick else 16384)
    if sb3_steps > 0:
        for kind in tqdm(SB3_PPO_KINDS, desc="SB3 PPO", unit="feed"):
            results.append(measure_sb3_ppo(kind, sb3_ppo_users, sb3_steps))
    learner_steps = learner_steps if learner_steps is not None else (10_000 if quick else 100_000)
    if learner_steps > 0:
        plan = [(name, threads) for name in learners for threads in learner_threads]
        for name, threads in tqdm(plan, desc="learners", unit="run"):
            results.append(measure_learner(name, learner_steps, threads))
    return write_outputs(results, out, command)
