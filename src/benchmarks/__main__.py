"""``python -m benchmarks <command> [options]``: see :mod:`benchmarks.command_line`."""

from benchmarks.command_line import exit_status, main

if __name__ == "__main__":
    raise SystemExit(exit_status(main()))
