"""Paired differences between any two agents of a stored comparison, from its parts.

    python -m benchmarks.paired_differences --out results/compare --preset mixed DQN-embedding:GRU4Rec
    python -m benchmarks.paired_differences \
        GreedySlate@results/compare-slate10-shown/mixed-slate10-shown:GreedySlate@results/compare-slate10/mixed-slate10

The comparison's tables pair every agent with one reference (and the far-sighted one); this reads
the sessions its parts stored (:mod:`benchmarks.protocol`) and pairs any ``A:B`` on the same users
and training seeds, with the same two-way bootstrap (:func:`benchmarks.statistics.paired_difference`).

A side written ``AGENT@OUT/SCENARIO`` is read from another run's folder and scenario: two
scenarios that simulate the same users the same way and differ only in what the agents see (e.g.
``slate_history``, which changes nothing in the simulation) are evaluated on the same held-out
users with common random numbers, so their sessions pair per user too. The pair is refused when
the two sides' sessions do not have the same count per seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.protocol import DEFAULT_SEEDS, load_sessions
from benchmarks.statistics import paired_difference, verdict


def main(argv: Sequence[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="*", metavar="A:B", help="agent A minus agent B")
    parser.add_argument("--out", type=Path, default=Path("results/compare"), help="the comparison's output folder")
    parser.add_argument("--preset", default="mixed", help="preset or scenario name")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    tokens = list(sys.argv[1:] if argv is None else argv)
    # Pairs may come anywhere, also after --seeds (whose nargs would swallow them).
    pair_tokens = [t for t in tokens if ":" in t and not t.startswith("-")]
    args = parser.parse_args([t for t in tokens if t not in pair_tokens])
    if not pair_tokens:
        parser.error("give at least one pair A:B")
    pairs = [pair.split(":") for pair in pair_tokens]
    if any(len(pair) != 2 or not all(pair) for pair in pairs):
        parser.error("pairs are written A:B, e.g. DQN-embedding:GRU4Rec")
    lines = []
    for a, b in pairs:
        returns = [_returns(side, args.out, args.preset, args.seeds) for side in (a, b)]
        if returns[0].shape != returns[1].shape:
            parser.error(f"{a} and {b} have {returns[0].shape} and {returns[1].shape} sessions (seeds × users): "
                         "not the same users")
        difference = paired_difference(*returns)
        where = args.preset if "@" not in a + b else "paired per user"
        lines.append(f"{where}: {a} − {b}: {difference.mean:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}] "
                     f"{verdict(difference)}; per seed {', '.join(f'{m:+.2f}' for m in difference.seed_means)}")
        print(lines[-1])
    return lines


def _returns(side: str, out: Path, scenario: str, seeds: Sequence[int]) -> np.ndarray:
    """Clicks per session ``(seeds, users)`` of ``AGENT`` (in ``out``, ``scenario``) or ``AGENT@OUT/SCENARIO``."""
    agent, _, elsewhere = side.partition("@")
    if elsewhere:
        path = Path(elsewhere)
        out, scenario = path.parent, path.name
    runs = load_sessions(out, scenario, seeds, [agent])[agent]
    return np.stack([run.returns for run in runs])


if __name__ == "__main__":
    main()
