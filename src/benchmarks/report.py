"""What a comparison writes: the tables (CSV, Markdown), every number (JSON) and the plots.

Outputs in the output folder: ``results.csv`` (one row per preset and agent), ``differences.csv``
(paired differences to the reference and to the far-sighted reference), ``per_seed.csv``,
``results.json`` (every number, curves, budgets, hardware, versions, command), ``results.md`` (the
tables), ``clicks_by_agent.png``, ``paired_differences.png``, ``learning_curves.png``,
``regime_shift_effect.png``. The stored sessions they are computed from are in ``parts/``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.environment_info import hardware_and_versions, markdown_header
from benchmarks.metrics import RECOVERY_WINDOW, SHIFT_WINDOW
from recenv.presets import SYNTHETIC_PRESETS

if TYPE_CHECKING:  # outputs need only the shape of a result, not the machinery that makes one
    from benchmarks.protocol import Comparison

_COLUMNS = ["preset", "agent", "privileged", "clicks_per_session", "clicks_low", "clicks_high", "seed_std",
            "share_of_best_reference", "best_reference", "ctr", "session_length", "regret_per_step",
            "regret_per_session", "shift_events", "shift_clicks", "shift_clicks_low", "shift_clicks_high", "recovery_steps",
            "placebo_events", "placebo_clicks", "placebo_clicks_low", "placebo_clicks_high", "naive_shift_drop", "naive_placebo_drop",
            "coupling_error", "topic_entropy_bits", "clickbait_share", "repeat_share", "users_left_share",
            "train_seconds", "train_steps", "train_steps_per_second", "seeds", "eval_users"]
"""The columns of ``results.csv``, in order: a summary row's keys, less the curves and per-seed lists."""
_DIFFERENCE_COLUMNS = ["preset", "agent", "against", "mean", "low", "high", "seed_std", "verdict", "resamples"]

PRIVILEGED_MARK = "†"
"""Marks privileged references (they read the simulator's hidden side) in every table."""


def _name(row: dict[str, Any]) -> str:
    return f"{row['agent']} {PRIVILEGED_MARK}" if row.get("privileged") else row["agent"]


def _signed(value: float, low: float, high: float) -> str:
    return f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"


def _difference(differences: Sequence[dict[str, Any]], preset: str, agent: str, against: str | None) -> dict[str, Any] | None:
    return next((d for d in differences if d["preset"] == preset and d["agent"] == agent and d["against"] == against), None)


def _recovery(row: dict[str, Any]) -> str:
    if not row.get("shift_events"):
        return "no shifts"
    if np.isnan(row["recovery_steps"]):
        return f"> {SHIFT_WINDOW - RECOVERY_WINDOW}"  # not level with the counterfactual within the window
    return f"{row['recovery_steps']:.0f}"


def _budgets(budget: dict[str, int]) -> str:
    """The budget line of the header: each learner's training user-steps, and the logged sessions."""
    steps = ", ".join(f"{name} {value:,}" for name, value in budget.items() if name not in ("eval_users", "logged_users"))
    return f"budgets (user-steps): {steps}; {budget['logged_users']:,} logged sessions"


def _rate(row: dict[str, Any]) -> str:
    """Training user-steps per second (steps over training wall time, collection included)."""
    rate = row.get("train_steps_per_second")
    return "—" if rate is None or (isinstance(rate, float) and np.isnan(rate)) else f"{rate:,.0f}"


def markdown_tables(rows: Sequence[dict[str, Any]], differences: Sequence[dict[str, Any]] = (),
                    reference: str | None = None) -> str:
    """Per preset (or scenario): the clicks table (best first) with the paired differences to
    ``reference`` and to the far-sighted reference, the behaviour table, and the placebo line."""
    lines = []
    for preset in dict.fromkeys(row["preset"] for row in rows):
        ordered = sorted((r for r in rows if r["preset"] == preset), key=lambda r: -r["clicks_per_session"])
        farsighted = next((d["against"] for d in differences if d["preset"] == preset and d["against"] != reference), None)
        lines += [f"\n### {'Preset' if preset in SYNTHETIC_PRESETS else 'Scenario'} `{preset}`\n",
                  (f"| agent | clicks / session [95% CI] | seed sd | vs {reference or 'reference'} [95% CI] | "
                   f"vs {farsighted or 'far-sighted reference'} [95% CI] | share of best reference |"),
                  "|---|---:|---:|---:|---:|---:|"]
        for row in ordered:
            cells = []
            for against in (reference, farsighted):
                d = _difference(differences, preset, row["agent"], against)
                cells.append("—" if d is None else f"{_signed(d['mean'], d['low'], d['high'])} {d['verdict']}")
            share = "—" if np.isnan(row["share_of_best_reference"]) else f"{row['share_of_best_reference']:.0%}"
            lines.append(f"| {_name(row)} | {row['clicks_per_session']:.2f} [{row['clicks_low']:.2f}, "
                         f"{row['clicks_high']:.2f}] | {row['seed_std']:.2f} | {cells[0]} | {cells[1]} | {share} |")
        lines += ["", ("| agent | regret / step | clicks from a shift [95% CI] | recovery (steps) | repeats "
                       "| clickbait shown | topic entropy (bits) | session length | users left | train time (s) | train user-steps/s |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in ordered:
            shift = ("—" if not row.get("shift_events")
                     else _signed(row["shift_clicks"], row["shift_clicks_low"], row["shift_clicks_high"]))
            clickbait = "—" if np.isnan(row["clickbait_share"]) else f"{row['clickbait_share']:.0%}"
            regret = 0.0 if abs(row["regret_per_step"]) < 5e-4 else row["regret_per_step"]  # the oracle's float noise
            lines.append(f"| {_name(row)} | {regret:.3f} | {shift} | {_recovery(row)} | {row['repeat_share']:.0%} | "
                         f"{clickbait} | {row['topic_entropy_bits']:.2f} | {row['session_length']:.1f} | "
                         f"{row['users_left_share']:.0%} | {row['train_seconds']:.0f} | {_rate(row)} |")
        with_placebo = [r for r in ordered if r.get("placebo_events")]
        if with_placebo:
            worst = max(with_placebo, key=lambda r: abs(r["placebo_clicks"]))
            lines.append(
                f"\nPlacebo ({worst['placebo_events']} shift-free sessions, seeds counted apart, a random onset each): "
                f"the counterfactual estimator gives at most {worst['placebo_clicks']:+.3f} "
                f"[{worst['placebo_clicks_low']:+.3f}, {worst['placebo_clicks_high']:+.3f}] clicks ({worst['agent']}); coupling error "
                f"{max(r['coupling_error'] for r in ordered):.1e}. The naive before/after estimator at the same "
                f"placebo onsets: " + ", ".join(f"{r['agent']} {r['naive_placebo_drop']:+.3f}" for r in with_placebo)
                + " (expected CTR per step).")
    lines.append(f"\n{PRIVILEGED_MARK} privileged reference: reads the simulator's hidden side. Differences are "
                 "paired per user (bootstrap over users and training seeds); \"better\"/\"worse\" only when the "
                 "interval excludes 0.")
    return "\n".join(lines) + "\n"


def scenario_table(rows: Sequence[dict[str, Any]]) -> str:
    """One Markdown table of clicks per session [95% CI]: a row per agent, a column per scenario
    (the ablation's summary)."""
    scenarios = list(dict.fromkeys(row["preset"] for row in rows))
    agents = list(dict.fromkeys(row["agent"] for row in rows))
    lines = ["| agent | " + " | ".join(scenarios) + " |", "|---|" + "---:|" * len(scenarios)]
    for agent in agents:
        cells = []
        for scenario in scenarios:
            row = next((r for r in rows if r["agent"] == agent and r["preset"] == scenario), None)
            cells.append("—" if row is None else
                         f"{row['clicks_per_session']:.2f} [{row['clicks_low']:.2f}, {row['clicks_high']:.2f}]")
        name = next((_name(r) for r in rows if r["agent"] == agent), agent)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
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
    """Write the plots into ``out``: clicks per session by agent and preset
    (``clicks_by_agent.png``), the paired differences to the reference (``paired_differences.png``),
    the learning curves (``learning_curves.png``), and what a regime shift costs each agent against
    its counterfactual in ``shift_scenario`` (else the last preset) (``regime_shift_effect.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.rows
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    names = list(dict.fromkeys(r["agent"] for r in rows))
    labels = [f"{n} {PRIVILEGED_MARK}" if any(r["agent"] == n and r.get("privileged") for r in rows) else n for n in names]
    figure, axis = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4.5))
    width = 0.8 / len(presets)
    for p, preset in enumerate(presets):
        values = [next(r for r in rows if r["preset"] == preset and r["agent"] == n) for n in names]
        x = np.arange(len(names)) + (p - (len(presets) - 1) / 2) * width
        means = np.array([v["clicks_per_session"] for v in values])
        errors = np.array([[m - v["clicks_low"] for m, v in zip(means, values)], [v["clicks_high"] - m for m, v in zip(means, values)]])
        axis.bar(x, means, width, yerr=errors, capsize=2, label=preset)
    axis.set_xticks(np.arange(len(names)), labels, rotation=30, ha="right")
    axis.set_ylabel("clicks per session (95% CI, users and seeds)")
    axis.set_title(f"Held-out users, by agent and preset ({PRIVILEGED_MARK} privileged)")
    axis.legend(title="preset")
    figure.tight_layout()
    figure.savefig(out / "clicks_by_agent.png", dpi=120)
    plt.close(figure)

    reference = result.config.get("reference")
    privileged = {r["agent"] for r in rows if r.get("privileged")}
    # The privileged references are far off this scale; the tables give their differences.
    against_reference = [d for d in result.differences if d["against"] == reference and d["agent"] not in privileged]
    figure, axes = plt.subplots(1, len(presets), figsize=(max(8.0, 4.5 * len(presets)), 0.45 * len(names) + 1.5),
                                squeeze=False)
    for axis, preset in zip(axes[0], presets):
        cells = [d for d in against_reference if d["preset"] == preset]
        cells.sort(key=lambda d: d["mean"])
        y = np.arange(len(cells))
        colours = ["tab:green" if d["verdict"] == "better" else "tab:red" if d["verdict"] == "worse" else "tab:grey" for d in cells]
        for position, d, colour in zip(y, cells, colours):
            axis.errorbar([d["mean"]], [position], xerr=[[d["mean"] - d["low"]], [d["high"] - d["mean"]]],
                          fmt="o", color=colour, capsize=3)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_yticks(y, [d["agent"] for d in cells])
        axis.set_title(preset)
        axis.set_xlabel(f"clicks per session − {reference}'s (95% CI)")
    figure.suptitle("Paired differences on the same users, non-privileged agents\n"
                    "(95% bootstrap intervals over users and training seeds; green/red: the interval excludes 0)")
    figure.tight_layout()
    figure.savefig(out / "paired_differences.png", dpi=120)
    plt.close(figure)

    plot_learning_curves(result.learning_curves, out / "learning_curves.png")

    shift_preset = shift_scenario if shift_scenario in presets else presets[-1]
    figure, axis = plt.subplots(figsize=(9, 5.5))
    axis.set_prop_cycle(color=plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2])
    steps = np.arange(SHIFT_WINDOW)
    for row in rows:
        if row["preset"] == shift_preset and row.get("shift_events"):
            (line,) = axis.plot(steps, row["shift_curve"], label=f"{row['agent']} ({row['shift_events']} shifts)")
            axis.fill_between(steps, row["shift_curve_low"], row["shift_curve_high"], color=line.get_color(), alpha=0.15)
            axis.plot(steps, row["placebo_curve"], color=line.get_color(), linestyle=":", linewidth=0.8)
    if not any(row["preset"] == shift_preset and row.get("shift_events") for row in rows):
        axis.text(0.5, 0.5, "no regime shift", transform=axis.transAxes, ha="center")
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel("steps from the first step a regime shift affects")
    axis.set_ylabel("expected clicks: factual − shift scripted off")
    axis.set_title(f"What a regime shift costs against the counterfactual, preset {shift_preset}\n"
                   "(band: 95% CI over seeds and users; dotted: placebo at shift-free steps)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "regime_shift_effect.png", dpi=120)
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


def _backend(config: dict[str, Any]) -> str:
    """`` (pool, 2 workers: 12 cells run, 7 stored)`` for a run that says how its cells ran."""
    if "backend" not in config:
        return ""
    workers = "" if config["backend"] == "sequential" else f", {config['workers']} workers"
    return f" ({config['backend']}{workers}: {config['cells_run']} cells run, {config['cells_stored']} stored)"


def write_outputs(result: Comparison, out: Path, command: str, wall_seconds: float,
                  title: str = "Agent comparison on DriftingUser-v0", shift_scenario: str = "mixed",
                  summary: bool = False) -> str:
    """Write every output (see the module docstring) into ``out`` and return the Markdown text.

    :param command: the command line that ran the comparison, as it is to be reported.
    :param wall_seconds: how long the comparison took, in seconds.
    :param summary: put :func:`scenario_table` (clicks by agent and scenario) before the tables.
    """
    out.mkdir(parents=True, exist_ok=True)
    info = hardware_and_versions()
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.rows)
    with open(out / "differences.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=_DIFFERENCE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.differences)
    with open(out / "per_seed.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["preset", "agent", "seed", "clicks_per_session", "train_seconds",
                                                  "cell_seconds"])
        writer.writeheader()
        writer.writerows(result.per_seed)
    report = {"command": command, "environment": info, "wall_seconds": wall_seconds, "config": result.config,
              "results": result.rows, "differences": result.differences,
              "per_seed": result.per_seed, "learning_curves": result.learning_curves,
              "shift_window": {"steps": SHIFT_WINDOW, "recovery_window": RECOVERY_WINDOW}}
    (out / "results.json").write_text(json.dumps(_strict_json(report), indent=2, allow_nan=False))
    text = (markdown_header(title, info, command)
            + f"- Time: {sum(p['wall_seconds'] for p in result.config['parts']) / 60:.1f} min of cells over "
              f"{len(result.config['parts'])} parts; this call {wall_seconds / 60:.1f} min wall{_backend(result.config)}; "
              f"seeds {result.config['seeds']}; "
              f"{result.config['budget']['eval_users']} held-out users per seed; {_budgets(result.config['budget'])}\n"
            + (f"\nClicks per session [95% CI]:\n\n{scenario_table(result.rows)}" if summary else "")
            + markdown_tables(result.rows, result.differences, result.config.get("reference")))
    (out / "results.md").write_text(text, encoding="utf-8")
    plot(result, out, shift_scenario)
    return text
