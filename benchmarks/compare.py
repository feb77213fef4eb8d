"""The agent comparison: train the learning agents on training users, evaluate every agent on the
same held-out users, over several training seeds, for each preset.

    python -m benchmarks.compare --quick               # a few minutes on 2 CPU cores (preset mixed)
    python -m benchmarks.compare                       # the README table (every preset, 3 seeds)
    python -m benchmarks.compare --agent my_pkg.my_module:MyAgent

Protocol. For each preset and training seed ``s``: a training env (a vector env of 64 users) is
reset with seed ``s``; sessions logged there by the default behaviour policy train the popularity
ranking; the learners (tabular Q-learning, DQN with either head, SB3's DQN) train by interacting
with it for their budget of user-steps. Every agent is then evaluated on the same ``eval_users``
held-out users (evaluation seed ``EVALUATION_SEED``, disjoint from training seeds), one session
each, with common random numbers (:func:`agents.run_sessions`).

Statistics. Clicks per session is reported as mean ± 95 % confidence interval over evaluation
users: each user's clicks are first averaged over the training seeds (the users are the same in
every seed), and the interval is ±1.96 standard errors of those per-user means. The spread of the
per-seed means (``seed_std``) is reported beside it. Regret is the dynamic regret to the myopic
oracle, Σ_t (best P(click) − P(click) of the shown item). Recovery after a regime shift: the
expected CTR (true P(click) of the shown items) averaged over all shifts that happen at least
``SHIFT_BEFORE`` steps into a session and ``SHIFT_AFTER`` steps before its end, aligned at the
shift; the recovery time is the first step after the shift at which its ``RECOVERY_WINDOW``-step
mean is back at the pre-shift mean (empty if it never is within the window). Topic diversity is
the entropy (bits) of the topics recommended within a session; clickbait shown, the share of
shown items that are clickbait (score above ``CLICKBAIT_THRESHOLD``).

Outputs in ``--out``: ``results.csv`` (one row per preset and agent), ``per_seed.csv``,
``results.json`` (every number, curves, budgets, hardware, versions, command), ``results.md`` (the
tables), ``clicks_by_agent.png``, ``learning_curves.png``, ``regime_shift_ctr.png``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents import (
    DQNAgent,
    DQNConfig,
    OracleAgent,
    PopularityAgent,
    QLearningAgent,
    QLearningConfig,
    RandomAgent,
    SB3DQNAgent,
    SB3DQNConfig,
    SessionRecords,
    StaticProfileAgent,
    SupervisedLSTMAgent,
    run_sessions,
)
from benchmarks.environment_info import command_line, hardware_and_versions, markdown_header
from recenv import DriftingUserVectorEnv
from recenv.encoder_training import make_logs

PRESETS = ("none", "smooth", "abrupt", "mixed")
EVALUATION_SEED = 1_000_000
SHIFT_BEFORE, SHIFT_AFTER, RECOVERY_WINDOW = 5, 10, 3
TRAINING_USERS = 64
CLICKBAIT_THRESHOLD = 0.5
"""Items with clickbait score c above this count as clickbait (the default catalog's are ≥ 0.6, the rest ≤ 0.15)."""


@dataclass(frozen=True)
class Budget:
    """How much each learner trains (user-steps) and how many users are logged and evaluated."""

    q_learning: int
    dqn: int
    sb3_dqn: int
    custom: int
    logged_users: int
    eval_users: int


QUICK = Budget(q_learning=40_000, dqn=40_000, sb3_dqn=15_000, custom=40_000, logged_users=1_000, eval_users=300)
FULL = Budget(q_learning=400_000, dqn=500_000, sb3_dqn=100_000, custom=500_000, logged_users=5_000, eval_users=2_000)


@dataclass
class Context:
    """What an agent factory gets: the training env and logs, the seed, the budget, the device."""

    train_env: DriftingUserVectorEnv
    train_log: Any
    seed: int
    budget: Budget
    device: str
    progress: bool


AgentFactory = Callable[[Context], Any]
"""``factory(context) -> agent``: builds, and trains if it learns, one agent."""


def _q_learning(ctx: Context) -> Any:
    agent = QLearningAgent(ctx.train_env, QLearningConfig(seed=ctx.seed))
    return agent.learn(ctx.train_env, ctx.budget.q_learning, progress=ctx.progress)


def _dqn(head: str) -> AgentFactory:
    def factory(ctx: Context) -> Any:
        agent = DQNAgent(ctx.train_env, DQNConfig(head=head, seed=ctx.seed), device=ctx.device)
        return agent.learn(ctx.train_env, ctx.budget.dqn, progress=ctx.progress)

    return factory


def _sb3_dqn(ctx: Context) -> Any:
    agent = SB3DQNAgent(ctx.train_env, replace(SB3DQNConfig(), seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.sb3_dqn, progress=False)


REFERENCE_AGENTS: dict[str, AgentFactory] = {
    "Random": lambda ctx: RandomAgent(ctx.train_env, seed=ctx.seed),
    "Popularity": lambda ctx: PopularityAgent(ctx.train_env).fit(ctx.train_log),
    "StaticProfile": lambda ctx: StaticProfileAgent(ctx.train_env),
    "SupervisedLSTM": lambda ctx: SupervisedLSTMAgent(ctx.train_env),
    "Oracle": lambda ctx: OracleAgent(ctx.train_env),
    "QLearning": _q_learning,
    "DQN-mlp": _dqn("mlp"),
    "DQN-embedding": _dqn("embedding"),
    "SB3-DQN": _sb3_dqn,
}
"""The reference agents by name; :func:`compare` takes any dict of this shape."""


def agent_from_import_path(path: str) -> AgentFactory:
    """``"package.module:ClassName"`` → a factory that builds ``ClassName(train_env)`` and, if it has
    ``learn``, trains it for the ``custom`` budget."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--agent takes 'package.module:ClassName', got {path!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import agent {path!r}: {error}") from error

    def factory(ctx: Context) -> Any:
        agent = cls(ctx.train_env)
        if hasattr(agent, "learn"):
            agent.learn(ctx.train_env, ctx.budget.custom)
        return agent

    return factory


# ---------------------------------------------------------------- metrics


def _ci95(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def shift_curve(records: Sequence[SessionRecords]) -> tuple[np.ndarray, int]:
    """Mean expected CTR around regime shifts, steps −SHIFT_BEFORE..SHIFT_AFTER−1, and the event count."""
    windows = []
    for run in records:
        for probability, shifted in zip(run.click_probability, run.regime_shift):
            for step in np.flatnonzero(shifted):
                if step >= SHIFT_BEFORE and step + SHIFT_AFTER <= len(probability):
                    windows.append(probability[step - SHIFT_BEFORE : step + SHIFT_AFTER])
    if not windows:
        return np.full(SHIFT_BEFORE + SHIFT_AFTER, np.nan), 0
    return np.mean(windows, axis=0), len(windows)


def recovery_time(curve: np.ndarray) -> float:
    """Steps after the shift until the windowed expected CTR is back at its pre-shift mean (NaN: never)."""
    if np.isnan(curve).all():
        return float("nan")
    before = curve[:SHIFT_BEFORE].mean()
    after = curve[SHIFT_BEFORE:]
    for k in range(len(after) - RECOVERY_WINDOW + 1):
        if after[k : k + RECOVERY_WINDOW].mean() >= before:
            return float(k)
    return float("nan")


def summarise(preset: str, name: str, runs: Sequence[SessionRecords], train_seconds: Sequence[float],
              clickbait: np.ndarray | None = None) -> dict[str, Any]:
    """One table row. ``clickbait``: per item, whether it is clickbait (adds ``clickbait_share``)."""
    returns = np.stack([r.returns for r in runs])  # (seeds, users)
    curve, events = shift_curve(runs)
    row = {
        "preset": preset,
        "agent": name,
        "clicks_per_session": float(returns.mean()),
        "clicks_ci95": _ci95(returns.mean(0)),
        "seed_std": float(returns.mean(1).std(ddof=1)) if len(runs) > 1 else 0.0,
        "ctr": float(np.mean([r.ctr.mean() for r in runs])),
        "session_length": float(np.mean([r.lengths.mean() for r in runs])),
        "regret": float(np.mean([r.regret.mean() for r in runs])),
        "recovery_steps": recovery_time(curve),
        "shift_events": events,
        "topic_entropy_bits": float(np.mean([r.topic_entropy().mean() for r in runs])),
        "clickbait_share": float(np.mean([r.share_of_shown(clickbait).mean() for r in runs])) if clickbait is not None else float("nan"),
        "users_left_share": float(np.mean([np.mean(r.left) for r in runs])),
        "train_seconds": float(np.mean(train_seconds)),
        "seeds": len(runs),
        "eval_users": int(returns.shape[1]),
    }
    return {**row, "_shift_curve": curve.tolist()}


# ---------------------------------------------------------------- the comparison


@dataclass
class Comparison:
    """Everything a run produced: summary rows, per-seed rows, learning curves, configuration."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    learning_curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def compare(
    agents: Mapping[str, AgentFactory] | None = None,
    presets: Sequence[str] | Mapping[str, Mapping[str, Any]] = PRESETS,
    seeds: Sequence[int] = (0, 1, 2),
    budget: Budget = FULL,
    device: str = "cpu",
    progress: bool = True,
) -> Comparison:
    """Run the comparison (see the module docstring) and return its numbers.

    :param agents: name → factory; default :data:`REFERENCE_AGENTS`. Add your own:
        ``compare({**REFERENCE_AGENTS, "Mine": lambda ctx: MyAgent(ctx.train_env)})``.
    :param presets: preset names, or scenarios: name → env arguments (``preset``, ``params``, ...),
        as the ablation uses. Results are labelled by these names.
    """
    agents = dict(REFERENCE_AGENTS if agents is None else agents)
    scenarios = {name: {"preset": name} for name in presets} if not isinstance(presets, Mapping) else dict(presets)
    result = Comparison(config={"presets": {name: dict(kw) for name, kw in scenarios.items()}, "seeds": list(seeds),
                                "budget": asdict(budget), "device": device, "agents": list(agents),
                                "evaluation_seed": EVALUATION_SEED, "training_users": TRAINING_USERS})
    total = len(scenarios) * len(seeds) * len(agents)
    bar = tqdm(total=total, desc="compare", unit="agent", disable=not progress)
    for preset, scenario in scenarios.items():
        env_kwargs = {**scenario, "device": device}
        runs: dict[str, list[SessionRecords]] = {name: [] for name in agents}
        seconds: dict[str, list[float]] = {name: [] for name in agents}
        for seed in seeds:
            train_env = DriftingUserVectorEnv(num_envs=TRAINING_USERS, **env_kwargs)
            train_log = make_logs(train_env.catalog, train_env.params, budget.logged_users, seed=seed,
                                  progress=False, preset_name=train_env.preset)
            for name, factory in agents.items():
                bar.set_description(f"compare [{preset}, seed {seed}] {name}")
                started = time.perf_counter()
                agent = factory(Context(train_env, train_log, seed, budget, device, progress=False))  # one bar is enough
                seconds[name].append(time.perf_counter() - started)
                records = run_sessions(agent, budget.eval_users, seed=EVALUATION_SEED, env_kwargs=env_kwargs, progress=False)
                runs[name].append(records)
                result.per_seed.append({"preset": preset, "agent": name, "seed": seed,
                                        "clicks_per_session": float(records.returns.mean()),
                                        "train_seconds": seconds[name][-1]})
                log = getattr(agent, "log", None)
                if log is not None and getattr(log, "history", None):
                    result.learning_curves[f"{preset}/{name}/seed{seed}"] = list(log.history)
                bar.update(1)
        for name in agents:
            result.rows.append(summarise(preset, name, runs[name], seconds[name],
                                         clickbait=train_env.catalog.clickbait > CLICKBAIT_THRESHOLD))
    bar.close()
    return result


# ---------------------------------------------------------------- outputs

_COLUMNS = ["preset", "agent", "clicks_per_session", "clicks_ci95", "seed_std", "ctr", "session_length", "regret",
            "recovery_steps", "shift_events", "topic_entropy_bits", "clickbait_share", "users_left_share", "train_seconds", "seeds", "eval_users"]


def markdown_tables(rows: Sequence[dict[str, Any]]) -> str:
    lines = []
    for preset in dict.fromkeys(row["preset"] for row in rows):
        lines += [f"\n### {'Preset' if preset in PRESETS else 'Scenario'} `{preset}`\n",
                  "| agent | clicks / session (95% CI) | CTR | session length | regret | recovery (steps) | topic entropy (bits) | clickbait shown | train time (s) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in sorted((r for r in rows if r["preset"] == preset), key=lambda r: -r["clicks_per_session"]):
            if not row["shift_events"]:
                recovery = "no shifts"
            elif np.isnan(row["recovery_steps"]):
                recovery = f"> {SHIFT_AFTER - RECOVERY_WINDOW}"  # not back within the window
            else:
                recovery = f"{row['recovery_steps']:.0f}"
            clickbait = "—" if np.isnan(row["clickbait_share"]) else f"{row['clickbait_share']:.0%}"
            regret = 0.0 if abs(row["regret"]) < 5e-3 else row["regret"]  # the oracle's float noise
            lines.append(
                f"| {row['agent']} | {row['clicks_per_session']:.2f} ± {row['clicks_ci95']:.2f} | {row['ctr']:.3f} | "
                f"{row['session_length']:.1f} | {regret:.2f} | {recovery} | {row['topic_entropy_bits']:.2f} | "
                f"{clickbait} | {row['train_seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def plot_learning_curves(learning_curves: dict[str, list[dict[str, float]]], path: Path, smooth: int = 5) -> None:
    """One panel per preset: each learner's training return (mean over seeds, moving average of
    ``smooth`` records; the band spans the seeds). Keys are ``"preset/agent/seedN"``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    for key, history in learning_curves.items():
        preset, agent, _ = key.rsplit("/", 2)
        points = np.array([(h["steps"], h["episode_return"]) for h in history if "episode_return" in h])
        if len(points):
            curves.setdefault(preset, {}).setdefault(agent, []).append((points[:, 0], points[:, 1]))
    presets = list(curves) or ["(no learners)"]
    figure, axes = plt.subplots(1, len(presets), figsize=(4 * len(presets) + 1, 4), sharey=True, squeeze=False)
    for axis, preset in zip(axes[0], presets):
        for agent, runs in curves.get(preset, {}).items():
            grid = np.linspace(max(r[0][0] for r in runs), min(r[0][-1] for r in runs), 100)
            values = np.stack([np.interp(grid, steps, returns) for steps, returns in runs])
            kernel = np.ones(min(smooth, len(grid))) / min(smooth, len(grid))
            values = np.stack([np.convolve(v, kernel, mode="valid") for v in values])
            x = grid[len(grid) - values.shape[1]:]
            (line,) = axis.plot(x, values.mean(0), label=agent)
            if len(runs) > 1:
                axis.fill_between(x, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
        axis.set_title(preset)
        axis.set_xlabel("training user-steps")
        axis.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0][0].set_ylabel("clicks / training session\n(last 100 sessions, with exploration)")
    if curves:
        axes[0][-1].legend(fontsize=8)
    figure.suptitle("Learning curves (mean over seeds; band: min–max)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot(result: Comparison, out: Path, shift_scenario: str = "mixed") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.rows
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    names = list(dict.fromkeys(r["agent"] for r in rows))
    figure, axis = plt.subplots(figsize=(max(6, 1.6 * len(names)), 4.5))
    width = 0.8 / len(presets)
    for p, preset in enumerate(presets):
        values = [next(r for r in rows if r["preset"] == preset and r["agent"] == n) for n in names]
        x = np.arange(len(names)) + (p - (len(presets) - 1) / 2) * width
        axis.bar(x, [v["clicks_per_session"] for v in values], width, yerr=[v["clicks_ci95"] for v in values],
                 capsize=2, label=preset)
    axis.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
    axis.set_ylabel("clicks per session (95% CI)")
    axis.set_title("Held-out users, by agent and preset")
    axis.legend(title="preset")
    figure.tight_layout()
    figure.savefig(out / "clicks_by_agent.png", dpi=120)
    plt.close(figure)

    plot_learning_curves(result.learning_curves, out / "learning_curves.png")

    shift_preset = shift_scenario if shift_scenario in presets else presets[-1]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    steps = np.arange(-SHIFT_BEFORE, SHIFT_AFTER)
    for row in rows:
        if row["preset"] == shift_preset and row["shift_events"]:
            axis.plot(steps, row["_shift_curve"], label=f"{row['agent']} ({row['shift_events']} shifts)")
    if not any(row["preset"] == shift_preset and row["shift_events"] for row in rows):
        axis.text(0.5, 0.5, "no regime shift far enough from both session ends", transform=axis.transAxes, ha="center")
    axis.axvline(0, color="grey", linestyle="--")
    axis.set_xlabel("steps relative to a regime shift")
    axis.set_ylabel("expected CTR (true P(click) of shown items)")
    axis.set_title(f"CTR around regime shifts (preset {shift_preset})")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "regime_shift_ctr.png", dpi=120)
    plt.close(figure)


def _strict_json(value: Any) -> Any:
    """Standard JSON: NaN (no regime shift, no recovery) becomes null; numpy scalars become floats."""
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_outputs(result: Comparison, out: Path, command: str, wall_seconds: float,
                  title: str = "Agent comparison on DriftingUser-v0", shift_scenario: str = "mixed") -> str:
    out.mkdir(parents=True, exist_ok=True)
    info = hardware_and_versions()
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.rows)
    with open(out / "per_seed.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["preset", "agent", "seed", "clicks_per_session", "train_seconds"])
        writer.writeheader()
        writer.writerows(result.per_seed)
    report = {"command": command, "environment": info, "wall_seconds": wall_seconds, "config": result.config,
              "results": [{k.lstrip("_"): v for k, v in row.items()} for row in result.rows],
              "per_seed": result.per_seed, "learning_curves": result.learning_curves,
              "shift_window": {"before": SHIFT_BEFORE, "after": SHIFT_AFTER, "recovery_window": RECOVERY_WINDOW}}
    (out / "results.json").write_text(json.dumps(_strict_json(report), indent=2, allow_nan=False))
    text = (markdown_header(title, info, command)
            + f"- Wall time: {wall_seconds / 60:.1f} min; seeds {result.config['seeds']}; "
              f"{result.config['budget']['eval_users']} held-out users per seed; budgets (user-steps): "
              f"Q-learning {result.config['budget']['q_learning']:,}, DQN {result.config['budget']['dqn']:,}, "
              f"SB3 DQN {result.config['budget']['sb3_dqn']:,}\n"
            + markdown_tables(result.rows))
    (out / "results.md").write_text(text, encoding="utf-8")
    plot(result, out, shift_scenario)
    return text


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every comparison script shares (agents, seeds, budgets, device, output)."""
    parser.add_argument("--quick", action="store_true", help="one seed, small budgets (a few minutes)")
    parser.add_argument("--agents", nargs="+", default=None, help=f"subset of {list(REFERENCE_AGENTS)}")
    parser.add_argument("--agent", action="append", default=[], metavar="MODULE:CLASS", help="add your own agent (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--eval-users", type=int, default=None, help="held-out users per seed")
    parser.add_argument("--logged-users", type=int, default=None, help="sessions logged for the popularity ranking")
    parser.add_argument("--dqn-steps", type=int, default=None, help="training user-steps of each DQN")
    parser.add_argument("--q-learning-steps", type=int, default=None)
    parser.add_argument("--sb3-steps", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="device of envs and DQN (cpu, cuda, auto)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")


def resolve_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[dict[str, AgentFactory], list[int], Budget]:
    """Agents, training seeds and budget that the shared options ask for."""
    budget = QUICK if args.quick else FULL
    overrides = {"eval_users": args.eval_users, "logged_users": args.logged_users, "dqn": args.dqn_steps,
                 "q_learning": args.q_learning_steps, "sb3_dqn": args.sb3_steps}
    budget = replace(budget, **{k: v for k, v in overrides.items() if v is not None})
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    unknown = sorted(set(args.agents or []) - set(REFERENCE_AGENTS))
    if unknown:
        parser.error(f"unknown agent(s) {unknown}; known: {list(REFERENCE_AGENTS)}")
    agents = {name: REFERENCE_AGENTS[name] for name in (args.agents or REFERENCE_AGENTS)}
    for path in args.agent:
        agents[path.rpartition(":")[2]] = agent_from_import_path(path)
    return agents, seeds, budget


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=None, help="default: all (quick: mixed)")
    args = parser.parse_args(argv)
    agents, seeds, budget = resolve_run(args, parser)
    presets = args.presets or (["mixed"] if args.quick else list(PRESETS))
    out = args.out or Path("results/compare-quick" if args.quick else "results/compare")

    started = time.perf_counter()
    result = compare(agents, presets, seeds, budget, args.device)
    text = write_outputs(result, out, command_line("benchmarks.compare", argv), time.perf_counter() - started)
    print(text)
    print(f"wrote {out}/results.md, results.csv, per_seed.csv, results.json and the plots")


if __name__ == "__main__":
    main()
