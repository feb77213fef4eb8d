"""Ablations: the agent comparison on the ``mixed`` preset with each mechanism switched off in turn.

    python -m benchmarks.ablation --quick     # one seed, small budgets
    python -m benchmarks.ablation             # the README table

Scenarios: every mechanism on (``mixed``), then one switch off at a time — exogenous drift,
consumption drift, regime shifts, satiation, impression fatigue, clickbait (it neither lures clicks
nor costs patience; users still leave when bored) and patience (users never leave; sessions run
to the horizon). Each scenario observes through the encoder trained on its own dynamics (shipped,
cached, or trained on first use: :func:`recenv.encoder.resolve_encoder`). Same
protocol, statistics and outputs as :mod:`benchmarks.compare` (:mod:`benchmarks.protocol`,
:mod:`benchmarks.metrics`, :mod:`benchmarks.report`; the ``preset`` column names the scenario),
written to ``results/ablation`` by default.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.compare import add_run_arguments, resolve_run
from benchmarks.environment_info import command_line
from benchmarks.protocol import compare
from benchmarks.report import write_outputs
from recenv import EnvConfig

SCENARIOS: dict[str, EnvConfig] = {
    "mixed (all on)": EnvConfig(preset="mixed"),
    "no exogenous drift": EnvConfig(preset="mixed", params={"exogenous_drift": False}),
    "no consumption drift": EnvConfig(preset="mixed", params={"consumption_drift": False}),
    "no regime shifts": EnvConfig(preset="mixed", params={"regime_shifts": False}),
    "no satiation": EnvConfig(preset="mixed", params={"satiation": False}),
    "no impression fatigue": EnvConfig(preset="mixed", params={"impression_fatigue": False}),
    "no clickbait": EnvConfig(preset="mixed", params={"clickbait": False}),
    "no patience": EnvConfig(preset="mixed", params={"patience": False}),
}
"""Scenario name → the config of its envs (the comparison sets the device)."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=None, help="default: all")
    args = parser.parse_args(argv)
    agents, seeds, budget = resolve_run(args, parser)
    scenarios = {name: SCENARIOS[name] for name in (args.scenarios or SCENARIOS)}
    out = args.out or Path("results/ablation-quick" if args.quick else "results/ablation")

    started = time.perf_counter()
    result = compare(agents, scenarios, seeds, budget, args.device, out=out, reference=args.reference,
                     rerun=args.rerun, backend=args.backend, workers=args.workers, address=args.address,
                     threads=args.torch_threads or 1)
    text = write_outputs(result, out, command_line("benchmarks.ablation", argv), time.perf_counter() - started,
                         title="Ablations on DriftingUser-v0 (preset mixed, one mechanism off at a time)",
                         shift_scenario="mixed (all on)", summary=True)
    print(text)
    print(f"wrote {out}/results.md, results.csv, differences.csv, per_seed.csv, results.json and the plots")


if __name__ == "__main__":
    main()
