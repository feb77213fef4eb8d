"""The comparison protocol: train the learning agents on training users, evaluate every agent on the
same held-out users, over several training seeds, for each preset; in resumable parts.

For each preset (or ablation scenario) and training seed ``s`` — one **part** — a training env (a
vector env of ``TRAINING_USERS`` = 64 users) is reset with seed ``s``; deployable logs
(:func:`recenv.offline.logging_policies.make_logs`, ``budget.logged_users`` sessions, seed ``s``)
train the models that learn from logs (popularity ranking, GRU4Rec); the learners (tabular
Q-learning, DQN with either head, SB3's DQN) train by interacting with the training env for their
budget of user-steps (:class:`~benchmarks.agent_registry.Budget`). Every agent is then evaluated
on the same ``eval_users`` held-out users (seed ``EVALUATION_SEED``, disjoint from training seeds),
one session each, with common random numbers — twice: as they happen, and with each user's first
regime shift scripted off (:func:`agents.run_counterfactual_sessions`).

**Information policy.** Agents whose factory does not declare ``privileged`` are built on the
public views of the training env and logs (:func:`recenv.public_view.public_view`) and evaluated
through the public view of the evaluation envs: reading hidden things raises
:class:`recenv.public_view.InformationPolicyError`. Privileged references are marked in every table.

**Slates.** A scenario whose config has ``slate_size`` k > 1 (:func:`slate_scenarios`, named
``<preset>-slate<k>``) runs the same protocol with slate agents
(:data:`~benchmarks.agent_registry.SLATE_AGENTS`), compared with :data:`SLATE_REFERENCE` and
:data:`SLATE_FARSIGHTED_REFERENCE`. Its training env and evaluation envs show slates; its logs are
the one-item logs of the same users: the logging policies show one item per step, and the simulator
runs a one-item step for them whatever ``slate_size`` says (the users and their dynamics are the
same, only the recommender's screen differs), so a slate scenario's log equals that of its config
with ``slate_size=1`` (``tests/test_slate_comparison.py`` checks it). A scenario whose history
records whole slates (``slate_history="shown"``, ``<preset>-slate<k>-shown``) logs slates instead,
as its encoder was trained on (:func:`recenv.offline.logging_policies.make_logs`). The slate
baselines do not read logs.

**Cells and parts.** The run is a grid of independent cells, one agent of one scenario and
training seed (:mod:`benchmarks.cells`), run on a backend (:mod:`benchmarks.backends`: in this
process, a pool of local processes, or Ray tasks) and handed back to this process, which files each
into its part: the part's sessions (``parts/<scenario>/seed<s>.npz``) and record (``.json``:
seconds, learning curves, the settings it ran with, each agent's cell key). A run skips the cells
already stored under the same key, so a comparison too long for one sitting, or interrupted, is
run in pieces (e.g. ``--seeds 0 1`` then ``--seeds 2 3 4``) and merged: :func:`merge` computes
every number from the stored sessions (:mod:`benchmarks.metrics`, :mod:`benchmarks.statistics`),
the same whatever backend ran the cells.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents import SessionRecords
from benchmarks.agent_registry import REFERENCE_AGENTS, AgentFactory, Budget, agent_budget
from benchmarks.backends import resolve_backend, run_cells
from benchmarks.cells import (
    EVALUATION_SEED,
    PART_FORMAT_VERSION,
    TRAINING_USERS,
    Cell,
    CellResult,
    part_settings,
    store_cell,
)
from benchmarks.metrics import CLICKBAIT_THRESHOLD, summarise
from benchmarks.statistics import paired_difference, verdict
from recenv import EnvConfig
from recenv.offline import prepare_encoder
from recenv.presets import SYNTHETIC_PRESETS, preset_catalog

DEFAULT_SEEDS = (0, 1, 2, 3, 4)
"""Training seeds of a full run."""
DEFAULT_REFERENCE = "StaticProfile"
"""The agent every other is compared with, paired per user, unless another is named."""
FARSIGHTED_REFERENCE = "FarsightedOracle"
"""The far-sighted privileged reference: the gap to it is reported for every agent."""
SLATE_REFERENCE = "GreedySlate"
"""The default reference of slate scenarios (:data:`~benchmarks.agent_registry.SLATE_AGENTS`)."""
SLATE_FARSIGHTED_REFERENCE = "FarsightedOracleSlate"
"""The far-sighted privileged reference of slate scenarios."""
QUICK = Budget(q_learning=40_000, dqn=40_000, sb3_dqn=15_000, custom=40_000, logged_users=1_000, eval_users=300,
               recurrent_dqn=40_000, long_term_value=40_000, ppo=40_000, sb3_ppo=15_000, topic_q_learning=40_000,
               slate_q=40_000)
FULL = Budget(q_learning=400_000, dqn=500_000, sb3_dqn=100_000, custom=500_000, logged_users=5_000, eval_users=2_000,
              recurrent_dqn=500_000, long_term_value=1_000_000, ppo=500_000, sb3_ppo=200_000, topic_q_learning=400_000,
              slate_q=250_000)
"""The protocol's two sizes: ``QUICK`` (``--quick``; measured: docs/results/quick-comparison.md) and ``FULL``
(measured: docs/results/comparison.md)."""


@dataclass
class Comparison:
    """Everything a run produced: summary rows, paired differences, per-seed rows, learning curves,
    configuration."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    learning_curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def part_paths(out: Path, scenario: str, seed: int) -> tuple[Path, Path]:
    """Where the part ``(scenario, seed)`` keeps its sessions (``.npz``) and its record (``.json``)."""
    stem = Path(out) / "parts" / _slug(scenario) / f"seed{seed}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A part record of an older format in the current one (format 1 kept the agents and the whole
    budget in the part's settings; each agent now keeps the budget it ran with)."""
    settings = record["settings"]
    if settings.get("format_version") == 1:
        budget = settings.pop("budget")
        settings.pop("agents", None)
        settings["eval_users"] = budget["eval_users"]
        settings["format_version"] = PART_FORMAT_VERSION
        for entry in record["agents"].values():
            entry.setdefault("budget", dict(budget))
    return record


def _stored_part(out: Path, scenario: str, seed: int) -> dict[str, Any] | None:
    sessions, record = part_paths(out, scenario, seed)
    if not (sessions.exists() and record.exists()):
        return None
    return _upgrade(json.loads(record.read_text()))


def _reusable(entry: dict[str, Any], budget: dict[str, Any]) -> bool:
    """Whether a stored agent ran with the budget it would get now (only the fields it reads)."""
    stored = entry.get("budget", {})
    return all(field in stored and stored[field] == value for field, value in budget.items())


def _stored_train_steps(entry: dict[str, Any]) -> int | None:
    """A stored agent's training user-steps (parts of the first format lack the field: their
    learning curve's last point says it)."""
    if entry.get("train_steps") is not None:
        return int(entry["train_steps"])
    curve = entry.get("learning_curve")
    return int(curve[-1]["steps"]) if curve else None


def _is_stored(entry: dict[str, Any], cell: Cell) -> bool:
    """Whether a stored agent is the cell's result (same settings checked by the caller): its key,
    or for agents stored before cells had keys, the budget fields it read."""
    if "key" in entry:
        return entry["key"] == cell.key()
    return _reusable(entry, cell.agent_budget)


def plan_part(agents: Mapping[str, AgentFactory], scenario: str, config: EnvConfig, seed: int, budget: Budget,
              out: Path, device: str = "cpu", rerun: Sequence[str] = ()) -> tuple[list[Cell], int]:
    """The cells of the part ``(scenario, seed)`` still to run, and how many of its agents are stored.

    An agent already stored in the part is kept — not run again — when its cell's key (the part's
    shared settings, :func:`~benchmarks.cells.part_settings`, and the budget fields the agent
    reads, :func:`~benchmarks.agent_registry.budget_fields`) is unchanged and it is not named in
    ``rerun`` (for an agent whose code changed). Stored agents not asked for now are kept too.
    """
    stored = _stored_part(out, scenario, seed)
    settings = part_settings(config, seed, budget, device)
    if stored is not None and stored["settings"] != settings:
        stored = None  # other users or dynamics: nothing in it can be reused
    cells, kept = [], 0
    for name, factory in agents.items():
        cell = Cell(scenario, config, seed, name, budget, device, agent_budget(factory, budget))
        entry = None if stored is None else stored["agents"].get(name)
        if entry is not None and name not in rerun and _is_stored(entry, cell):
            kept += 1
        else:
            cells.append(cell)
    return cells, kept


def _store(result: CellResult, out: Path) -> None:
    cell = result.cell
    sessions_path, record_path = part_paths(out, cell.scenario, cell.seed)
    with _part_lock(sessions_path):
        store_cell(result, sessions_path, record_path, _stored_part(out, cell.scenario, cell.seed))


def run_part(
    agents: Mapping[str, AgentFactory],
    scenario: str,
    config: EnvConfig,
    seed: int,
    budget: Budget,
    out: Path,
    device: str = "cpu",
    bar: Any = None,
    rerun: Sequence[str] = (),
) -> Path:
    """Train and evaluate, in this process, every agent of one scenario and training seed that is
    not stored yet (:func:`plan_part`), storing each as it finishes; return the part's sessions path.

    Each cell is looked up again just before it runs, so two processes given the same part take
    turns on it rather than computing an agent twice.
    """
    cells, kept = plan_part(agents, scenario, config, seed, budget, out, device, rerun)
    if bar is not None:
        bar.update(kept)
    for cell in cells:
        if bar is not None:
            bar.set_description(f"compare {cell}")
        if plan_part({cell.agent: agents[cell.agent]}, scenario, config, seed, budget, out, device, rerun)[0]:
            _store(next(run_cells([cell], agents)), out)
        if bar is not None:
            bar.update(1)
    return part_paths(out, scenario, seed)[0]


@contextlib.contextmanager
def _part_lock(sessions_path: Path) -> Iterator[None]:
    """Hold the part's lock file while it is read and written: cells of one part stored by several
    processes or threads take turns, and each finds what the others stored instead of overwriting it."""
    sessions_path.parent.mkdir(parents=True, exist_ok=True)
    with open(sessions_path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def slate_scenarios(presets: Sequence[str], slate_size: int, slate_history: str = "chosen") -> dict[str, EnvConfig]:
    """The presets' scenarios with a slate of ``slate_size`` items per step: ``"<preset>-slate<k>"`` →
    ``EnvConfig(preset=preset, slate_size=k)``, for :func:`compare` (``presets=``); with
    ``slate_history="shown"``, ``"<preset>-slate<k>-shown"``, whose histories record whole slates.

    :raises ValueError: ``slate_size`` < 2 (one item per step is the presets themselves), or an
        unknown ``slate_history``.
    """
    if isinstance(slate_size, bool) or not isinstance(slate_size, int) or slate_size < 2:
        raise ValueError(f"slate_size = {slate_size!r}: slate scenarios need an int >= 2 (1 is the presets themselves)")
    suffix = "" if slate_history == "chosen" else f"-{slate_history}"
    return {f"{preset}-slate{slate_size}{suffix}": EnvConfig(preset=preset, slate_size=slate_size, slate_history=slate_history)
            for preset in presets}


def _scenarios(presets: Sequence[str] | Mapping[str, EnvConfig], device: str) -> dict[str, EnvConfig]:
    if isinstance(presets, Mapping):
        return {name: config.replace(device=device) for name, config in presets.items()}
    return {name: EnvConfig(preset=name, device=device) for name in presets}


@dataclass(frozen=True)
class RunSettings:
    """How and where a comparison's cells run. Only ``device`` and ``threads`` can change numbers
    (some learners, PPO among them, give other numbers on 1 and 2 torch threads); the backend and
    its workers never do.

    :param device: device of every env and torch learner (``"cpu"``, ``"cuda"``, ``"auto"``).
    :param backend: ``"sequential"``, ``"pool"``, ``"ray"`` or ``"auto"`` (:mod:`benchmarks.backends`).
    :param workers: processes of the pool, or CPUs of a local Ray instance (None: the available
        cores divided by ``threads``).
    :param address: the Ray cluster to use (None: a local instance).
    :param threads: torch threads of every cell, whatever the backend (recorded with each cell; a
        stored cell is reused whatever it was).
    :param progress: show a progress bar over the cells.
    """

    device: str = "cpu"
    backend: str = "sequential"
    workers: int | None = None
    address: str | None = None
    threads: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        from benchmarks.options import check_at_least_one

        check_at_least_one("threads", self.threads)
        check_at_least_one("workers", self.workers)


def prepare_encoders(scenarios: Mapping[str, EnvConfig]) -> None:
    """Train and cache, once, the encoder weights that the scenarios' dynamics need and do not have
    yet (:func:`recenv.offline.prepare_encoder`; nothing to do for shipped or cached weights, or
    observation modes without an encoder), before any cell starts: building an env never trains,
    and workers find the weights in the cache instead of each training them."""
    for config in scenarios.values():
        prepare_encoder(config)


def compare(
    agents: Mapping[str, AgentFactory] | None = None,
    presets: Sequence[str] | Mapping[str, EnvConfig] = tuple(SYNTHETIC_PRESETS),
    seeds: Sequence[int] = DEFAULT_SEEDS,
    budget: Budget = FULL,
    settings: RunSettings = RunSettings(),
    out: Path | str | None = None,
    reference: str | None = DEFAULT_REFERENCE,
    farsighted_reference: str | None = FARSIGHTED_REFERENCE,
    rerun: Sequence[str] = (),
) -> Comparison:
    """Run the cells that are missing (see the module docstring) as ``settings`` say, then :func:`merge`.

    :param agents: name → factory; default :data:`~benchmarks.agent_registry.REFERENCE_AGENTS`. Add
        your own: ``compare({**REFERENCE_AGENTS, "Mine": lambda ctx: MyAgent(ctx.train_env)})``.
    :param presets: preset names, or scenarios: name → :class:`recenv.EnvConfig`, as the ablation
        uses. Every env of a scenario (training env, logs, evaluation envs) is built from its
        config, with ``settings.device`` in place of the config's.
    :param seeds: the training seeds; the cells already stored are not run again, so a run in
        pieces (``seeds=[0, 1]``, then ``[2, 3, 4]``), or one interrupted, is completed and merged
        by a last call with every seed.
    :param settings: device, backend, workers, torch threads of the cells, progress bar
        (:class:`RunSettings`); the stored numbers are the same whichever backend runs the cells.
    :param out: the output folder; parts go to ``out/parts``. None: a temporary folder, deleted
        afterwards (nothing to resume from).
    :param reference: the agent the paired differences are taken against (None: only against
        the far-sighted reference, if it is among the agents).
    :param farsighted_reference: the far-sighted reference every agent is also compared with, if
        it is among the agents (slate scenarios: :data:`SLATE_FARSIGHTED_REFERENCE`).
    :param rerun: agents to train and evaluate again in every part even where stored (after a
        change to their code: a stored part cannot tell).
    """
    agents = dict(REFERENCE_AGENTS if agents is None else agents)
    scenarios = _scenarios(presets, settings.device)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="recenv-compare-") as folder:
            return compare(agents, scenarios, seeds, budget, settings, out=folder, reference=reference,
                           farsighted_reference=farsighted_reference, rerun=rerun)
    out = Path(out)
    device, threads = settings.device, settings.threads
    backend, workers = resolve_backend(settings.backend, settings.workers, threads)
    todo, kept = [], 0
    for scenario, config in scenarios.items():
        for seed in seeds:
            cells, stored = plan_part(agents, scenario, config, seed, budget, out, device, rerun)
            todo += [dataclasses.replace(cell, threads=threads) for cell in cells]
            kept += stored
    prepare_encoders({name: scenarios[name] for name in dict.fromkeys(cell.scenario for cell in todo)})
    where = "sequential" if backend == "sequential" else f"{backend}, {workers} workers"
    bar = tqdm(total=len(todo) + kept, initial=kept, desc=f"compare ({where})", unit="cell",
               disable=not settings.progress)
    for result in run_cells(todo, agents, backend, workers, settings.address):
        _store(result, out)
        bar.set_postfix_str(f"{result.cell} {result.entry['cell_seconds']:.0f} s", refresh=False)
        bar.update(1)
    bar.close()
    result = merge(out, scenarios, list(seeds), list(agents), reference, budget, device, farsighted_reference)
    result.config.update({"backend": backend, "workers": workers, "cell_threads": threads, "cells_run": len(todo),
                          "cells_stored": kept})
    return result


class MissingPart(FileNotFoundError):
    """A part ``(scenario, seed)`` that a merge or a pairing needs is not in ``out/parts``."""

    def __init__(self, out: Path, scenario: str, seed: int):
        super().__init__(f"part ({scenario!r}, seed {seed}) is missing from {out}/parts: run it first")
        self.out, self.scenario, self.seed = out, scenario, seed


def _load_runs(out: Path, scenario: str, seeds: Sequence[int], agents: Sequence[str], with_counterfactual: bool = True
               ) -> tuple[dict[str, list[SessionRecords]], dict[str, list[SessionRecords]], list[dict[str, Any]]]:
    """Per agent, its factual and (unless ``with_counterfactual`` is False: left empty)
    counterfactual sessions of each seed, and the parts' records."""
    factual: dict[str, list[SessionRecords]] = {name: [] for name in agents}
    counterfactual: dict[str, list[SessionRecords]] = {name: [] for name in agents}
    records = []
    for seed in seeds:
        record = _stored_part(out, scenario, seed)
        if record is None:
            raise MissingPart(out, scenario, seed)
        missing = [name for name in agents if name not in record["agents"]]
        if missing:
            raise ValueError(f"part ({scenario!r}, seed {seed}) has no agent(s) {missing}; it has {list(record['agents'])}")
        with np.load(part_paths(out, scenario, seed)[0]) as arrays:
            for name in agents:
                index = record["agents"][name]["index"]
                factual[name].append(SessionRecords.from_arrays(arrays, f"a{index}/factual/"))
                if with_counterfactual:
                    counterfactual[name].append(SessionRecords.from_arrays(arrays, f"a{index}/counterfactual/"))
        records.append(record)
    return factual, counterfactual, records


def load_sessions(out: Path | str, scenario: str, seeds: Sequence[int], agents: Sequence[str]
                  ) -> dict[str, list[SessionRecords]]:
    """The stored factual sessions of ``agents`` in the parts ``(scenario, seed)`` of ``out``, one
    :class:`~agents.SessionRecords` per seed."""
    return _load_runs(Path(out), scenario, seeds, agents, with_counterfactual=False)[0]


def merge(
    out: Path | str,
    scenarios: Mapping[str, EnvConfig],
    seeds: Sequence[int],
    agents: Sequence[str],
    reference: str | None = DEFAULT_REFERENCE,
    budget: Budget | None = None,
    device: str = "cpu",
    farsighted_reference: str | None = FARSIGHTED_REFERENCE,
) -> Comparison:
    """Every number of the comparison, from the stored parts of ``seeds`` for each scenario.

    Rows: :func:`benchmarks.metrics.summarise` per scenario and agent, plus ``privileged``,
    ``train_seconds`` (mean over seeds), ``share_of_best_reference`` (clicks as a share of the best
    privileged reference's clicks on the same users). Differences: per scenario and agent, the
    paired difference in clicks per session to ``reference`` and to ``farsighted_reference``
    (:func:`benchmarks.statistics.paired_difference`: bootstrap over users and training seeds).
    """
    out = Path(out)
    result = Comparison(config={"presets": {name: config.to_record() for name, config in scenarios.items()},
                                "seeds": list(seeds), "budget": asdict(budget) if budget else None, "device": device,
                                "agents": list(agents), "reference": reference, "evaluation_seed": EVALUATION_SEED,
                                "training_users": TRAINING_USERS, "parts": []})
    for scenario, config in scenarios.items():
        factual, counterfactual, records = _load_runs(out, scenario, seeds, agents)
        for seed, record in zip(seeds, records):
            result.config["parts"].append({"scenario": scenario, "seed": seed, "wall_seconds": record["wall_seconds"],
                                           "cpu": record["environment"].get("cpu"),
                                           "torch_threads": record["environment"].get("torch_threads")})
        clickbait = preset_catalog(config.catalog, config.preset, config.data_path).clickbait > CLICKBAIT_THRESHOLD
        returns = {name: np.stack([run.returns for run in factual[name]]) for name in agents}
        privileged = {name: any(r["agents"][name]["privileged"] for r in records) for name in agents}
        references = [name for name in agents if privileged[name]]
        best_reference = max(references, key=lambda name: returns[name].mean()) if references else None
        for name in agents:
            train_seconds = float(np.mean([r["agents"][name]["train_seconds"] for r in records]))
            train_steps = [_stored_train_steps(r["agents"][name]) for r in records]
            train_steps = float(np.mean(train_steps)) if all(n is not None for n in train_steps) else None
            row = {"preset": scenario, "agent": name, "privileged": privileged[name],
                   **summarise(factual[name], clickbait, counterfactual[name]),
                   "train_seconds": train_seconds, "train_steps": train_steps,
                   "train_steps_per_second": train_steps / train_seconds if train_steps and train_seconds > 0 else None,
                   "best_reference": best_reference,
                   "share_of_best_reference": (float(returns[name].mean() / returns[best_reference].mean())
                                               if best_reference else float("nan"))}
            result.rows.append(row)
            for seed, record, run in zip(seeds, records, factual[name]):
                result.per_seed.append({"preset": scenario, "agent": name, "seed": seed,
                                        "clicks_per_session": float(run.returns.mean()),
                                        "train_seconds": record["agents"][name]["train_seconds"],
                                        "cell_seconds": record["agents"][name].get("cell_seconds")})
                if record["agents"][name]["learning_curve"]:
                    result.learning_curves[f"{scenario}/{name}/seed{seed}"] = record["agents"][name]["learning_curve"]
            for against in dict.fromkeys(a for a in (reference, farsighted_reference)
                                         if a is not None and a in agents and a != name):
                difference = paired_difference(returns[name], returns[against])
                result.differences.append({"preset": scenario, "agent": name, "against": against,
                                           **difference.to_record(), "verdict": verdict(difference)})
    return result
