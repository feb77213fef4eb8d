"""How many torch threads a job should use: as many as the cores this process really gets.

torch starts with one intra-op thread per core *of the machine*. In a container limited to fewer
CPUs (a cgroup quota), or in a process pinned to fewer cores, that oversubscribes what it gets; and
several jobs on one machine, each with a thread per core, oversubscribe it together. torch's
OpenMP threads spin while they wait for each other, so oversubscription does not share the cores,
it wastes them (several jobs at once, a thread per core each against one each, measured:
docs/results/throughput.md, "Several jobs on one machine"). Hence:

- :func:`available_cores`: the CPUs this process may run on (its affinity mask), capped by the
  cgroup CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``).
- :func:`choose_torch_threads`: the command-line tools' choice (``--torch-threads``, else
  ``OMP_NUM_THREADS``, else the available cores), set and described in one line, with a warning
  when the machine is already busy.
- :func:`cap_torch_threads`: what learners and evaluation call: never more threads than cores.

Running several jobs at once: give each ``--torch-threads 1`` (or ``OMP_NUM_THREADS=1``), so that
the jobs together use no more threads than there are cores.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

__all__ = [
    "ThreadChoice", "available_cores", "cap_torch_threads", "choose_torch_threads", "one_blas_thread", "torch_threads",
]

_CGROUP = Path("/sys/fs/cgroup")


def available_cores(cgroup_root: Path = _CGROUP) -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (rounded
    up: a quota of 1.5 CPUs gives 2); at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def cgroup_cpu_quota(cgroup_root: Path = _CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``2.0`` for two full cores), or None when
    there is none (or no cgroup file can be read)."""
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ThreadChoice:
    """The number of torch threads chosen, the cores available, why, and how busy the machine was.

    ``busy``: the one-minute load average when the choice was made (None where the OS has none)."""

    threads: int
    cores: int
    reason: str
    busy: float | None

    @property
    def oversubscribed(self) -> bool:
        """More threads than the cores left: the machine was already busy, or more were asked for."""
        return self.threads > self.cores or (self.busy is not None and self.threads > 1 and self.busy >= self.cores)

    def describe(self) -> str:
        """One line for the log: what was chosen and why, and advice when it oversubscribes."""
        line = f"torch threads: {self.threads} ({self.reason}; {self.cores} cores available to this process)"
        if self.oversubscribed:
            load = "" if self.busy is None else f" (load average {self.busy:.1f})"
            line += (
                f"\nwarning: more threads than free cores{load}: other jobs are running, and threads that wait "
                "for each other spin. When several jobs run at once, give each --torch-threads 1 "
                "(or OMP_NUM_THREADS=1)."
            )
        return line


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def choose_torch_threads(requested: int | None = None) -> ThreadChoice:
    """Set torch's intra-op thread count for this process and return what was chosen.

    ``requested`` (a ``--torch-threads`` option) wins; else a valid ``OMP_NUM_THREADS`` (which
    torch read at start); else torch's own count capped at :func:`available_cores`.

    :raises ValueError: ``requested`` below 1.
    """
    cores = available_cores()
    if requested is not None:
        if requested < 1:
            raise ValueError(f"the number of torch threads must be at least 1, got {requested}")
        threads, reason = requested, "asked for"
    elif (omp := os.environ.get("OMP_NUM_THREADS", "")).isdigit() and int(omp) >= 1:
        threads, reason = int(omp), "OMP_NUM_THREADS"
    else:
        threads, reason = min(torch.get_num_threads(), cores), "one per available core"
    torch.set_num_threads(threads)
    return ThreadChoice(threads=threads, cores=cores, reason=reason, busy=_load_average())


def cap_torch_threads() -> int:
    """Lower torch's thread count to :func:`available_cores` if it is above it (torch counts the
    machine's cores, not the container's); return the count in force. A lower count set by the
    user is kept."""
    cores = available_cores()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch threads, and put back the count it found afterwards
    (also when the block raises)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS (OpenBLAS, MKL) on one thread inside the block, then as it was.

    The last bits of a matrix product depend on how many threads split it, and BLAS takes one per
    core unless ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` say otherwise (Ray's workers set
    ``OMP_NUM_THREADS=1``). What the simulation derives with numpy (the catalog's latents) is
    computed on one thread, so the same seed gives the same numbers whatever the cores or the
    environment variables."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
