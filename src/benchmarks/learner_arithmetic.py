"""The arithmetic a learner's training costs, and the ceiling it puts on training user-steps/s.

A learner that replays each transition several times does most of its work in matrix products.
This script counts them — their shapes, hence their floating-point operations, as torch dispatches
them (backward passes included) —
per training user-step of the learner as the comparison trains it (its factory in
:data:`benchmarks.agent_registry.REFERENCE_AGENTS` on the comparison's training env, exactly as
:func:`benchmarks.learner_timing.measure_learner` times it), then times bare ``torch.mm`` calls of the
same shapes on the same torch threads. Their sum is the time the matrix products alone take per
user-step at this machine's speed for those shapes, so its inverse is the most training
user-steps/s the learner could reach here if the env, the optimiser, the replay buffer and Python
cost nothing.

Steady state: the learner is trained twice, for S and for 2·S user-steps, and every count is the
difference of the two runs over the difference of their user-steps, so that what happens once
(construction, the first ``learning_starts`` user-steps without gradient steps) cancels.

    recenv learner-arithmetic                          # DQN-embedding, 1 and 2 threads
    recenv learner-arithmetic --learners PPO --steps 20000

Measured: docs/results/throughput.md.

Writes ``learner_arithmetic.md`` and ``learner_arithmetic.json`` into ``--out``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.environment_info import hardware_and_versions, markdown_header, pipe_table
from benchmarks.learner_timing import LEARNERS, measure_learner
from recenv.threads import torch_threads

Shape = tuple[int, int, int]
"""``(M, K, N)``: an ``(M, K) @ (K, N)`` product."""


class MatrixProductCounter(TorchDispatchMode):
    """Counts the ``aten.mm`` and ``aten.addmm`` calls (``@`` and ``nn.Linear``, forward and
    backward) made while it is active, by shape; it changes nothing they compute."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[Shape] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.mm.default:
            self.calls[(args[0].shape[0], args[0].shape[1], args[1].shape[1])] += 1
        elif func is torch.ops.aten.addmm.default:
            self.calls[(args[1].shape[0], args[1].shape[1], args[2].shape[1])] += 1
        return func(*args, **(kwargs or {}))


@dataclass
class Arithmetic:
    """One learner on one thread count, per training user-step in steady state."""

    learner: str
    threads: int
    user_steps: int  # of the longer run
    user_steps_per_second: float  # the longer run, timed while counting
    gigaflop_per_thousand_user_steps: float  # matrix products
    matrix_seconds_per_thousand_user_steps: float  # the same products as bare torch.mm calls here
    gigaflop_per_second: float  # their rate at these shapes

    @property
    def ceiling(self) -> float:
        """Training user-steps/s the matrix products alone allow."""
        return 1000.0 / self.matrix_seconds_per_thousand_user_steps


def matrix_products(name: str, total_steps: int, threads: int) -> tuple[int, float, Counter[Shape]]:
    """Train ``name`` as the comparison does for ``total_steps`` user-steps, counting its matrix
    products: (user-steps trained, their user-steps/s, calls per product shape)."""
    with MatrixProductCounter() as counter:
        measurement = measure_learner(name, total_steps, threads)
    return measurement.user_steps, measurement.user_steps_per_second, counter.calls


def seconds_per_product(shape: Shape, threads: int, min_seconds: float = 0.2) -> float:
    """Seconds of one ``torch.mm`` of ``shape`` on ``threads`` torch threads (float32, warm)."""
    m, k, n = shape
    generator = torch.Generator().manual_seed(0)
    left, right = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    out = torch.empty(m, n)
    with torch_threads(threads):
        for _ in range(3):
            torch.mm(left, right, out=out)
        calls, start = 0, time.perf_counter()
        while calls < 10 or time.perf_counter() - start < min_seconds:
            torch.mm(left, right, out=out)
            calls += 1
        return (time.perf_counter() - start) / calls


def measure(name: str, steps: int, threads: int) -> Arithmetic:
    """Steady-state arithmetic of learner ``name`` from runs of ``steps`` and ``2·steps`` user-steps."""
    short_steps, _, short_calls = matrix_products(name, steps, threads)
    long_steps, speed, long_calls = matrix_products(name, 2 * steps, threads)
    added = long_steps - short_steps
    calls = {shape: long_calls[shape] - short_calls.get(shape, 0) for shape in long_calls}
    flop = sum(2 * m * k * n * count for (m, k, n), count in calls.items())
    seconds = sum(seconds_per_product(shape, threads) * count for shape, count in calls.items() if count > 0)
    return Arithmetic(name, threads, long_steps, speed, 1000 * flop / added / 1e9, 1000 * seconds / added,
                      flop / seconds / 1e9)


def markdown(rows: Sequence[Arithmetic]) -> str:
    columns = ["learner", "torch threads", "matrix products per 1,000 user-steps", "at this machine's speed for their shapes",
               "ceiling: training user-steps/s", "measured (counting)"]
    return pipe_table(columns, [
        [LEARNERS[row.learner], str(row.threads), f"{row.gigaflop_per_thousand_user_steps:.2f} GFLOP",
         f"{1000 * row.matrix_seconds_per_thousand_user_steps:.0f} ms ({row.gigaflop_per_second:.0f} GFLOP/s)",
         f"{row.ceiling:,.0f}", f"{row.user_steps_per_second:,.0f}"] for row in rows])


def write_report(out: Path, command: str, learners: Sequence[str] = ("DQN-embedding",), steps: int = 20_000,
                 threads: Sequence[int] = (1, 2)) -> str:
    """:func:`measure` each learner on each thread count, written to ``out`` as
    ``learner_arithmetic.md`` and ``.json``; returns the Markdown."""
    from tqdm.auto import tqdm

    plan = [(name, count) for name in learners for count in threads]
    rows = [measure(name, steps, count) for name, count in tqdm(plan, desc="learner arithmetic", unit="run")]
    info = hardware_and_versions()
    out.mkdir(parents=True, exist_ok=True)
    (out / "learner_arithmetic.json").write_text(json.dumps(
        {"command": command, "environment": info, "steps": steps,
         "results": [{**asdict(row), "ceiling": row.ceiling} for row in rows]}, indent=2), encoding="utf-8")
    text = (markdown_header("The learners' matrix products per training user-step, and the ceiling they set", info, command)
            + f"\nSteady state: runs of {steps:,} and {2 * steps:,} user-steps, differenced.\n\n" + markdown(rows))
    (out / "learner_arithmetic.md").write_text(text, encoding="utf-8")
    return text
