"""Two versions of recenv timed side by side: how much faster is this checkout than an older commit?

A speed-up quoted from two separate runs says as much about the machine on each day as about the
code: on a shared machine, runs of the same code an hour apart differ widely (measured:
docs/results/tuning-notes.md). This script times both versions in one run, alternating: every
round times each configuration once with
each version, each time in a fresh process whose ``PYTHONPATH`` puts that version's ``recenv``
first, the order of the two reversed every other round (ABBA), so that a slow spell of the machine
falls on both. It reports, per configuration, the median user-steps/s of each version over the
rounds, the ratio of the medians, and the range of the per-round ratios.

What is timed is the same for both versions (the code below, not either version's own
benchmark): the native vector env ``gym.make_vec("DriftingUser-v0", num_envs=N, obs_mode=...)``
with its default info (the ground truth included), stepped with uniformly random actions drawn
before timing, autoresets included; optionally (``--lean``) also with ``ground_truth=False``, for
versions that have it (a version without it gets no number there).

    recenv side-by-side --baseline 23fc462                  # a commit (a temporary git worktree)
    recenv side-by-side --baseline ../old-checkout --rounds 9 --lean

Writes ``side_by_side.md``, ``side_by_side.csv`` and ``side_by_side.json`` into ``--out``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.environment_info import hardware_and_versions, markdown_header, pipe_table

REPOSITORY = Path(__file__).resolve().parents[2]
"""This checkout (``src/benchmarks/side_by_side.py`` two folders up)."""
"""The checkout this script belongs to: the default candidate."""

_TIMING = r"""
import json, sys, time
import numpy as np, torch, gymnasium as gym
import recenv
num_envs, obs_mode, lean, seconds, threads, seed = json.loads(sys.argv[1])
if threads:
    torch.set_num_threads(threads)
extra = {"ground_truth": False} if lean else {}
started = time.perf_counter()
try:
    envs = gym.make_vec("DriftingUser-v0", num_envs=num_envs, obs_mode=obs_mode, **extra)
except TypeError as error:  # a version without ground_truth
    print("RESULT " + json.dumps({"unsupported": str(error)}))
    sys.exit(0)
envs.reset(seed=seed)
rng = np.random.default_rng(seed)
num_items = envs.unwrapped.catalog.num_items
actions = [rng.integers(num_items, size=num_envs) for _ in range(64)]
for step in range(5):
    envs.step(actions[step % 64])
build_seconds = time.perf_counter() - started
steps, start = 0, time.perf_counter()
while steps < 5 or time.perf_counter() - start < seconds:
    envs.step(actions[steps % 64])
    steps += 1
elapsed = time.perf_counter() - start
print("RESULT " + json.dumps({"recenv": recenv.__file__, "user_steps": steps * num_envs, "seconds": elapsed,
                              "build_seconds": build_seconds, "torch_threads": torch.get_num_threads()}))
"""
"""The timing each child process runs (``python -c``): it imports only ``recenv``, gymnasium, numpy
and torch, so that any version of ``recenv`` can be timed by the same code."""


@dataclass(frozen=True)
class Configuration:
    num_envs: int
    obs_mode: str
    lean: bool  # ground_truth=False

    @property
    def label(self) -> str:
        return f"N = {self.num_envs:,}, {self.obs_mode}" + (", ground_truth=False" if self.lean else "")


@dataclass
class Timing:
    version: str  # "baseline" or "candidate"
    round: int
    configuration: Configuration
    user_steps: int
    seconds: float

    @property
    def user_steps_per_second(self) -> float:
        return self.user_steps / self.seconds


def revision_of(path: Path) -> str:
    """The commit a checkout is at (with ``+changes`` when its tracked files differ from it), or
    ``"not a git checkout"``."""
    def git(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(path), *arguments], capture_output=True, text=True, check=False)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("+changes" if dirty else "")


def package_folder(path: Path) -> Path:
    """The folder that holds a checkout's ``recenv`` package: ``src/`` since the src layout, the
    checkout itself before it."""
    return path / "src" if (path / "src" / "recenv" / "__init__.py").is_file() else path


@contextlib.contextmanager
def checkout(version: str) -> Iterator[Path]:
    """A directory holding the version's ``recenv`` package: ``version`` itself (or its ``src/``)
    when it is such a checkout, else a git revision of this repository, checked out into a
    temporary worktree that is removed afterwards."""
    path = Path(version)
    if (package_folder(path) / "recenv" / "__init__.py").is_file():
        yield package_folder(path).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="recenv-side-by-side-") as parent:
        worktree = Path(parent) / "checkout"
        added = subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "add", "--detach", str(worktree), version],
                               capture_output=True, text=True, check=False)
        if added.returncode != 0:
            raise ValueError(f"{version!r} is neither a checkout of recenv nor a revision of {REPOSITORY}: "
                             f"{added.stderr.strip()}")
        try:
            yield package_folder(worktree)
        finally:
            subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True, check=False)


def time_once(path: Path, configuration: Configuration, seconds: float, threads: int, seed: int = 0) -> dict[str, Any]:
    """One timing of ``configuration`` with the ``recenv`` at ``path``, in a fresh process (run from
    an empty folder, so that nothing but ``PYTHONPATH`` decides which ``recenv`` it imports)."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    arguments = json.dumps([configuration.num_envs, configuration.obs_mode, configuration.lean, seconds, threads, seed])
    with tempfile.TemporaryDirectory() as empty:
        result = subprocess.run([sys.executable, "-c", _TIMING, arguments], capture_output=True, text=True,
                                env=environment, cwd=empty, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"timing {configuration.label} with {path} failed:\n{result.stderr[-2000:]}")
    timing = json.loads(lines[-1].removeprefix("RESULT "))
    if "recenv" in timing and Path(timing["recenv"]).resolve().parent.parent != path.resolve():
        raise RuntimeError(f"the child imported {timing['recenv']}, not the recenv at {path}")
    return timing


def run(baseline: Path, candidate: Path, configurations: Sequence[Configuration], rounds: int, seconds: float,
        threads: int, progress: bool = True) -> list[Timing]:
    """Every configuration timed once per round with each version, the order of the versions
    reversed every other round."""
    from tqdm.auto import tqdm

    versions = {"baseline": baseline, "candidate": candidate}
    plan = [(r, c, name) for r in range(rounds) for c in configurations
            for name in (("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline"))]
    timings = []
    for r, configuration, name in tqdm(plan, desc="side by side", unit="timing", disable=not progress):
        timing = time_once(versions[name], configuration, seconds, threads)
        if "unsupported" not in timing:
            timings.append(Timing(name, r, configuration, timing["user_steps"], timing["seconds"]))
    return timings


def summarize(timings: Sequence[Timing], configurations: Sequence[Configuration]) -> list[dict[str, Any]]:
    """Per configuration: each version's median user-steps/s, the ratio of the medians, and the
    per-round ratios' range (rounds where both versions were timed)."""
    rows = []
    for configuration in configurations:
        mine = [t for t in timings if t.configuration == configuration]
        speed = {name: {t.round: t.user_steps_per_second for t in mine if t.version == name}
                 for name in ("baseline", "candidate")}
        medians = {name: statistics.median(values.values()) if values else float("nan") for name, values in speed.items()}
        paired = [speed["candidate"][r] / speed["baseline"][r] for r in speed["baseline"] if r in speed["candidate"]]
        rows.append({
            "configuration": configuration.label, **asdict(configuration),
            "baseline_median": medians["baseline"], "candidate_median": medians["candidate"],
            "ratio_of_medians": medians["candidate"] / medians["baseline"],
            "round_ratio_min": min(paired, default=float("nan")), "round_ratio_max": max(paired, default=float("nan")),
            "rounds": len(paired),
        })
    return rows


def markdown(rows: Sequence[dict[str, Any]], baseline: str, candidate: str) -> str:
    def number(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:,.0f}"

    def ratio(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.2f}×"

    columns = ["native vector env", f"baseline `{baseline}` user-steps/s", f"candidate `{candidate}` user-steps/s",
               "ratio of medians", "per-round ratios", "rounds"]
    return pipe_table(columns, [
        [row["configuration"], number(row["baseline_median"]), number(row["candidate_median"]),
         ratio(row["ratio_of_medians"]), f"{ratio(row['round_ratio_min'])}–{ratio(row['round_ratio_max'])}",
         str(row["rounds"])] for row in rows])


def write_report(out: Path, command: str, baseline: str, candidate: str = str(REPOSITORY),
                 users: Sequence[int] = (1024,), obs_modes: Sequence[str] = ("encoded", "history"), lean: bool = False,
                 rounds: int = 5, seconds: float = 3.0, threads: int = 1) -> str:
    """Time ``baseline`` and ``candidate`` (checkouts or git revisions) side by side, ``rounds``
    rounds of ``seconds`` per configuration and version on ``threads`` torch threads, written to
    ``out`` as ``side_by_side.md``, ``.csv`` and ``.json``; returns the Markdown."""
    configurations = [Configuration(n, mode, time_lean) for n in users for mode in obs_modes
                      for time_lean in ((False, True) if lean else (False,))]
    with checkout(baseline) as baseline_path, checkout(candidate) as candidate_path:
        names = {"baseline": revision_of(baseline_path), "candidate": revision_of(candidate_path)}
        timings = run(baseline_path, candidate_path, configurations, rounds, seconds, threads)
    rows = summarize(timings, configurations)
    info = hardware_and_versions()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "side_by_side.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["version", "round", "num_envs", "obs_mode", "lean", "user_steps",
                                                  "seconds", "user_steps_per_second"])
        writer.writeheader()
        for t in timings:
            writer.writerow({"version": t.version, "round": t.round, **asdict(t.configuration), "user_steps": t.user_steps,
                             "seconds": t.seconds, "user_steps_per_second": t.user_steps_per_second})
    (out / "side_by_side.json").write_text(json.dumps(
        {"command": command, "environment": info, "versions": names, "rounds": rounds, "seconds": seconds,
         "summary": rows}, indent=2), encoding="utf-8")
    text = (markdown_header("Two versions of recenv timed side by side", info, command)
            + f"\n{rounds} rounds of {seconds:g} s per configuration and version, alternating (ABBA); "
            f"baseline `{names['baseline']}`, candidate `{names['candidate']}`.\n\n"
            + markdown(rows, names["baseline"], names["candidate"]))
    (out / "side_by_side.md").write_text(text, encoding="utf-8")
    return text
