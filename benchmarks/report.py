"""What a comparison writes: the tables (CSV, Markdown), every number (JSON) and the plots.

Outputs in the output folder: ``results.csv`` (one row per preset and agent), ``per_seed.csv``,
``results.json`` (every number, curves, budgets, hardware, versions, command), ``results.md`` (the
tables), ``clicks_by_agent.png``, ``learning_curves.png``, ``regime_shift_ctr.png``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.environment_info import hardware_and_versions, markdown_header
from benchmarks.metrics import RECOVERY_WINDOW, SHIFT_AFTER, SHIFT_BEFORE
from recenv.presets import SYNTHETIC_PRESETS

if TYPE_CHECKING:  # outputs need only the shape of a result, not the machinery that makes one
    from benchmarks.protocol import Comparison

_COLUMNS = ["preset", "agent", "clicks_per_session", "clicks_ci95", "seed_std", "ctr", "session_length", "regret",
            "recovery_steps", "shift_events", "topic_entropy_bits", "clickbait_share", "users_left_share",
            "train_seconds", "seeds", "eval_users"]
"""The columns of ``results.csv``, in order: a summary row's keys, less the shift curve."""


def markdown_tables(rows: Sequence[dict[str, Any]]) -> str:
    """One Markdown table per preset (or scenario) of the summary rows, best clicks per session first."""
    lines = []
    for preset in dict.fromkeys(row["preset"] for row in rows):
        lines += [f"\n### {'Preset' if preset in SYNTHETIC_PRESETS else 'Scenario'} `{preset}`\n",
                  "| agent | clicks / session (95% CI) | CTR | session length | regret | recovery (steps) "
                  "| topic entropy (bits) | clickbait shown | train time (s) |",
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
    """Write the three plots into ``out``: clicks per session by agent and preset, the learning
    curves, and the expected CTR around regime shifts in ``shift_scenario`` (else the last preset)."""
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
    """Write every output (see the module docstring) into ``out`` and return the Markdown text.

    :param command: the command line that ran the comparison, as it is to be reported.
    :param wall_seconds: how long the comparison took, in seconds.
    """
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
