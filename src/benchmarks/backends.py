"""Where comparison cells run: in this process, in a pool of local processes, or as Ray tasks.

Every backend runs the same function (:func:`benchmarks.cells.run_cell`) on the same cells and
hands each result back to the driver, which stores it (:func:`benchmarks.protocol.compare`); so the
tables are the same whatever the backend and the number of workers, and a cluster needs no shared
file system. Results come back as they finish.

Every cell runs on its own number of torch threads (``Cell.threads``, 1 by default), whatever the
backend: some learners (PPO) give other numbers on 1 and on 2 threads.

- ``"sequential"``: one cell after another, in this process.
- ``"pool"``: ``workers`` spawned local processes (default: the available cores,
  :func:`recenv.threads.available_cores`, divided by the cells' threads), so that the workers
  together run no more threads than there are cores: oversubscribed torch threads spin, and the
  learners then slow down many times.
- ``"ray"``: each cell a Ray task (``num_cpus`` = its threads) on the cluster at ``address``
  (``ray.init(address=...)``: ``"auto"`` for the one this machine belongs to, ``"ray://host:10001"``
  for a remote one), or on a local Ray instance with ``workers`` CPUs when ``address`` is None.
  Ray is an optional extra: ``pip install -e ".[ray]"``.

Agent factories travel to workers with cloudpickle (a lambda or a closure goes too); a plug-in
agent's module must be importable where the cell runs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import cloudpickle

from benchmarks.agent_registry import AgentFactory
from benchmarks.cells import Cell, CellResult, run_cell
from recenv.threads import available_cores

BACKENDS = ("auto", "sequential", "pool", "ray")


def resolve_backend(backend: str, workers: int | None, threads: int = 1) -> tuple[str, int]:
    """The backend and number of workers that ``backend``/``workers`` ask for, for cells of
    ``threads`` torch threads each: ``"auto"`` is a pool when the available cores hold more than
    one such cell, else sequential; a pool's default size is as many cells as the cores hold.

    The counts are checked where they enter (:class:`benchmarks.protocol.RunSettings`,
    :class:`benchmarks.options.SharedOptions`), not again here.

    :raises ValueError: an unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {list(BACKENDS)}")
    cores = max(1, available_cores() // threads)
    if backend == "auto":
        backend = "pool" if (workers or cores) > 1 else "sequential"
    if backend == "sequential":
        return backend, 1
    return backend, workers or cores


def run_cells(cells: Sequence[Cell], factories: Mapping[str, AgentFactory], backend: str = "sequential",
              workers: int = 1, address: str | None = None) -> Iterator[CellResult]:
    """Run ``cells`` (each with ``factories[cell.agent]``) on ``backend``; yield each result as it
    finishes (in any order but for the sequential backend)."""
    if not cells:
        return
    if backend == "sequential":
        for cell in cells:
            yield run_cell(cell, factories[cell.agent])
    elif backend == "pool":
        yield from _pool(cells, factories, workers)
    elif backend == "ray":
        yield from _ray(cells, factories, workers, address)
    else:
        raise ValueError(f"unknown backend {backend!r}; allowed: sequential, pool, ray")


def _run_pickled(cell: Cell, factory: bytes) -> CellResult:
    return run_cell(cell, cloudpickle.loads(factory))


def _pool(cells: Sequence[Cell], factories: Mapping[str, AgentFactory], workers: int) -> Iterator[CellResult]:
    pickled = {name: cloudpickle.dumps(factories[name]) for name in {cell.agent for cell in cells}}
    # spawn, not fork: a forked child inherits torch's OpenMP pool, which hangs on first use.
    pool = ProcessPoolExecutor(max_workers=min(workers, len(cells)), mp_context=multiprocessing.get_context("spawn"))
    pending = {pool.submit(_run_pickled, cell, pickled[cell.agent]) for cell in cells}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        if pending:  # interrupted (Ctrl-C, a failed cell): stop the running cells now, not when they end
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray_cell(cell: Cell, factory: bytes) -> CellResult:
    return run_cell(cell, cloudpickle.loads(factory))


def _ray(cells: Sequence[Cell], factories: Mapping[str, AgentFactory], workers: int,
         address: str | None) -> Iterator[CellResult]:
    try:
        import ray
    except ImportError as error:
        raise ImportError('the Ray backend needs Ray: pip install -e ".[ray]"') from error
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
        if address is None:
            options["num_cpus"] = workers
        ray.init(**options)
    try:
        task = ray.remote(_run_ray_cell)
        pickled = {name: ray.put(cloudpickle.dumps(factories[name])) for name in {cell.agent for cell in cells}}
        pending = [task.options(num_cpus=cell.threads).remote(cell, pickled[cell.agent]) for cell in cells]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            for reference in pending:
                ray.cancel(reference, force=True)
    finally:
        if started_here:
            ray.shutdown()
