"""The one command line: ``python -m benchmarks <command> [options]`` and the ``recenv`` console script.

Every command runs one job of the library (:mod:`benchmarks.protocol` and the measuring modules)
and writes its report into its ``--out`` folder (default ``results/<command>``, with ``--quick``
``results/<command>-quick``). The options several commands take are the fields of
:class:`benchmarks.options.SharedOptions`: one spelling, one default and one validation each.
``serve`` and ``load-test`` hand their arguments to :mod:`serving.command_line` and
:mod:`serving.load_test`, ``encoder`` to :mod:`recenv.offline.encoder_training`.

A user error (a bad option value, a plug-in agent that cannot be imported, a stored part that is
missing) ends in one line, ``<prog> <command>: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.options import OptionError, SharedOptions, field_help, free_cores

__all__ = ["COMMANDS", "FORWARDED", "main", "recenv_command"]

_SHARED_ARGUMENTS: dict[str, dict[str, Any]] = {
    "out": {"type": Path, "metavar": "FOLDER"},
    "quick": {"action": "store_true"},
    "torch_threads": {"type": int, "metavar": "N"},
    "presets": {"nargs": "+", "metavar": "PRESET"},
    "seeds": {"type": int, "nargs": "+", "metavar": "SEED"},
    "eval_users": {"type": int, "metavar": "N"},
    "backend": {},
    "workers": {"type": int, "metavar": "N"},
    "device": {},
    "agents": {"nargs": "+", "metavar": "AGENT"},
    "agent": {"action": "append", "metavar": "MODULE:CLASS"},
}
"""How each field of :class:`SharedOptions` is spelled on the command line (its help is its docstring)."""


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line summary, the shared options it takes, its own options and what it runs.

    ``run(args, options, command)`` gets the parsed arguments, the validated shared options and the
    command as it could be pasted into a shell; what it returns is the exit status when an int."""

    summary: str
    shared: tuple[str, ...]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, SharedOptions, str], Any]


def _shared_options(args: argparse.Namespace, names: Sequence[str]) -> SharedOptions:
    values = {name: getattr(args, name) for name in names}
    for name in ("presets", "seeds", "agents", "agent"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    if values.get("agent") is None:
        values.pop("agent", None)
    return SharedOptions(**{name: value for name, value in values.items() if value is not None})


def _set_threads(options: SharedOptions, threads: int | None = None) -> int:
    """Set this process's torch threads (``threads``, else the option, else the free cores) and say so."""
    from recenv.threads import choose_torch_threads

    count = threads if threads is not None else options.threads
    choice = choose_torch_threads(count)
    why = "--torch-threads" if options.torch_threads is not None else "the free cores: available minus the load average"
    print(f"torch threads: {choice.threads} ({why}; {choice.cores} cores available to this process"
          + ("" if choice.busy is None else f", load average {choice.busy:.1f}") + ")", flush=True)
    return choice.threads


def _wrote(out: Path, *names: str) -> None:
    print(f"wrote {', '.join(str(out / name) for name in names)}")


# ------------------------------------------------------------------ the comparison and the ablation


def _comparison_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks.protocol import DEFAULT_REFERENCE

    parser.add_argument("--reference", default=None, metavar="AGENT",
                        help=f"the agent the paired differences are taken against (default {DEFAULT_REFERENCE}, or "
                             "GreedySlate with slates, when it is among the agents)")
    parser.add_argument("--logged-users", type=int, default=None, metavar="N",
                        help="sessions logged for the models that learn from logs (default: the budget's)")
    parser.add_argument("--dqn-steps", type=int, default=None, metavar="STEPS", help="training user-steps of each DQN")
    parser.add_argument("--q-learning-steps", type=int, default=None, metavar="STEPS")
    parser.add_argument("--sb3-steps", type=int, default=None, metavar="STEPS")
    parser.add_argument("--budget", action="append", default=[], metavar="FIELD=STEPS",
                        help="any budget field, e.g. --budget recurrent_dqn=1000000 (repeatable)")
    parser.add_argument("--rerun", nargs="+", default=[], metavar="AGENT",
                        help="train and evaluate these agents again in the stored parts (after changing their code)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address for --backend ray ('auto', or 'ray://host:10001'; default: a local "
                             "Ray instance)")


def _budget(args: argparse.Namespace, options: SharedOptions) -> Any:
    from benchmarks.agent_registry import Budget
    from benchmarks.options import check_at_least_one
    from benchmarks.protocol import FULL, QUICK

    budget = QUICK if options.quick else FULL
    overrides = {"eval_users": options.eval_users, "logged_users": args.logged_users, "dqn": args.dqn_steps,
                 "q_learning": args.q_learning_steps, "sb3_dqn": args.sb3_steps}
    check_at_least_one("--logged-users", args.logged_users)
    for option, value in (("--dqn-steps", args.dqn_steps), ("--q-learning-steps", args.q_learning_steps),
                          ("--sb3-steps", args.sb3_steps)):
        if value is not None and value < 0:
            raise OptionError(option, f"{value}: training user-steps are at least 0")
    budget = replace(budget, **{k: v for k, v in overrides.items() if v is not None})
    fields = sorted(f.name for f in dataclasses.fields(Budget))
    for item in args.budget:
        name, _, value = item.partition("=")
        if name not in fields or not value.isdigit():
            raise OptionError("--budget", f"{item}: write FIELD=STEPS with FIELD one of {', '.join(fields)}")
        budget = replace(budget, **{name: int(value)})
    return budget


def _agents(options: SharedOptions, registry: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.agent_registry import agent_from_import_path

    unknown = [name for name in options.agents or () if name not in registry]
    if unknown:
        raise OptionError("--agents", f"{' '.join(unknown)}: allowed: {', '.join(registry)}")
    agents = {name: registry[name] for name in (options.agents or registry)}
    for path in options.agent:
        try:
            agents[path.rpartition(":")[2]] = agent_from_import_path(path)
        except ValueError as error:
            cause = error.__cause__ if error.__cause__ is not None else error
            raise OptionError("--agent", f"{path}: {str(cause)[:1].lower()}{str(cause)[1:]}") from None
    return agents


def _run_comparison(args: argparse.Namespace, options: SharedOptions, command: str, scenarios: Any,
                    registry: dict[str, Any], reference: str, farsighted_reference: str, out: Path,
                    **report: Any) -> str:
    """The comparison's job, shared by ``compare`` and ``ablation``: agents, budget, seeds and run
    settings from the options; the cells; the report in ``out``."""
    from benchmarks.protocol import DEFAULT_SEEDS, RunSettings, compare
    from benchmarks.report import write_outputs

    agents = _agents(options, registry)
    if args.reference is not None and args.reference not in agents:
        raise OptionError("--reference", f"{args.reference}: not among the agents {', '.join(agents)}")
    reference = args.reference or (reference if reference in agents else None)
    budget = _budget(args, options)
    seeds = list(options.seeds or ([0] if options.quick else DEFAULT_SEEDS))
    cell_threads = options.torch_threads or 1  # a cell's numbers depend on it: never the machine's load
    _set_threads(options, cell_threads)
    workers = options.workers or max(1, free_cores() // cell_threads)
    print(f"each cell (scenario x seed x agent) runs on {cell_threads} torch thread{'s' if cell_threads > 1 else ''}",
          flush=True)
    settings = RunSettings(device=options.device, backend=options.backend, workers=workers, address=args.address,
                           threads=cell_threads)
    started = time.perf_counter()
    result = compare(agents, scenarios, seeds, budget, settings, out=out, reference=reference,
                     farsighted_reference=farsighted_reference, rerun=args.rerun)
    text = write_outputs(result, out, command, time.perf_counter() - started, **report)
    print(text)
    print(f"wrote {out}/results.md, results.csv, differences.csv, per_seed.csv, results.json and the plots")
    return text


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    from recenv.config import SLATE_HISTORIES

    _comparison_arguments(parser)
    parser.add_argument("--slate-size", type=int, default=1, metavar="K",
                        help="items shown per step (default 1). K > 1: the presets with slates of K items "
                             "(scenarios '<preset>-slateK') and the slate agents")
    parser.add_argument("--slate-history", default=SLATE_HISTORIES[0],
                        help=f"with --slate-size K > 1: what the history records of a slate, one of "
                             f"{', '.join(SLATE_HISTORIES)} (scenarios '<preset>-slateK-shown')")
    parser.add_argument("--encoder", type=Path, default=None, metavar="PATH",
                        help="encoder weights the scenarios observe through instead of their matched encoder "
                             "(refused if made for other dynamics or another history format)")


def _compare(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.agent_registry import REFERENCE_AGENTS, SLATE_AGENTS
    from benchmarks.protocol import (
        DEFAULT_REFERENCE,
        FARSIGHTED_REFERENCE,
        SLATE_FARSIGHTED_REFERENCE,
        SLATE_REFERENCE,
        slate_scenarios,
    )
    from recenv import EnvConfig
    from recenv.config import SLATE_HISTORIES
    from recenv.presets import SYNTHETIC_PRESETS

    if args.slate_size < 1:
        raise OptionError("--slate-size", f"{args.slate_size}: must be at least 1")
    if args.slate_history not in SLATE_HISTORIES:
        raise OptionError("--slate-history", f"{args.slate_history}: allowed: {', '.join(SLATE_HISTORIES)}")
    slates = args.slate_size > 1
    if not slates and args.slate_history != SLATE_HISTORIES[0]:
        raise OptionError("--slate-history", f"{args.slate_history}: needs --slate-size K > 1")
    presets = list(options.presets or (["mixed"] if options.quick else SYNTHETIC_PRESETS))
    scenarios: Any = slate_scenarios(presets, args.slate_size, args.slate_history) if slates else presets
    if args.encoder is not None:
        if not args.encoder.exists():
            raise OptionError("--encoder", f"{args.encoder}: no such file")
        named = scenarios if isinstance(scenarios, dict) else {name: EnvConfig(preset=name) for name in scenarios}
        scenarios = {name: config.replace(encoder=str(args.encoder)) for name, config in named.items()}
    suffix = (f"-slate{args.slate_size}" + ("" if args.slate_history == SLATE_HISTORIES[0] else f"-{args.slate_history}")
              if slates else "")
    out = options.out or Path(("results/compare-quick" if options.quick else "results/compare") + suffix)
    if slates:
        return _run_comparison(args, options, command, scenarios, SLATE_AGENTS, SLATE_REFERENCE,
                               SLATE_FARSIGHTED_REFERENCE, out)
    return _run_comparison(args, options, command, scenarios, REFERENCE_AGENTS, DEFAULT_REFERENCE,
                           FARSIGHTED_REFERENCE, out)


def _ablation_arguments(parser: argparse.ArgumentParser) -> None:
    _comparison_arguments(parser)
    parser.add_argument("--scenarios", nargs="+", default=None, metavar="SCENARIO",
                        help="ablation scenarios to run (default: all), e.g. 'no clickbait'")


def _ablation(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.ablation import SCENARIOS
    from benchmarks.agent_registry import REFERENCE_AGENTS
    from benchmarks.protocol import DEFAULT_REFERENCE, FARSIGHTED_REFERENCE

    unknown = [name for name in args.scenarios or () if name not in SCENARIOS]
    if unknown:
        raise OptionError("--scenarios", f"{', '.join(map(repr, unknown))}: allowed: {', '.join(map(repr, SCENARIOS))}")
    scenarios = {name: SCENARIOS[name] for name in (args.scenarios or SCENARIOS)}
    return _run_comparison(args, options, command, scenarios, REFERENCE_AGENTS, DEFAULT_REFERENCE,
                           FARSIGHTED_REFERENCE, options.out_or("ablation"),
                           title="Ablations on DriftingUser-v0 (preset mixed, one mechanism off at a time)",
                           shift_scenario="mixed (all on)", summary=True)


# ------------------------------------------------------------------ pairs and schedules of a stored comparison


def _paired_differences_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pairs", nargs="*", metavar="A:B",
                        help="agent A minus agent B; a side AGENT@FOLDER/SCENARIO is read from another run")
    parser.add_argument("--comparison", type=Path, default=Path("results/compare"), metavar="FOLDER",
                        help="the stored comparison's output folder (default results/compare)")
    parser.add_argument("--scenario", default="mixed", help="preset or scenario name (default mixed)")


def _make_part_command(prog: str, comparison: Path, scenario: str, seed: int) -> str:
    from benchmarks.ablation import SCENARIOS

    if scenario in SCENARIOS:
        return f"{prog} ablation --scenarios '{scenario}' --seeds {seed} --out {comparison}"
    slate = re.fullmatch(r"(.+)-slate(\d+)(?:-(\w+))?", scenario)
    if slate:
        history = f" --slate-history {slate[3]}" if slate[3] else ""
        return (f"{prog} compare --presets {slate[1]} --slate-size {slate[2]}{history} --seeds {seed} "
                f"--out {comparison}")
    return f"{prog} compare --presets {scenario} --seeds {seed} --out {comparison}"


def _paired_differences(args: argparse.Namespace, options: SharedOptions, command: str) -> list[str]:
    from benchmarks.paired_differences import pair_lines
    from benchmarks.protocol import DEFAULT_SEEDS, MissingPart

    if not args.pairs:
        raise OptionError("A:B", "missing: give at least one pair, e.g. DQN-embedding:GRU4Rec")
    pairs = [tuple(pair.split(":")) for pair in args.pairs]
    bad = [text for text, pair in zip(args.pairs, pairs) if len(pair) != 2 or not all(pair)]
    if bad:
        raise OptionError("A:B", f"{' '.join(bad)}: pairs are written A:B, e.g. DQN-embedding:GRU4Rec")
    try:
        lines = pair_lines(pairs, args.comparison, args.scenario, list(options.seeds or DEFAULT_SEEDS))
    except MissingPart as missing:
        prog = command.split(" paired-differences")[0]
        raise OptionError("--comparison", f"{args.comparison}: part ({missing.scenario!r}, seed {missing.seed}) is "
                          f"missing from {missing.out}/parts; make it with: "
                          f"{_make_part_command(prog, missing.out, missing.scenario, missing.seed)} "
                          "(with the budget options of the run that made the other parts)") from None
    except ValueError as error:
        raise OptionError("A:B", str(error)) from None
    for line in lines:
        print(line)
    return lines


def _cell_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--comparison", type=Path, required=True, metavar="FOLDER",
                        help="a comparison's output folder (with parts/)")
    parser.add_argument("--worker-counts", type=int, nargs="+", default=[1, 2, 8, 64], metavar="W",
                        help="numbers of workers to project the wall time on (default 1 2 8 64)")


def _cell_schedule(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.cell_schedule import describe
    from benchmarks.options import check_at_least_one

    for count in args.worker_counts:
        check_at_least_one("--worker-counts", count)
    try:
        text = describe(args.comparison, args.worker_counts)
    except FileNotFoundError as error:
        raise OptionError("--comparison", f"{args.comparison}: {error}") from None
    print(text)
    return text


# ------------------------------------------------------------------ measurements


def _throughput_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks.learner_timing import LEARNERS
    from benchmarks.throughput import SLATE_USERS

    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                        help="numbers of users N (default 1 64 1024 8192; quick: up to 1024)")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="devices of the native vector env (default: cpu, and cuda when present)")
    parser.add_argument("--obs-modes", nargs="+", default=["encoded", "history"], help="observation modes to measure")
    parser.add_argument("--slate-sizes", type=int, nargs="*", default=[10], metavar="K",
                        help="slate sizes k timed at --slate-users users (default 10; none: no slate rows)")
    parser.add_argument("--slate-users", type=int, default=SLATE_USERS, help=f"N of the slate rows (default {SLATE_USERS})")
    parser.add_argument("--sync-max", type=int, default=1024, help="largest N for SyncVectorEnv (it builds N envs)")
    parser.add_argument("--seconds", type=float, default=None, help="minimum timed seconds per configuration")
    parser.add_argument("--sb3-ppo-users", type=int, default=16, help="users N that SB3's PPO trains on")
    parser.add_argument("--sb3-ppo-steps", type=int, default=None,
                        help="training user-steps of SB3's PPO per feed (default 16384; quick 4096; 0: skip)")
    parser.add_argument("--learners", nargs="*", default=list(LEARNERS),
                        help=f"learners to time as the comparison trains them, of {', '.join(LEARNERS)} (default: all)")
    parser.add_argument("--learner-steps", type=int, default=None,
                        help="training user-steps per learner and thread count (default 100000; quick 10000; 0: skip)")
    parser.add_argument("--learner-threads", type=int, nargs="+", default=[1, 2], metavar="N",
                        help="torch thread counts the learners are timed on (default 1 2)")


def _check_learners(args: argparse.Namespace) -> None:
    from benchmarks.learner_timing import LEARNERS
    from benchmarks.options import check_at_least_one

    unknown = [name for name in args.learners if name not in LEARNERS]
    if unknown:
        raise OptionError("--learners", f"{' '.join(unknown)}: allowed: {', '.join(LEARNERS)}")
    for count in args.learner_threads:
        check_at_least_one("--learner-threads", count)


def _throughput(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.throughput import write_report

    _check_learners(args)
    _set_threads(options)
    out = options.out_or("throughput")
    text = write_report(out, command, quick=options.quick, sizes=args.sizes, devices=args.devices,
                        obs_modes=args.obs_modes, slate_sizes=args.slate_sizes, slate_users=args.slate_users,
                        sync_max=args.sync_max, seconds=args.seconds, sb3_ppo_users=args.sb3_ppo_users,
                        sb3_ppo_steps=args.sb3_ppo_steps, learners=args.learners, learner_steps=args.learner_steps,
                        learner_threads=args.learner_threads)
    print(text)
    _wrote(out, "throughput.md", "throughput.csv", "throughput.json")
    return text


def _learner_arithmetic_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks.learner_timing import LEARNERS

    parser.add_argument("--learners", nargs="+", default=["DQN-embedding"],
                        help=f"learners of {', '.join(LEARNERS)} (default DQN-embedding)")
    parser.add_argument("--steps", type=int, default=20_000, help="S: the runs train S and 2·S user-steps (default 20000)")
    parser.add_argument("--learner-threads", type=int, nargs="+", default=[1, 2], metavar="N",
                        help="torch thread counts the learners are measured on (default 1 2)")


def _learner_arithmetic(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.learner_arithmetic import write_report
    from benchmarks.options import check_at_least_one

    _check_learners(args)
    check_at_least_one("--steps", args.steps)
    _set_threads(options)
    out = options.out_or("learner-arithmetic")
    text = write_report(out, command, args.learners, args.steps, args.learner_threads)
    print(text)
    _wrote(out, "learner_arithmetic.md", "learner_arithmetic.json")
    return text


def _scaling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, nargs="+", default=None, metavar="N",
                        help="numbers of users N (must include 1)")
    parser.add_argument("--items", type=int, nargs="+", default=None, metavar="M", help="catalog sizes")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per configuration")
    parser.add_argument("--array-type", default="numpy",
                        help="outputs as numpy arrays (numpy, the default) or as tensors on the device (torch)")


def _scaling(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.scaling import write_report

    if args.array_type not in ("numpy", "torch"):
        raise OptionError("--array-type", f"{args.array_type}: allowed: numpy, torch")
    threads = _set_threads(options)
    out = options.out_or("scaling")
    text = write_report(out, command, quick=options.quick, users=args.users, items=args.items, seconds=args.seconds,
                        device=options.device, array_type=args.array_type, threads=threads)
    print(text)
    _wrote(out, "scaling.md", "scaling.csv", "scaling.json", "scaling.png")
    return text


def _side_by_side_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks.side_by_side import REPOSITORY

    parser.add_argument("--baseline", required=True, help="a checkout of recenv, or a git revision of this repository")
    parser.add_argument("--candidate", default=str(REPOSITORY), help="the same (default: this checkout, as it is)")
    parser.add_argument("--users", type=int, nargs="+", default=[1024], metavar="N",
                        help="numbers of users N (default 1024)")
    parser.add_argument("--obs-modes", nargs="+", default=["encoded", "history"], help="observation modes")
    parser.add_argument("--lean", action="store_true", help="also time ground_truth=False (where a version has it)")
    parser.add_argument("--rounds", type=int, default=5, help="timings of each configuration per version (default 5)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per timing (default 3)")


def _side_by_side(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.options import check_at_least_one
    from benchmarks.side_by_side import write_report

    check_at_least_one("--rounds", args.rounds)
    threads = _set_threads(options)
    out = options.out_or("side-by-side")
    text = write_report(out, command, args.baseline, args.candidate, args.users, args.obs_modes, args.lean,
                        args.rounds, args.seconds, threads)
    print(text)
    _wrote(out, "side_by_side.md", "side_by_side.csv", "side_by_side.json")
    return text


def _knowledge_gap_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _knowledge_gap(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.knowledge_gap import write_report

    _set_threads(options)
    out = options.out_or("knowledge-gap")
    text = write_report(out, command, options.presets or ("mixed",), options.eval_users or 1000)
    print(text)
    _wrote(out, "knowledge_gap.md", "knowledge_gap.json")
    return text


def _realism_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks.realism import PACKAGE_PARAMS

    parser.add_argument("--data", default=None, help="MovieLens-100K folder (GroupLens or RecBole layout); default $RECENV_ML100K")
    parser.add_argument("--write-params", action="store_true", help=f"also write the fitted parameters to {PACKAGE_PARAMS}")
    parser.add_argument("--seed", type=int, default=0, help="seed of every simulation (common random numbers)")
    parser.add_argument("--replicas", type=int, default=1, help="simulated users per real user")
    parser.add_argument("--max-evaluations", type=int, default=None, help="Nelder–Mead simulations per round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of (prior, drift) fitting")
    parser.add_argument("--window", type=int, default=10, help="interactions per window of the drift curve")
    parser.add_argument("--max-lag", type=int, default=10, help="largest lag of the drift curve, in windows")


def _realism(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.realism import fit_config, run, write_outputs

    _set_threads(options)
    config = fit_config(options.quick, args.seed, args.replicas, args.max_evaluations, args.rounds, args.window,
                        args.max_lag)
    out = options.out_or("realism")
    comparison, facts = run(args.data, config, progress=True)
    text = write_outputs(comparison, facts, config, out, command, args.write_params)
    print(text)
    _wrote(out, "realism.md", "realism.json", "drift_curves.csv", "ml100k_params.json", "drift_curve.png",
           "statistics.png")
    return text


def _fingerprints_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compare", type=Path, default=None, metavar="FILE",
                        help="fingerprints to compare with (a fingerprints.json); exit status 1 on a change")
    parser.add_argument("--data", default=None, help="MovieLens-100K folder: add ml100k rollouts")


def _fingerprints(args: argparse.Namespace, options: SharedOptions, command: str) -> int:
    from benchmarks.fixed_seed_fingerprints import check

    if args.compare is not None and not args.compare.is_file():
        raise OptionError("--compare", f"{args.compare}: no such file")
    out = options.out_or("fingerprints")
    status = check(out / "fingerprints.json", args.compare, args.data)
    _wrote(out, "fingerprints.json")
    return status


def _clickbait_diagnostic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dqn-steps", type=int, default=None, metavar="STEPS",
                        help="DQN training user-steps (default 500000; quick 20000; 0: skip)")


def _clickbait_diagnostic(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.clickbait_diagnostic import write_report

    _set_threads(options)
    out = options.out_or("clickbait-diagnostic")
    text = write_report(out, command, options.presets or ("none", "mixed"), options.quick, options.eval_users,
                        args.dqn_steps, options.device)
    print(text)
    _wrote(out, "diagnostic.md", "diagnostic.json")
    return text


def _encoder_logs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logged-users", type=int, default=6000, metavar="N",
                        help="logged sessions per encoder (default 6000)")
    parser.add_argument("--seed", type=int, default=0)


def _encoder_logs(args: argparse.Namespace, options: SharedOptions, command: str) -> Path:
    from benchmarks.encoder_logs import write_report
    from benchmarks.options import check_at_least_one

    check_at_least_one("--logged-users", args.logged_users)
    _set_threads(options)
    path = write_report(options.out_or("encoder-logs"), command, args.logged_users, args.seed)
    print(f"wrote {path}")
    return path


def _patience_probe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=500, help="users shown random items (default 500)")
    parser.add_argument("--steps", type=int, default=40, help="steps per user (default 40)")
    parser.add_argument("--seed", type=int, default=123)


def _patience_probe(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.options import check_at_least_one
    from benchmarks.patience_probe import write_report

    check_at_least_one("--users", args.users)
    check_at_least_one("--steps", args.steps)
    _set_threads(options)
    out = options.out_or("patience-probe")
    text = write_report(out, command, args.users, args.steps, args.seed)
    print(text)
    _wrote(out, "patience_probe.md", "patience_probe.json")
    return text


def _slate_history_encoders_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slate-size", type=int, default=10, metavar="K")
    parser.add_argument("--seed", type=int, default=1_000, help="the held-out users' seed (training logs use 0 and 1)")
    parser.add_argument("--shown-encoder", type=Path, default=None, metavar="PATH",
                        help="weights for the whole-slate histories (default: the matched encoder, prepared first)")


def _slate_history_encoders(args: argparse.Namespace, options: SharedOptions, command: str) -> str:
    from benchmarks.slate_history_encoders import write_report

    if args.slate_size < 2:
        raise OptionError("--slate-size", f"{args.slate_size}: slates here have at least 2 items")
    if args.shown_encoder is not None and not args.shown_encoder.is_file():
        raise OptionError("--shown-encoder", f"{args.shown_encoder}: no such file")
    _set_threads(options)
    out = options.out_or("slate-history-encoders")
    text = write_report(out, command, options.eval_users or 2000, args.slate_size, args.seed, args.shown_encoder)
    print(text)
    print(f"wrote into {out}")
    return text


_COMPARISON = ("out", "quick", "torch_threads", "seeds", "eval_users", "backend", "workers", "device", "agents", "agent")

COMMANDS: dict[str, Command] = {
    "compare": Command("train and evaluate the agents on the same held-out users, over seeds, for each preset",
                       ("presets", *_COMPARISON), _compare_arguments, _compare),
    "ablation": Command("the comparison on preset mixed with each mechanism switched off in turn",
                        _COMPARISON, _ablation_arguments, _ablation),
    "throughput": Command("user-steps per second of the envs and of the learners",
                          ("out", "quick", "torch_threads"), _throughput_arguments, _throughput),
    "scaling": Command("user-steps per second and memory against the number of users and the catalog size",
                       ("out", "quick", "torch_threads", "device"), _scaling_arguments, _scaling),
    "side-by-side": Command("two versions of recenv timed side by side, alternating",
                            ("out", "torch_threads"), _side_by_side_arguments, _side_by_side),
    "knowledge-gap": Command("where the gap to the far-sighted reference lies: knowing the user or the items",
                             ("out", "torch_threads", "presets", "eval_users"), _knowledge_gap_arguments,
                             _knowledge_gap),
    "realism": Command("MovieLens-100K users against simulated users, default and fitted",
                       ("out", "quick", "torch_threads"), _realism_arguments, _realism),
    "paired-differences": Command("paired differences between any two agents of a stored comparison",
                                  ("seeds",), _paired_differences_arguments, _paired_differences),
    "fingerprints": Command("fingerprints of fixed-seed runs, to show a refactor kept every number",
                            ("out",), _fingerprints_arguments, _fingerprints),
    "cell-schedule": Command("how long a stored comparison takes on W workers",
                             (), _cell_schedule_arguments, _cell_schedule),
    "clickbait-diagnostic": Command("why greedy click prediction loses sessions: clickbait and the winner's curse",
                                    ("out", "quick", "torch_threads", "presets", "eval_users", "device"),
                                    _clickbait_diagnostic_arguments, _clickbait_diagnostic),
    "encoder-logs": Command("what the logs do to the encoder: privileged, deployable, inverse-propensity weighted",
                            ("out", "torch_threads"), _encoder_logs_arguments, _encoder_logs),
    "learner-arithmetic": Command("the matrix products a learner's training costs, and the ceiling they set",
                                  ("out", "torch_threads"), _learner_arithmetic_arguments, _learner_arithmetic),
    "patience-probe": Command("how much of a user's remaining patience the encoded observation reveals",
                              ("out", "torch_threads"), _patience_probe_arguments, _patience_probe),
    "slate-history-encoders": Command("the one-item encoder against the encoder of whole slates, on held-out screens",
                                      ("out", "torch_threads", "eval_users"), _slate_history_encoders_arguments,
                                      _slate_history_encoders),
}
"""Every command of the benchmarks, by name."""


def _serve(argv: list[str], prog: str) -> Any:
    from serving.command_line import main as serve

    return serve(argv, prog=prog)


def _load_test(argv: list[str], prog: str) -> Any:
    from serving.load_test import main as load_test

    return load_test(argv, prog=prog)


def _encoder(argv: list[str], prog: str) -> Any:
    from recenv.offline.encoder_training import main as encoder

    return encoder(argv, prog=prog)


FORWARDED: dict[str, tuple[str, Callable[[list[str], str], Any]]] = {
    "serve": ("serve a trained agent over HTTP (serving.command_line)", _serve),
    "load-test": ("measure a running or fresh service (serving.load_test)", _load_test),
    "encoder": ("train the state encoder: encoder train ..., encoder ship ... (recenv.offline.encoder_training)",
                _encoder),
}
"""Commands whose arguments go, as they are, to another package's command line."""


class _Parser(argparse.ArgumentParser):
    """A parser whose errors are one line (the usage is one ``--help`` away), exit status 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str = "python -m benchmarks") -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of every command, and each command's own parser by name."""
    parser = _Parser(prog=prog, description="recenv's benchmarks, measurements and tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    helps = field_help()
    parsers = {}
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.summary, description=command.summary[:1].upper()
                                  + command.summary[1:] + ".")
        for field in command.shared:
            sub.add_argument("--" + field.replace("_", "-"), dest=field, default=None, help=helps.get(field),
                             **_SHARED_ARGUMENTS[field])
        command.add_arguments(sub)
        parsers[name] = sub
    for name, (summary, _) in FORWARDED.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser, parsers


def _split_pairs(argv: list[str]) -> list[str]:
    """paired-differences: pairs ``A:B`` may come anywhere, also after ``--seeds`` (whose list
    would swallow them): they go last, after ``--``."""
    pairs = [token for token in argv[1:] if ":" in token and not token.startswith("-")]
    rest = [token for token in argv[1:] if token not in pairs]
    return [argv[0], *rest, *(["--", *pairs] if pairs else [])]


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks") -> Any:
    """Run one command: ``argv`` is ``[COMMAND, options...]`` (default: this process's arguments).
    Returns what the command returns (its report's text; the exit status for ``fingerprints``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in FORWARDED:
        return FORWARDED[argv[0]][1](argv[1:], f"{prog} {argv[0]}")
    if argv and argv[0] == "paired-differences":
        argv = _split_pairs(argv)
    parser, parsers = build_parser(prog)
    args = parser.parse_args(argv)
    command = COMMANDS[args.command]
    subparser = parsers[args.command]
    try:
        options = _shared_options(args, command.shared)
        text = " ".join([prog, *(_quote(token) for token in argv)])
        return command.run(args, options, text)
    except OptionError as error:
        subparser.error(str(error))


def _quote(token: str) -> str:
    import shlex

    return shlex.quote(token)


def exit_status(result: Any) -> int:
    """The process's exit status for what a command returned: an int as it is, anything else 0."""
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def recenv_command() -> None:
    """The ``recenv`` console script: ``recenv <command> [options]``."""
    raise SystemExit(exit_status(main(prog="recenv")))
