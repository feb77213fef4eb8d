"""What a benchmark table must say beside its numbers (hardware, versions and the exact command), and the table itself."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

__all__ = ["hardware_and_versions", "markdown_header", "pipe_table"]

_PACKAGES = ("recenv", "torch", "gymnasium", "numpy", "stable-baselines3")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_and_versions() -> dict[str, Any]:
    """CPU, core count, GPU (if any) and package versions, as a flat dict."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for package in _PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def markdown_header(title: str, info: dict[str, Any], command: str) -> str:
    versions = ", ".join(f"{name} {info[name]}" for name in _PACKAGES if name in info)
    return (
        f"## {title}\n\n"
        f"- Command: `{command}`\n"
        f"- Hardware: {info['cpu']} ({info['cpu_cores']} cores, torch threads {info['torch_threads']}); GPU: {info['gpu']}\n"
        f"- Versions: Python {info['python']}, {versions}\n"
    )


def pipe_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table: the first column left-aligned, the others (numbers) right-aligned."""
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
