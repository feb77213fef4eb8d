"""Scaling curves of the native vector env: user-steps per second and resident memory against the
number of users N (1 to 65,536) and against the catalog size (500 to 100,000 items).

    recenv scaling --quick     # N up to 4,096, items up to 10,000 (its time: docs/results/tuning-notes.md)
    recenv scaling             # the curves (measured: docs/results/throughput.md)

Each configuration runs in a fresh process, so its resident memory is its own: the process's
resident set (``VmRSS``) after the env is built and stepped, and the memory per user is the growth
over the same process with one user, divided by the users added. Observations are ``encoded`` (the
default); steps take uniformly random actions, drawn before timing, autoresets included.

Catalogs beyond the shipped 500 items are generated from it: item ``j`` is item ``j mod 500``'s text
embedding plus Gaussian noise (σ = 0.3 per dimension before re-normalising), with that item's
topic, quality and clickbait score, so topics keep their structure at every size. The encoder is
the shipped one (``mixed``), taken as given: it reads 384-d embeddings whatever the catalog. Each
catalog size is timed with the ground truth in ``info`` (which scores every item for the best
P(click): the part that grows with the catalog) and with ``ground_truth=False``.

On a GPU (``--device cuda``) the curve over N goes up to 2^20 = 1,048,576 users, and the memory
is the device's (``torch.cuda.max_memory_allocated``) rather than the process's resident set;
``--array-type torch`` keeps observations and info on the device (no copies to the host, which at
a million users move about 300 MB per step):

    recenv scaling --device cuda --seconds 2 --out results/scaling-cuda
    recenv scaling --device cuda --array-type torch --seconds 2 --out results/scaling-cuda-torch

Writes ``scaling.md``, ``scaling.csv``, ``scaling.json`` and ``scaling.png`` into ``--out``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.environment_info import hardware_and_versions, markdown_header
from benchmarks.options import OptionError

FULL_USERS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
FULL_ITEMS = (500, 2_000, 10_000, 50_000, 100_000)
QUICK_USERS = (1, 16, 256, 1024, 4096)
QUICK_ITEMS = (500, 2_000, 10_000)
CUDA_USERS = (1, 1024, 16_384, 131_072, 1_048_576)
"""``--device cuda``'s default curve over N: up to 2^20 users."""
ITEMS_USERS = 1024
"""Users of the catalog-size curve."""


def generated_catalog(num_items: int, seed: int = 0) -> Any:
    """The shipped catalog (``num_items <= 500``: its first items), or one of ``num_items`` items
    generated from it (see the module docstring)."""
    from recenv.catalog import Catalog, default_catalog

    base = default_catalog()
    source = np.arange(num_items) % base.num_items
    if num_items <= base.num_items:
        embeddings = base.embeddings[source]
    else:
        rng = np.random.default_rng(seed)
        embeddings = base.embeddings[source] + rng.normal(0.0, 0.3 / np.sqrt(base.embeddings.shape[1]),
                                                          (num_items, base.embeddings.shape[1]))
    return Catalog.from_embeddings(
        embeddings.astype(np.float32), [f"item {j} (from {base.texts[i][:40]})" for j, i in enumerate(source)],
        topics=[base.topic_names[base.topics[i]] for i in source],
        quality=base.quality[source], clickbait=base.clickbait[source],
    )


def _resident_bytes() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(num_users: int, num_items: int, ground_truth: bool, seconds: float, seed: int = 0, device: str = "cpu",
            array_type: str = "numpy") -> dict[str, Any]:
    """Time the native vector env (``encoded``) of ``num_users`` users on a catalog of
    ``num_items`` items for at least ``seconds`` s, on ``device``, returning ``array_type``
    outputs; in this process (run it in a fresh one)."""
    import gymnasium as gym
    import torch

    import recenv  # noqa: F401  (registers DriftingUser-v0)
    from recenv import DriftingUserVectorEnv
    from recenv.encoder import NextClickLSTM

    shipped = gym.make_vec("DriftingUser-v0", num_envs=1).unwrapped.encoder  # the one trained for `mixed`
    encoder = NextClickLSTM(shipped.config)  # its weights, without its record: taken as given on any catalog
    encoder.load_state_dict(shipped.state_dict())
    catalog = generated_catalog(num_items, seed)
    started = time.perf_counter()
    envs = DriftingUserVectorEnv(num_envs=num_users, catalog=catalog, encoder=encoder, device=device,
                                 ground_truth=ground_truth, array_type=array_type)
    cuda = envs.device.type == "cuda"

    def synchronize() -> None:  # CUDA runs asynchronously: a step is done when the device says so
        if cuda:
            torch.cuda.synchronize(envs.device)

    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    batches = [rng.integers(num_items, size=num_users) for _ in range(16)]
    if cuda:
        batches = [torch.as_tensor(batch, device=envs.device) for batch in batches]
    for step in range(3):
        envs.step(batches[step % len(batches)])
    synchronize()
    build_seconds = time.perf_counter() - started
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < seconds:
        envs.step(batches[steps % len(batches)])
        steps += 1
    synchronize()
    elapsed = time.perf_counter() - start
    return {"num_users": num_users, "num_items": num_items, "ground_truth": ground_truth, "device": str(envs.device),
            "array_type": array_type, "user_steps": steps * num_users, "seconds": elapsed, "build_seconds": build_seconds,
            "user_steps_per_second": steps * num_users / elapsed,
            "microseconds_per_user_step": 1e6 * elapsed / (steps * num_users), "resident_bytes": _resident_bytes(),
            "device_bytes": torch.cuda.max_memory_allocated(envs.device) if cuda else 0}


def _in_fresh_process(num_users: int, num_items: int, ground_truth: bool, seconds: float, device: str = "cpu",
                      array_type: str = "numpy", threads: int = 1) -> dict[str, Any]:
    code = ("import json, sys; from benchmarks.scaling import measure; "
            f"print('RESULT ' + json.dumps(measure({num_users}, {num_items}, {ground_truth}, {seconds}, "
            f"device={device!r}, array_type={array_type!r})))")
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads))  # torch reads it when it starts
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=environment)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"measuring N={num_users}, items={num_items} failed:\n{result.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def memory_bytes(row: dict[str, Any]) -> int:
    """The memory a configuration took: on a GPU the device's (the most allocated), else the
    process's resident set."""
    return row["device_bytes"] if str(row.get("device", "cpu")).startswith("cuda") else row["resident_bytes"]


def memory_per_user(rows: Sequence[dict[str, Any]]) -> list[float]:
    """Bytes per user added, for each row of one curve over N (rows sorted by N, the first N = 1)."""
    base = rows[0]
    return [float("nan") if row["num_users"] == base["num_users"] else
            (memory_bytes(row) - memory_bytes(base)) / (row["num_users"] - base["num_users"]) for row in rows]


def slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares line ``y = a + b·x``: ``(a, b)``."""
    b, a = np.polyfit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 1)
    return float(a), float(b)


def report(users: list[dict[str, Any]], items: list[dict[str, Any]]) -> str:
    """The Markdown tables and the fitted slopes."""
    per_user = memory_per_user(users)
    memory = "device memory" if users and str(users[0].get("device", "cpu")).startswith("cuda") else "resident memory"
    lines = [f"| N users | user-steps/s | µs per user-step | {memory} (MiB) | memory per added user (KiB) |",
             "|---:|---:|---:|---:|---:|"]
    for row, extra in zip(users, per_user):
        lines.append(f"| {row['num_users']:,} | {row['user_steps_per_second']:,.0f} | "
                     f"{row['microseconds_per_user_step']:.2f} | {memory_bytes(row) / 2**20:,.0f} | "
                     f"{'' if np.isnan(extra) else f'{extra / 1024:.1f}'} |")
    large = [row["microseconds_per_user_step"] for row in users if row["num_users"] >= 1024]
    big = [extra for row, extra in zip(users, per_user) if row["num_users"] >= 1024]
    text = "\n".join(lines) + "\n"
    if large:
        text += (f"\nFrom N = 1,024 up: {min(large):.2f}–{max(large):.2f} µs per user-step "
                 f"(max/min {max(large) / min(large):.2f}); memory per added user {min(big) / 1024:.1f}–"
                 f"{max(big) / 1024:.1f} KiB.\n")
    lines = [f"| items | ground truth in info | user-steps/s | µs per user-step | {memory} (MiB) |",
             "|---:|---|---:|---:|---:|"]
    for row in items:
        lines.append(f"| {row['num_items']:,} | {'yes' if row['ground_truth'] else 'no'} | "
                     f"{row['user_steps_per_second']:,.0f} | {row['microseconds_per_user_step']:.2f} | "
                     f"{memory_bytes(row) / 2**20:,.0f} |")
    text += f"\nCatalog size, N = {ITEMS_USERS:,} users:\n\n" + "\n".join(lines) + "\n"
    for ground_truth in (True, False):
        curve = [row for row in items if row["ground_truth"] == ground_truth]
        if len(curve) >= 2:
            a, b = slope([row["num_items"] / 1000 for row in curve], [row["microseconds_per_user_step"] for row in curve])
            text += (f"\n{'With' if ground_truth else 'Without'} ground truth: {a:.2f} µs + {b:.3f} µs per 1,000 items "
                     "per user-step (least squares).")
    return text + "\n"


def plot(users: list[dict[str, Any]], items: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    n = [row["num_users"] for row in users]
    axes[0].loglog(n, [row["user_steps_per_second"] for row in users], "o-")
    axes[0].set(xlabel="users N", ylabel="user-steps/s", title="Throughput against N")
    axes[1].loglog(n, [memory_bytes(row) / 2**20 for row in users], "o-")
    axes[1].set(xlabel="users N", ylabel="memory (MiB)", title="Memory against N")
    for ground_truth, label in ((True, "ground truth in info"), (False, "ground_truth=False")):
        curve = [row for row in items if row["ground_truth"] == ground_truth]
        axes[2].plot([row["num_items"] for row in curve], [row["microseconds_per_user_step"] for row in curve], "o-",
                     label=label)
    axes[2].set(xlabel="catalog items", ylabel="µs per user-step", title=f"Cost against catalog size (N = {ITEMS_USERS:,})")
    axes[2].legend()
    for axis in axes:
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(out: Path, command: str, quick: bool = False, users: Sequence[int] | None = None,
                 items: Sequence[int] | None = None, seconds: float | None = None, device: str = "cpu",
                 array_type: str = "numpy", threads: int = 1) -> str:
    """Every configuration, each in a fresh process on ``threads`` torch threads, written to ``out``
    as ``scaling.md``, ``.csv``, ``.json`` and ``.png``; returns the Markdown.

    :raises OptionError: ``users`` without 1 (memory per user is measured against one user).
    """
    cuda = device.startswith("cuda")
    users = sorted(users or (QUICK_USERS if quick else CUDA_USERS if cuda else FULL_USERS))
    if users[0] != 1:
        raise OptionError("--users", f"{' '.join(map(str, users))}: must include 1 (memory per user is measured "
                                     "against one user)")
    item_sizes = sorted(items or (QUICK_ITEMS if quick else FULL_ITEMS))
    seconds = seconds if seconds is not None else (1.0 if quick else 4.0)
    from tqdm.auto import tqdm

    plan = [("users", n, 500, True) for n in users] + [("items", ITEMS_USERS, m, gt) for m in item_sizes for gt in (True, False)]
    rows: dict[str, list[dict[str, Any]]] = {"users": [], "items": []}
    for curve, n, m, ground_truth in tqdm(plan, desc="scaling", unit="config"):
        rows[curve].append(_in_fresh_process(n, m, ground_truth, seconds, device, array_type, threads))
    out.mkdir(parents=True, exist_ok=True)
    info = hardware_and_versions()
    every = [{"curve": curve, **row} for curve in rows for row in rows[curve]]
    with open(out / "scaling.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(every[0]))
        writer.writeheader()
        writer.writerows(every)
    (out / "scaling.json").write_text(json.dumps({"command": command, "environment": info, "results": every}, indent=2))
    title = f"Scaling of the native vector env (encoded observations, {device}, {array_type} outputs)"
    text = markdown_header(title, info, command) + "\n" + report(rows["users"], rows["items"])
    (out / "scaling.md").write_text(text, encoding="utf-8")
    plot(rows["users"], rows["items"], out / "scaling.png")
    return text
