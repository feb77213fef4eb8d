"""The agent comparison: train the learning agents on training users, evaluate every agent on the
same held-out users, over several training seeds, for each preset.

    python -m benchmarks.compare --quick               # a few minutes on 2 CPU cores (preset mixed)
    python -m benchmarks.compare                       # every preset, 5 seeds (hours: run it in parts)
    python -m benchmarks.compare --presets mixed --seeds 0 1   # one part of it; rerun to resume
    python -m benchmarks.compare --agent my_pkg.my_module:MyAgent
    python -m benchmarks.compare --quick --slate-size 10   # slates of 10 items: scenario mixed-slate10
    python -m benchmarks.compare --quick --slate-size 10 --slate-history shown   # ... histories of whole slates

This module is the command line. The protocol (and its resumable parts) is in
:mod:`benchmarks.protocol`, the agents in :mod:`benchmarks.agent_registry`, the metrics in
:mod:`benchmarks.metrics`, the statistics in :mod:`benchmarks.statistics`, and the outputs
(``results.csv``, ``differences.csv``, ``per_seed.csv``, ``results.json``, ``results.md`` and the
plots, in ``--out``) in :mod:`benchmarks.report`.

``--slate-size k`` (k > 1) runs the presets with a slate of k items per step
(:func:`benchmarks.protocol.slate_scenarios`: scenarios ``<preset>-slate<k>``) and the slate
agents (:data:`benchmarks.agent_registry.SLATE_AGENTS`, among which ``--agents`` chooses; ``--agent``
adds your own, which must then show slates), compared with ``GreedySlate`` unless ``--reference``
says otherwise. ``--slate-size 1`` (the default) is the one-item comparison. ``--slate-history
shown`` makes the history record whole slates (scenarios ``<preset>-slate<k>-shown``; their encoder
is trained on first use on logs of slates, which takes some minutes once). ``--encoder PATH`` makes
every scenario observe through that weights file instead of its matched encoder (refused if it was
made for other dynamics or another history format).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks.agent_registry import (
    REFERENCE_AGENTS,
    SLATE_AGENTS,
    AgentFactory,
    Budget,
    agent_from_import_path,
)
from benchmarks.backends import BACKENDS
from benchmarks.environment_info import command_line
from benchmarks.protocol import (
    DEFAULT_REFERENCE,
    DEFAULT_SEEDS,
    FARSIGHTED_REFERENCE,
    FULL,
    QUICK,
    SLATE_FARSIGHTED_REFERENCE,
    SLATE_REFERENCE,
    compare,
    slate_scenarios,
)
from benchmarks.report import write_outputs
from recenv.config import SLATE_HISTORIES, EnvConfig
from recenv.presets import SYNTHETIC_PRESETS
from recenv.threads import choose_torch_threads


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every comparison script shares (agents, seeds, budgets, device, output)."""
    parser.add_argument("--quick", action="store_true", help="one seed, small budgets (a few minutes)")
    parser.add_argument("--agents", nargs="+", default=None, help=f"subset of {list(REFERENCE_AGENTS)}")
    parser.add_argument("--agent", action="append", default=[], metavar="MODULE:CLASS",
                        help="add your own agent (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="training seeds (default 0 1 2 3 4; quick: 0); parts already in --out are reused")
    parser.add_argument("--reference", default=None,
                        help=f"the agent the paired differences are taken against (default {DEFAULT_REFERENCE}, "
                             "when it is among the agents)")
    parser.add_argument("--eval-users", type=int, default=None, help="held-out users per seed")
    parser.add_argument("--logged-users", type=int, default=None, help="sessions logged for the popularity ranking")
    parser.add_argument("--dqn-steps", type=int, default=None, help="training user-steps of each DQN")
    parser.add_argument("--q-learning-steps", type=int, default=None)
    parser.add_argument("--sb3-steps", type=int, default=None)
    parser.add_argument("--budget", action="append", default=[], metavar="FIELD=STEPS",
                        help="any budget field, e.g. --budget recurrent_dqn=1000000 (repeatable)")
    parser.add_argument("--rerun", nargs="+", default=[], metavar="AGENT",
                        help="train and evaluate these agents again in the stored parts (after changing their code)")
    parser.add_argument("--device", default="cpu", help="device of envs and DQN (cpu, cuda, auto)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads of every cell (default 1: a pool then runs one cell per core); the "
                             "results of some learners (PPO) depend on it, not on the backend. 1 per job when "
                             "several jobs run at once")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="where the cells (scenario x seed x agent) run: sequential, a pool of local processes, "
                             "or Ray tasks (default auto: a pool over the available cores when there is more than one)")
    parser.add_argument("--workers", type=int, default=None,
                        help="pool processes, or CPUs of a local Ray instance (default: the available cores)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address for --backend ray ('auto', or 'ray://host:10001'; default: a local "
                             "Ray instance)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")


def resolve_run(args: argparse.Namespace, parser: argparse.ArgumentParser,
                registry: dict[str, AgentFactory] = REFERENCE_AGENTS,
                default_reference: str = DEFAULT_REFERENCE) -> tuple[dict[str, AgentFactory], list[int], Budget]:
    """Agents (``--agents`` chooses among ``registry``), training seeds and budget that the shared
    options ask for; ``args.reference`` defaults to ``default_reference`` when it is among the agents."""
    if args.torch_threads is not None and args.torch_threads < 1:
        parser.error("--torch-threads must be at least 1")
    print(choose_torch_threads(args.torch_threads).describe(), flush=True)
    cell_threads = args.torch_threads or 1
    print(f"each cell (scenario x seed x agent) runs on {cell_threads} torch thread{'s' if cell_threads > 1 else ''}",
          flush=True)
    budget = QUICK if args.quick else FULL
    overrides = {"eval_users": args.eval_users, "logged_users": args.logged_users, "dqn": args.dqn_steps,
                 "q_learning": args.q_learning_steps, "sb3_dqn": args.sb3_steps}
    budget = replace(budget, **{k: v for k, v in overrides.items() if v is not None})
    fields = {f.name for f in dataclasses.fields(Budget)}
    for item in args.budget:
        name, _, value = item.partition("=")
        if name not in fields or not value.isdigit():
            parser.error(f"--budget takes FIELD=STEPS with FIELD one of {sorted(fields)}, got {item!r}")
        budget = replace(budget, **{name: int(value)})
    seeds = args.seeds or ([0] if args.quick else list(DEFAULT_SEEDS))
    unknown = sorted(set(args.agents or []) - set(registry))
    if unknown:
        parser.error(f"unknown agent(s) {unknown}; known: {list(registry)}")
    agents = {name: registry[name] for name in (args.agents or registry)}
    for path in args.agent:
        agents[path.rpartition(":")[2]] = agent_from_import_path(path)
    if args.reference is not None and args.reference not in agents:
        parser.error(f"--reference {args.reference!r} is not among the agents {list(agents)}")
    if args.reference is None:
        args.reference = default_reference if default_reference in agents else None
    return agents, seeds, budget


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--presets", nargs="+", choices=tuple(SYNTHETIC_PRESETS), default=None,
                        help="default: all (quick: mixed)")
    parser.add_argument("--slate-size", type=int, default=1, metavar="K",
                        help=f"items shown per step (default 1). K > 1: the presets with slates of K items "
                             f"(scenarios '<preset>-slateK') and the slate agents {list(SLATE_AGENTS)} "
                             f"(--agents chooses among them; default reference {SLATE_REFERENCE})")
    parser.add_argument("--slate-history", choices=SLATE_HISTORIES, default=SLATE_HISTORIES[0],
                        help="with --slate-size K > 1: what the history records of a slate, the chosen item "
                             "(default) or the whole slate shown (scenarios '<preset>-slateK-shown')")
    parser.add_argument("--encoder", type=Path, default=None, metavar="PATH",
                        help="encoder weights the scenarios observe through instead of their matched encoder "
                             "(refused if made for other dynamics or another history format)")
    args = parser.parse_args(argv)
    if args.slate_size < 1:
        parser.error(f"--slate-size must be at least 1, got {args.slate_size}")
    slates = args.slate_size > 1
    if not slates and args.slate_history != SLATE_HISTORIES[0]:
        parser.error(f"--slate-history {args.slate_history} needs --slate-size K > 1")
    agents, seeds, budget = resolve_run(args, parser, *((SLATE_AGENTS, SLATE_REFERENCE) if slates else ()))
    presets = args.presets or (["mixed"] if args.quick else list(SYNTHETIC_PRESETS))
    scenarios = slate_scenarios(presets, args.slate_size, args.slate_history) if slates else presets
    if args.encoder is not None:
        if not args.encoder.exists():
            parser.error(f"--encoder {args.encoder}: no such file")
        named = scenarios if isinstance(scenarios, dict) else {name: EnvConfig(preset=name) for name in scenarios}
        scenarios = {name: config.replace(encoder=str(args.encoder)) for name, config in named.items()}
    suffix = (f"-slate{args.slate_size}" + ("" if args.slate_history == SLATE_HISTORIES[0] else f"-{args.slate_history}")
              if slates else "")
    out = args.out or Path(("results/compare-quick" if args.quick else "results/compare") + suffix)

    started = time.perf_counter()
    result = compare(agents, scenarios, seeds, budget, args.device, out=out, reference=args.reference,
                     rerun=args.rerun, backend=args.backend, workers=args.workers, address=args.address,
                     threads=args.torch_threads or 1,
                     farsighted_reference=SLATE_FARSIGHTED_REFERENCE if slates else FARSIGHTED_REFERENCE)
    text = write_outputs(result, out, command_line("benchmarks.compare", argv), time.perf_counter() - started)
    print(text)
    print(f"wrote {out}/results.md, results.csv, differences.csv, per_seed.csv, results.json and the plots")


if __name__ == "__main__":
    main()
