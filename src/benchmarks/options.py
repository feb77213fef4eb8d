"""The options the benchmark commands share, in one frozen dataclass: one name, one default and one
validation each (CleanRL's ``Args``, shared by the subcommands of :mod:`benchmarks.command_line`).

Each command takes the subset of :class:`SharedOptions` it needs; the command line spells a field
``--field-name`` (``torch_threads`` → ``--torch-threads``) and its help is the field's docstring.
A value left out is the field's default, which a command may narrow (``--presets``: all presets,
``mixed`` with ``--quick``). No argparse here: this module is usable from Python as it is.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from dataclasses import dataclass, fields
from pathlib import Path

from recenv.presets import SYNTHETIC_PRESETS
from recenv.threads import available_cores

__all__ = ["OptionError", "SharedOptions", "check_at_least_one", "field_help", "free_cores"]


class OptionError(ValueError):
    """A bad value of a command-line option: ``option`` (``"--torch-threads"``) and what is wrong."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option} {message}")
        self.option = option


def free_cores(cores: int | None = None, load_average: float | None = None) -> int:
    """The cores that are actually free: the cores this process may use
    (:func:`recenv.threads.available_cores`) minus the one-minute load average (rounded), at least 1.

    ``cores`` and ``load_average`` default to this machine's now (no load average where the OS has
    none: then every available core counts as free)."""
    cores = available_cores() if cores is None else cores
    if load_average is None:
        try:
            load_average = os.getloadavg()[0]
        except (AttributeError, OSError):
            load_average = 0.0
    return max(1, cores - round(load_average))


def check_at_least_one(option: str, value: int | None) -> None:
    """The lower bound of every count option (threads, workers, users): an int of at least 1 (None:
    the default).

    :raises OptionError: naming the option, the value and what is allowed.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise OptionError(option, f"{value!r}: must be a whole number of at least 1")


@dataclass(frozen=True)
class SharedOptions:
    """What several benchmark commands take, validated once, here."""

    out: Path | None = None
    """Output folder of the command's report (Markdown, CSV/JSON, plots). Default:
    results/<command>, or results/<command>-quick with --quick (compare with slates of K:
    results/compare[-quick]-slateK[-shown])."""

    quick: bool = False
    """Small budgets and few configurations: a smoke run of the command, not its published numbers."""

    torch_threads: int | None = None
    """torch threads (at least 1). Default: the cores that are actually free (the available cores
    minus the one-minute load average, at least 1). The comparison's cells run on 1 thread each by
    default, as many at once as there are free cores; a number given here is each cell's."""

    presets: tuple[str, ...] | None = None
    """Synthetic presets to run (default: the command's; the comparison: all, mixed with --quick)."""

    seeds: tuple[int, ...] | None = None
    """Training seeds (non-negative integers; default 0 1 2 3 4, with --quick 0)."""

    eval_users: int | None = None
    """Held-out users each agent is evaluated on (at least 1; per seed in the comparison). Default:
    the command's (the comparison's budget; knowledge-gap 1000; clickbait-diagnostic 2000, with
    --quick 200; slate-history-encoders 2000)."""

    backend: str = "auto"
    """Where the comparison's cells run: sequential, pool (local processes), ray, or auto (a pool
    when the free cores hold more than one cell)."""

    workers: int | None = None
    """Processes of the pool, or CPUs of a local Ray instance (at least 1; default: the free cores
    divided by the cells' torch threads)."""

    device: str = "cpu"
    """Device of the envs and the torch learners: cpu, cuda or auto."""

    agents: tuple[str, ...] | None = None
    """Agents of the registry to run (default: all of the command's registry)."""

    agent: tuple[str, ...] = ()
    """Your own agent, as package.module:ClassName (repeatable); its module must be importable."""

    def __post_init__(self) -> None:
        from benchmarks.backends import BACKENDS

        for option in ("torch_threads", "eval_users", "workers"):
            check_at_least_one(_flag(option), getattr(self, option))
        if self.backend not in BACKENDS:
            raise OptionError("--backend", f"{self.backend!r}: allowed: {', '.join(BACKENDS)}")
        unknown = [name for name in self.presets or () if name not in SYNTHETIC_PRESETS]
        if unknown:
            raise OptionError("--presets", f"{' '.join(unknown)}: allowed: {', '.join(SYNTHETIC_PRESETS)}")
        negative = [seed for seed in self.seeds or () if seed < 0]
        if negative:
            raise OptionError("--seeds", f"{' '.join(map(str, negative))}: seeds are integers of at least 0")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise OptionError("--seeds", f"{' '.join(map(str, self.seeds))}: each seed once")
        for path in self.agent:
            module, _, name = path.partition(":")
            if not module or not name:
                raise OptionError("--agent", f"{path}: write package.module:ClassName")

    @property
    def threads(self) -> int:
        """The torch threads this command runs on: ``torch_threads``, else :func:`free_cores`."""
        return self.torch_threads if self.torch_threads is not None else free_cores()

    def out_or(self, command: str) -> Path:
        """``out``, else ``results/<command>`` (``results/<command>-quick`` with ``quick``)."""
        return self.out if self.out is not None else Path(f"results/{command}" + ("-quick" if self.quick else ""))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_help() -> dict[str, str]:
    """Each field of :class:`SharedOptions` → its docstring as one line (the command line's help)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(SharedOptions)))
    except (OSError, TypeError):  # no source to read (a frozen build): options without help
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    names = {f.name for f in fields(SharedOptions)}
    helps = {}
    for statement, following in zip(body, body[1:]):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and statement.target.id in names and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)):
            helps[statement.target.id] = " ".join(str(following.value.value).split())
    return helps
