"""A comparison **cell**: one agent, trained and evaluated for one scenario and training seed.

The comparison and the ablation are grids of independent cells (scenario × training seed × agent).
A cell is described by a frozen :class:`Cell`, whose :meth:`Cell.key` hashes everything its result
depends on: the part's shared settings (the scenario's :class:`recenv.EnvConfig`, the training
seed, the held-out users, the device) and the budget fields its agent reads. :func:`run_cell`
computes it anywhere — in this process, a worker process, a Ray task on another machine — and
returns its sessions and record as plain arrays and dicts; :func:`store_cell` files them into the
part ``(scenario, seed)`` on disk under the driver's lock. A cell's result does not depend on which
other cells ran before it in the same process (``tests/test_backends.py``), so any backend, in any
order, stores the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents import run_counterfactual_sessions
from benchmarks.agent_registry import AgentFactory, Budget, Context, agent_budget, is_privileged
from benchmarks.environment_info import hardware_and_versions
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.offline.logging_policies import make_logs
from recenv.public_view import public_view
from recenv.threads import one_blas_thread, torch_threads

EVALUATION_SEED = 1_000_000
"""Seed of the held-out users, far from the training seeds (0 … 4 by default)."""
TRAINING_USERS = 64
"""Users (parallel envs) of the training vector env."""
PART_FORMAT_VERSION = 2


def part_settings(config: EnvConfig, seed: int, budget: Budget, device: str) -> dict[str, Any]:
    """What every agent of a part shares: a stored agent is reused only if these are unchanged."""
    return {"format_version": PART_FORMAT_VERSION, "config": config.to_record(), "seed": seed,
            "eval_users": budget.eval_users, "device": device, "evaluation_seed": EVALUATION_SEED,
            "training_users": TRAINING_USERS}


def cell_key(settings: dict[str, Any], agent: str, budget: dict[str, int]) -> str:
    """The hash of what a cell's result depends on: the part's settings, the agent's name and the
    budget fields it reads."""
    text = json.dumps({"settings": settings, "agent": agent, "budget": budget}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One agent of one part: what to run, and (:meth:`key`) the hash it is stored under."""

    scenario: str
    config: EnvConfig
    seed: int
    agent: str
    budget: Budget
    device: str = "cpu"
    agent_budget: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    threads: int = 1
    """torch threads the cell runs with, whatever the backend: some learners (PPO) do not give the
    same numbers on 1 and 2 threads, so the thread count is the cell's, not the worker's."""

    @property
    def settings(self) -> dict[str, Any]:
        return part_settings(self.config, self.seed, self.budget, self.device)

    def key(self) -> str:
        return cell_key(self.settings, self.agent, self.agent_budget)

    def __str__(self) -> str:
        return f"[{self.scenario}, seed {self.seed}] {self.agent}"


@dataclass
class CellResult:
    """A computed cell: its sessions (array name → array, without the agent's prefix) and its
    record (privileged, seconds, training steps, budget, learning curve, key)."""

    cell: Cell
    arrays: dict[str, np.ndarray]
    entry: dict[str, Any]


# The training env and logs of the last part this process ran a cell of: consecutive cells of one
# part (the sequential backend, a worker given several) build them once. Reusing them does not
# change results (each learner seeds what it draws; the test in tests/test_backends.py).
_SHARED: dict[str, Any] = {}


def training_env(config: EnvConfig) -> DriftingUserVectorEnv:
    """The env the comparison's learners train on: :data:`TRAINING_USERS` users of ``config``,
    without ground-truth info (no learner may read it, and its best P(click) scores every item at
    every step; the simulation is the same without it: tests/test_vector_env.py)."""
    return DriftingUserVectorEnv(num_envs=TRAINING_USERS, config=config, ground_truth=False)


def _training_inputs(cell: Cell) -> tuple[DriftingUserVectorEnv, Any]:
    key = json.dumps([cell.settings, cell.budget.logged_users], sort_keys=True)
    if _SHARED.get("key") != key:
        _SHARED.clear()
        _SHARED["env"] = training_env(cell.config)
        _SHARED["log"] = make_logs(cell.config, cell.budget.logged_users, seed=cell.seed, progress=False)
        _SHARED["key"] = key
    return _SHARED["env"], _SHARED["log"]


def _train_steps(agent: Any) -> int | None:
    """User-steps the agent trained for, from its training log (None: it does not learn by interacting)."""
    history = getattr(getattr(agent, "log", None), "history", None)
    return int(history[-1]["steps"]) if history else None


def run_cell(cell: Cell, factory: AgentFactory) -> CellResult:
    """Train the cell's agent with ``factory`` on the part's training env and logs (their public
    views unless the factory is privileged) and evaluate it on the held-out users, factual and
    counterfactual (:func:`agents.run_counterfactual_sessions`), on ``cell.threads`` torch threads and
    one numpy BLAS thread, so that a cell stores the same numbers on every backend (Ray's workers set
    ``OMP_NUM_THREADS=1``; agents such as StaticProfile rank items with numpy products)."""
    with torch_threads(cell.threads), one_blas_thread():
        return _run_cell(cell, factory)


def _run_cell(cell: Cell, factory: AgentFactory) -> CellResult:
    started = time.perf_counter()
    train_env, train_log = _training_inputs(cell)
    privileged = is_privileged(factory)
    context = Context(train_env if privileged else public_view(train_env),
                      train_log if privileged else public_view(train_log), cell.seed, cell.budget, cell.device,
                      progress=False)
    trained = time.perf_counter()
    agent = factory(context)  # progress=False: the comparison's one bar is enough
    seconds = time.perf_counter() - trained
    privileged = privileged or bool(getattr(agent, "privileged", False))
    factual, counterfactual = run_counterfactual_sessions(agent, cell.budget.eval_users, seed=EVALUATION_SEED,
                                                          config=cell.config, progress=False)
    arrays = {**factual.to_arrays("factual/"), **counterfactual.to_arrays("counterfactual/")}
    log = getattr(agent, "log", None)
    history = list(log.history) if log is not None and getattr(log, "history", None) else []
    entry = {"privileged": privileged, "train_seconds": seconds, "train_steps": _train_steps(agent),
             "budget": agent_budget(factory, cell.budget), "learning_curve": history, "key": cell.key(),
             "torch_threads": cell.threads, "cell_seconds": time.perf_counter() - started}
    return CellResult(cell, arrays, entry)


def write_part(sessions_path: Path, record_path: Path, arrays: dict[str, np.ndarray], record: dict[str, Any]) -> None:
    """Write a part so that an interruption leaves either the old part or none, never a record that
    does not describe its sessions: both go to temporary files, the old record is removed, then
    the sessions and (last: a part counts once its record is there) the record take their names."""
    sessions_path.parent.mkdir(parents=True, exist_ok=True)
    new_sessions = sessions_path.with_name(sessions_path.stem + ".writing.npz")
    new_record = record_path.with_name(record_path.stem + ".writing.json")
    np.savez_compressed(new_sessions, **arrays)
    new_record.write_text(json.dumps(record))
    record_path.unlink(missing_ok=True)
    new_sessions.replace(sessions_path)
    new_record.replace(record_path)


def store_cell(result: CellResult, sessions_path: Path, record_path: Path, stored: dict[str, Any] | None) -> None:
    """File a computed cell into its part (call under the part's lock, with the part as stored now,
    or None): the part's other agents are kept when its settings are the cell's, the cell's agent
    is replaced, and the part's wall time grows by the cell's."""
    settings = result.cell.settings
    if stored is not None and stored["settings"] != settings:
        stored = None  # other users or dynamics: nothing in it is valid any more
    kept = {} if stored is None else {name: entry for name, entry in stored["agents"].items()
                                      if name != result.cell.agent}
    arrays: dict[str, np.ndarray] = {}
    record: dict[str, Any] = {"settings": settings, "agents": {}}
    if kept:
        renamed = {}  # stored prefix → new prefix: the kept agents' arrays are copied as they are
        for name, entry in kept.items():
            renamed[f"a{entry['index']}"] = f"a{len(record['agents'])}"
            record["agents"][name] = {**entry, "index": len(record["agents"])}
        with np.load(sessions_path) as stored_arrays:
            for key in stored_arrays.files:
                prefix, _, rest = key.partition("/")
                if prefix in renamed:
                    arrays[f"{renamed[prefix]}/{rest}"] = stored_arrays[key]
    index = len(record["agents"])
    arrays.update({f"a{index}/{name}": value for name, value in result.arrays.items()})
    record["agents"][result.cell.agent] = {"index": index, **result.entry}
    earlier = stored["wall_seconds"] if stored is not None and kept else 0.0
    record["wall_seconds"] = earlier + result.entry["cell_seconds"]
    record["environment"] = hardware_and_versions()
    write_part(sessions_path, record_path, arrays, record)
