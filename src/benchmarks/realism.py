"""How realistic the simulated drift is: MovieLens-100K users against simulated users, for the
default preset and for the user model fitted to those users.

Both sides are measured by :mod:`recenv.offline.drift_statistics` on the MovieLens catalog (1,682 movies,
text-embedded). Simulated users browse organically (:mod:`recenv.offline.organic_histories`), one per real
user and with the same history length. The fit (:mod:`recenv.offline.drift_fit`) adjusts the drift (σ, α, h)
and the population prior; everything else keeps the default values.

    recenv realism --data PATH                 # measured: docs/results/movielens.md
    recenv realism --data PATH --quick         # a smoke run: a small grid, one round
    recenv realism --data PATH --write-params  # also update recenv/assets/ml100k_params.json

``PATH`` holds MovieLens-100K in the GroupLens or RecBole layout (default: ``$RECENV_ML100K``).
Writes ``realism.md``, ``realism.json``, ``drift_curves.csv``, ``ml100k_params.json``,
``drift_curve.png`` and ``statistics.png`` into ``--out``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import recenv
from benchmarks.environment_info import hardware_and_versions, markdown_header
from recenv.data.movielens import load_movielens_100k
from recenv.offline.drift_fit import (
    DRIFT_FIELDS,
    DRIFT_STATISTICS,
    PRIOR_FIELDS,
    PRIOR_STATISTICS,
    FitConfig,
    fit_user_model,
    save_fitted_params,
    simulated_statistics,
)
from recenv.offline.drift_statistics import (
    SCALAR_STATISTICS,
    DriftStatistics,
    DriftStatisticsConfig,
    drift_curve_gap,
    drift_statistics,
    statistics_distance,
)
from recenv.params import UserModelParams
from recenv.presets import SYNTHETIC_PRESETS

DEFAULT_PRESET = "mixed"
PACKAGE_PARAMS = Path(recenv.__file__).parent / "assets" / "ml100k_params.json"

_LABELS = {
    "exogenous_drift_scale": "σ, exogenous drift",
    "consumption_drift_rate": "α, consumption drift",
    "regime_shift_prob": "h, regime-shift probability",
    "prior_noise_scale": "τ, prior noise",
    "max_topics_per_user": "max favoured topics",
    "window_concentration": "window concentration",
    "shift_rate": "abrupt-shift rate",
    "genre_divergence": "genre divergence early/late (JS, bits)",
    "genre_run_length": "genre run length",
    "early_concentration": "early concentration",
    "early_genre_entropy": "early genre entropy (bits)",
}


@dataclasses.dataclass
class Comparison:
    """Statistics of the real histories and of two simulated user models."""

    real: DriftStatistics
    default: DriftStatistics
    fitted: DriftStatistics
    default_params: UserModelParams
    fitted_params: UserModelParams

    def gaps(self) -> dict[str, float]:
        return {"default": drift_curve_gap(self.real, self.default), "fitted": drift_curve_gap(self.real, self.fitted)}

    def distances(self, groups: Sequence[str]) -> dict[str, float]:
        return {
            "default": statistics_distance(self.real, self.default, tuple(groups)),
            "fitted": statistics_distance(self.real, self.fitted, tuple(groups)),
        }


def run(data_path: str | None, config: FitConfig, progress: bool = True) -> tuple[Comparison, dict[str, Any]]:
    """Load, measure, fit, measure again. Returns the comparison and facts about the run."""
    started = time.perf_counter()
    data = load_movielens_100k(data_path)
    catalog = data.to_catalog()
    loaded = time.perf_counter()
    real = drift_statistics(data.histories, catalog.latents, catalog.topics, config.statistics)
    default_params = SYNTHETIC_PRESETS[DEFAULT_PRESET]
    default = simulated_statistics(catalog, catalog.latents, catalog.topics, default_params, data.histories.lengths, config)
    result = fit_user_model(catalog, data.histories, start=default_params, config=config, progress=progress)
    fitted = result.simulated  # the fitted parameters' statistics, simulated with the same seed and lengths
    facts = {
        "data_folder": str(data.source),
        "layout": data.layout,
        "users": data.num_users,
        "movies": data.num_items,
        "ratings": int(len(data.histories.items)),
        "history_length_median": float(np.median(data.histories.lengths)),
        "topics": len(catalog.topic_names),
        "evaluations": len(result.evaluations),
        "seconds_loading": loaded - started,
        "seconds_fitting": time.perf_counter() - loaded,
    }
    comparison = Comparison(real, default, fitted, default_params, result.params)
    return comparison, facts


# ---------------------------------------------------------------- outputs


def _value(stats: DriftStatistics, name: str) -> str:
    return f"{getattr(stats, name):.3f} ± {getattr(stats, name + '_se'):.3f}"


def markdown_report(comparison: Comparison, facts: dict[str, Any], config: FitConfig, info: dict[str, Any], command: str) -> str:
    real, default, fitted = comparison.real, comparison.default, comparison.fitted
    gaps = comparison.gaps()
    drift_distance, prior_distance = comparison.distances(DRIFT_STATISTICS), comparison.distances(PRIOR_STATISTICS)
    s = config.statistics
    lines = [
        markdown_header("Realism: MovieLens-100K users vs simulated users", info, command),
        f"- Data: {facts['users']} users, {facts['movies']} movies, {facts['ratings']:,} ratings "
        f"({facts['layout']} layout; median history {facts['history_length_median']:.0f} ratings); "
        f"catalog of {facts['movies']} movie texts, {facts['topics']} primary genres as topics.",
        f"- Measured on the first {s.max_length} interactions of each user; windows of {s.window}, lags 1–{s.max_lag}; "
        f"abrupt shift: adjacent-window cosine < {s.shift_threshold}; early history: first {s.early_length}.",
        f"- Simulated users: organic browsing (page of 50 random movies, choice ∝ softmax of click logits, "
        f"clicked items kept), {config.replicas} per real user with the same history length, seed {config.seed}.",
        f"- Fit: {facts['evaluations']} simulations in {facts['seconds_fitting']:.0f} s "
        f"({config.rounds} round(s) of prior grid + drift grid/Nelder–Mead).",
        "",
        "### Drift curve: the headline",
        "",
        f"Maximum absolute gap between the real and the simulated drift curve over lags 1–{s.max_lag}:",
        "",
        "| user model | max abs gap | drift distance | early-history distance |",
        "|---|---:|---:|---:|",
        f"| default preset `{DEFAULT_PRESET}` | {gaps['default']:.3f} | {drift_distance['default']:.1f} | {prior_distance['default']:.1f} |",
        f"| fitted (`preset=\"ml100k\"`) | {gaps['fitted']:.3f} | {drift_distance['fitted']:.1f} | {prior_distance['fitted']:.1f} |",
        "",
        "Distances are squared gaps in units of sampling noise, weighted by the covariance of the statistics and "
        "averaged over the numbers compared (`recenv.offline.drift_statistics.statistics_distance`): drift = drift curve, "
        "window concentration, shift rate and genre divergence (what σ, α, h are fitted to); early history = early "
        "concentration and early genre entropy (what the prior is fitted to). About 1 would be a match within noise.",
        "",
        "| lag (windows) | real | default | fitted |",
        "|---:|---:|---:|---:|",
    ]
    for index, lag in enumerate(real.lags):
        lines.append(
            f"| {lag} | {real.drift_curve[index]:.3f} ± {real.drift_curve_se[index]:.3f} | "
            f"{default.drift_curve[index]:.3f} | {fitted.drift_curve[index]:.3f} |"
        )
    lines += ["", "### Other statistics (mean over users ± standard error)", "", "| statistic | real | default | fitted | fitted to |", "|---|---:|---:|---:|---|"]
    for name in SCALAR_STATISTICS:
        role = "drift" if name in DRIFT_STATISTICS else "prior" if name in PRIOR_STATISTICS else "— (satiation, reported only)"
        lines.append(f"| {_LABELS[name]} | {_value(real, name)} | {_value(default, name)} | {_value(fitted, name)} | {role} |")
    lines += ["", "### Parameters", "", "| parameter | default | fitted |", "|---|---:|---:|"]
    for name in DRIFT_FIELDS + PRIOR_FIELDS:
        before, after = getattr(comparison.default_params, name), getattr(comparison.fitted_params, name)
        lines.append(f"| {_LABELS[name]} (`{name}`) | {before:g} | {after:.4g} |")
    lines += [
        "",
        "![drift curve](drift_curve.png)",
        "",
        "![statistics](statistics.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def plot(comparison: Comparison, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, default, fitted = comparison.real, comparison.default, comparison.fitted
    gaps = comparison.gaps()
    lags = real.lags
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    axes.fill_between(lags, real.drift_curve - 1.96 * real.drift_curve_se, real.drift_curve + 1.96 * real.drift_curve_se,
                      color="black", alpha=0.12, linewidth=0)
    axes.plot(lags, real.drift_curve, "o-", color="black", label="MovieLens-100K users (95% CI)")
    axes.plot(lags, default.drift_curve, "s--", color="tab:red", label=f"default preset '{DEFAULT_PRESET}' (max gap {gaps['default']:.3f})")
    axes.plot(lags, fitted.drift_curve, "^-", color="tab:blue", label=f"fitted, preset 'ml100k' (max gap {gaps['fitted']:.3f})")
    window = real.config.window
    axes.set_xlabel(f"lag (windows of {window} interactions)")
    axes.set_ylabel("cosine of mean item latents")
    axes.set_title("Drift curve: how alike a user's windows are, by distance")
    axes.set_xticks(lags)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    curve_path = out / "drift_curve.png"
    figure.savefig(curve_path)
    plt.close(figure)

    names = SCALAR_STATISTICS
    figure, axes = plt.subplots(1, len(names), figsize=(2.0 * len(names), 3.2), dpi=110)
    for axis, name in zip(axes, names):
        values = [getattr(s, name) for s in (real, default, fitted)]
        errors = [1.96 * getattr(s, name + "_se") for s in (real, default, fitted)]
        axis.bar(range(3), values, yerr=errors, color=["black", "tab:red", "tab:blue"], capsize=3)
        axis.set_xticks(range(3), ["real", "default", "fitted"], fontsize=7, rotation=30)
        axis.set_title(_LABELS[name].split(" (")[0], fontsize=8)
        axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    statistics_path = out / "statistics.png"
    figure.savefig(statistics_path)
    plt.close(figure)
    return [curve_path, statistics_path]


def write_outputs(
    comparison: Comparison, facts: dict[str, Any], config: FitConfig, out: Path, command: str, write_params: bool
) -> str:
    out.mkdir(parents=True, exist_ok=True)
    info = hardware_and_versions()
    gaps = comparison.gaps()
    drift_distance, prior_distance = comparison.distances(DRIFT_STATISTICS), comparison.distances(PRIOR_STATISTICS)
    real, default, fitted = comparison.real, comparison.default, comparison.fitted
    with open(out / "drift_curves.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["lag", "real", "real_se", "real_users", "default", "default_se", "fitted", "fitted_se"])
        for i, lag in enumerate(real.lags):
            writer.writerow([int(lag), real.drift_curve[i], real.drift_curve_se[i], int(real.drift_curve_users[i]),
                             default.drift_curve[i], default.drift_curve_se[i], fitted.drift_curve[i], fitted.drift_curve_se[i]])
    summary = {
        "command": command,
        "environment": info,
        "data": facts,
        "fit_config": dataclasses.asdict(config),
        "max_abs_drift_curve_gap": gaps,
        "drift_distance": drift_distance,
        "early_history_distance": prior_distance,
        "default_params": comparison.default_params.to_dict(),
        "fitted_params": comparison.fitted_params.to_dict(),
        "statistics": {"real": real.to_dict(), "default": default.to_dict(), "fitted": fitted.to_dict()},
    }
    (out / "realism.json").write_text(json.dumps(summary, indent=2, default=_json_default), encoding="utf-8")
    metadata = {
        "fitted_to": f"MovieLens-100K ({facts['users']} users, {facts['ratings']} ratings)",
        "command": command,
        "recenv_version": recenv.__version__,
        "max_abs_drift_curve_gap": gaps,
        "drift_distance": drift_distance,
        "statistics_config": dataclasses.asdict(config.statistics),
        "seed": config.seed,
    }
    save_fitted_params(out / "ml100k_params.json", comparison.fitted_params, **metadata)
    if write_params:
        save_fitted_params(PACKAGE_PARAMS, comparison.fitted_params, **metadata)
    plot(comparison, out)
    text = markdown_report(comparison, facts, config, info, command)
    (out / "realism.md").write_text(text, encoding="utf-8")
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def fit_config(quick: bool = False, seed: int = 0, replicas: int = 1, max_evaluations: int | None = None,
               rounds: int | None = None, window: int = 10, max_lag: int = 10) -> FitConfig:
    """The fit's settings: ``quick`` is a smoke run (a small grid, 6 evaluations, one round); else
    the full grid, 2 rounds. ``window`` interactions per window of the drift curve, lags up to
    ``max_lag`` windows; ``seed`` of every simulation (common random numbers)."""
    statistics = DriftStatisticsConfig(window=window, max_lag=max_lag)
    if quick:
        return FitConfig(
            statistics=statistics, seed=seed, replicas=replicas,
            drift_grid=((0.2, 0.5),) * 3, max_evaluations=max_evaluations if max_evaluations is not None else 6,
            starts=1, rounds=rounds or 1, prior_noise_grid=(0.0, 0.3), max_topics_grid=(1, 3),
        )
    return FitConfig(statistics=statistics, seed=seed, replicas=replicas, rounds=rounds or 2,
                     **({} if max_evaluations is None else {"max_evaluations": max_evaluations}))
