"""How long a stored comparison takes on W workers: its cells' measured times, scheduled longest
first onto W workers (LPT: each cell, longest first, goes to the worker that is free first).

    recenv cell-schedule --comparison results/compare --worker-counts 1 2 8 64

A cell cannot be split, so the longest cell bounds the wall time however many workers there are.
Cell times are the ``cell_seconds`` (training and evaluation) that parts record since cells ran
on backends; for agents stored before that, the agent's training seconds plus an even share of its
part's time not spent training (logs, evaluations), which the table counts apart. Worker start-up
(a spawned process imports torch: a few seconds) and the driver's storing are left out.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["cell_seconds", "describe", "lpt_makespan", "table"]


def lpt_makespan(seconds: Sequence[float], workers: int) -> float:
    """The wall time of cells taking ``seconds`` on ``workers`` workers, longest cell first, each to
    the worker free first (Graham's LPT: at most 4/3 of the best schedule)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    free = [0.0] * min(workers, max(len(seconds), 1))
    for duration in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def cell_seconds(out: Path) -> list[tuple[str, int, str, float, bool]]:
    """Every stored cell under ``out/parts``: (scenario, seed, agent, seconds, measured), where
    ``measured`` is False for an estimate (an agent stored before cells recorded their time)."""
    cells = []
    for record_path in sorted(Path(out).glob("parts/*/seed*.json")):
        record = json.loads(record_path.read_text())
        agents = record["agents"]
        scenario, seed = record_path.parent.name, int(record_path.stem.removeprefix("seed"))
        unmeasured = [name for name, entry in agents.items() if entry.get("cell_seconds") is None]
        measured_total = sum(entry["cell_seconds"] for entry in agents.values() if entry.get("cell_seconds") is not None)
        trained = sum(agents[name]["train_seconds"] for name in unmeasured)
        rest = max(0.0, record.get("wall_seconds", 0.0) - measured_total - trained) / max(len(unmeasured), 1)
        for name, entry in agents.items():
            if entry.get("cell_seconds") is not None:
                cells.append((scenario, seed, name, float(entry["cell_seconds"]), True))
            else:
                cells.append((scenario, seed, name, float(entry["train_seconds"]) + rest, False))
    return cells


def table(seconds: Sequence[float], workers: Sequence[int]) -> str:
    """A Markdown table: projected wall time and speed-up on each number of workers."""
    alone = lpt_makespan(seconds, 1)
    lines = ["| workers | wall time (min) | speed-up | efficiency |", "|---:|---:|---:|---:|"]
    for count in workers:
        wall = lpt_makespan(seconds, count)
        lines.append(f"| {count} | {wall / 60:.1f} | {alone / wall:.1f}× | {alone / wall / count:.0%} |")
    return "\n".join(lines) + "\n"


def describe(comparison: Path, worker_counts: Sequence[int] = (1, 2, 8, 64)) -> str:
    """The stored cells of ``comparison`` in one line (count, total, the longest) and the
    :func:`table` of their projected wall time on each of ``worker_counts``.

    :raises FileNotFoundError: no stored cell under ``comparison/parts``.
    """
    cells = cell_seconds(comparison)
    if not cells:
        raise FileNotFoundError(f"no stored cells under {comparison}/parts")
    seconds = [cell[3] for cell in cells]
    longest = max(cells, key=lambda cell: cell[3])
    estimated = sum(not cell[4] for cell in cells)
    return (f"{len(cells)} cells in {comparison} ({estimated} estimated from older parts), {sum(seconds) / 60:.1f} min "
            f"in all; the longest: {longest[2]} [{longest[0]}, seed {longest[1]}], {longest[3] / 60:.1f} min.\n\n"
            + table(seconds, worker_counts))
