"""Paired differences between any two agents of a stored comparison, from its parts.

    recenv paired-differences --comparison results/compare --scenario mixed DQN-embedding:GRU4Rec
    recenv paired-differences \
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

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.protocol import load_sessions
from benchmarks.statistics import paired_difference, verdict


def pair_lines(pairs: Sequence[tuple[str, str]], comparison: Path, scenario: str, seeds: Sequence[int]) -> list[str]:
    """One line per pair ``(A, B)``: the paired difference A − B in clicks per session [95% CI],
    its verdict and its per-seed means, from the parts of ``comparison`` (or of the folder a side
    names, ``AGENT@OUT/SCENARIO``).

    :raises benchmarks.protocol.MissingPart: a part the pair needs is not stored.
    :raises ValueError: a part without one of the agents, or two sides with different sessions.
    """
    lines = []
    for a, b in pairs:
        returns = [_returns(side, comparison, scenario, seeds) for side in (a, b)]
        if returns[0].shape != returns[1].shape:
            raise ValueError(f"{a} and {b} have {returns[0].shape} and {returns[1].shape} sessions (seeds × users): "
                             "not the same users")
        difference = paired_difference(*returns)
        where = scenario if "@" not in a + b else "paired per user"
        lines.append(f"{where}: {a} − {b}: {difference.mean:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}] "
                     f"{verdict(difference)}; per seed {', '.join(f'{m:+.2f}' for m in difference.seed_means)}")
    return lines


def _returns(side: str, out: Path, scenario: str, seeds: Sequence[int]) -> np.ndarray:
    """Clicks per session ``(seeds, users)`` of ``AGENT`` (in ``out``, ``scenario``) or ``AGENT@OUT/SCENARIO``."""
    agent, _, elsewhere = side.partition("@")
    if elsewhere:
        path = Path(elsewhere)
        out, scenario = path.parent, path.name
    runs = load_sessions(out, scenario, seeds, [agent])[agent]
    return np.stack([run.returns for run in runs])
