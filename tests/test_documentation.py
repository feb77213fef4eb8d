"""The README and the documentation site say what works: the README's length and first commands,
every relative link, and every command they show (``python -m benchmarks <command> ...`` or
``recenv <command> ...``) names a real subcommand and parses; the slow part runs the commands as
written, after the main job.

The fast part reads files and builds the command line's parser: a few seconds.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
FIRST_COMMANDS = [
    "pip install -e . && python -m benchmarks compare --quick",
    'pip install -e ".[dev]" && pytest',
]
PREFIXES = ("python -m benchmarks ", "recenv ")
EXAMPLE = "python examples/"
PLACEHOLDER = re.compile(r"\.\.\.|<\w+>|\bREV\b|\bPATH\b")


def documents() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def shell_lines(text: str) -> list[str]:
    """Every line of a shell code block (continuations joined), and every inline code span of the
    prose (wrapped spans joined), of a Markdown text."""
    lines = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        if match.group(1) in ("bash", "sh", "shell", ""):
            lines.extend(match.group(2).replace("\\\n", " ").splitlines())
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    lines.extend(" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose))
    return lines


def shown_commands(text: str) -> list[str]:
    """The benchmark commands a Markdown text shows: each ``python -m benchmarks ...`` or
    ``recenv ...`` of its shell lines (split at ``&&`` and ``;``, comments and leading
    ``VAR=value`` assignments dropped)."""
    commands = []
    for line in shell_lines(text):
        for part in re.split(r"&&|;", line):
            part = re.sub(r"\s#.*$", "", part).strip()
            part = re.sub(r"^(\w+=\S+\s+)+", "", part)
            if part.startswith(PREFIXES):
                commands.append(part)
    return commands


def all_shown_commands() -> list[tuple[str, str]]:
    return [(_relative(path), command) for path in documents() for command in shown_commands(path.read_text())]


def test_the_extraction_finds_commands_in_blocks_and_prose():
    text = ('```bash\npip install -e . && python -m benchmarks compare --quick   # the main job\n'
            'OMP_NUM_THREADS=1 recenv throughput \\\n    --quick\n```\n\n'
            'Run `python -m benchmarks paired-differences\n  A:B` or `recenv serve`; not `recenv.EnvConfig`.\n')
    assert shown_commands(text) == ["python -m benchmarks compare --quick", "recenv throughput      --quick",
                                    "python -m benchmarks paired-differences A:B", "recenv serve"]


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; at most {MAX_README_LINES}"
    first_block = re.search(r"^```\w*\n(.*?)^```", text, re.S | re.M)
    assert first_block is not None, "README.md has no code block"
    assert first_block.group(1).splitlines() == FIRST_COMMANDS
    # .ci/run runs the line of the first block that mentions pytest: it must be the test command.
    assert [line for line in FIRST_COMMANDS if "pytest" in line] == [FIRST_COMMANDS[1]]


def test_documents_show_benchmark_commands():
    """The command checks below are not vacuous: the README and the guides show commands."""
    commands = all_shown_commands()
    assert any(path == "README.md" for path, _ in commands)
    assert len(commands) >= 30


def _command_parser():
    from benchmarks.command_line import COMMANDS, FORWARDED, build_parser

    parser, _ = build_parser()
    return parser, set(COMMANDS), set(FORWARDED)


def _argv(command: str) -> list[str]:
    tokens = shlex.split(command)
    return tokens[3:] if tokens[:3] == ["python", "-m", "benchmarks"] else tokens[1:]


def _forwarded_help(argv: list[str], capsys) -> str:
    """The help text of a forwarded command (``serve``, ``load-test``, ``encoder train``, ...), as
    its own parser prints it for ``--help``."""
    from benchmarks.command_line import main

    words = [token for token in argv[:2] if not token.startswith("-")]
    if len(words) == 2 and ":" in words[1]:
        words = words[:1]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    assert exited.value.code in (0, None), f"{' '.join(words)} --help exited {exited.value.code}"
    return capsys.readouterr().out


@pytest.mark.parametrize(("document", "command"), all_shown_commands())
def test_every_shown_command_names_a_subcommand_and_parses(document, command, capsys):
    parser, parsed_here, forwarded = _command_parser()
    argv = _argv(command)
    assert argv, f"{document}: `{command}` names no command"
    name = argv[0]
    if name.startswith("<"):  # `recenv <command>`: the form itself
        return
    if name in ("--help", "-h"):
        return
    assert name in parsed_here | forwarded, (
        f"{document}: `{command}`: no command {name!r}; the commands are {sorted(parsed_here | forwarded)}")
    if name in forwarded:  # parsed by its own package: its help must offer every option shown
        help_text = _forwarded_help(argv, capsys)
        unknown = [token.split("=")[0] for token in argv if token.startswith("--")
                   and not re.search(r"(?<![\w-])" + re.escape(token.split("=")[0]) + r"(?![\w-])", help_text)]
        assert not unknown, f"{document}: `{command}`: {' '.join(argv[:2])} has no option {unknown}"
        return
    if PLACEHOLDER.search(command):
        return  # a placeholder cannot parse: the command's name was checked
    if name == "paired-differences":  # its pairs may come anywhere: the command line moves them last
        pairs = [token for token in argv[1:] if ":" in token and not token.startswith("-")]
        argv = [name, *[token for token in argv[1:] if token not in pairs], *(["--", *pairs] if pairs else [])]
    try:
        parser.parse_args(argv)
    except SystemExit as error:
        pytest.fail(f"{document}: `{command}` does not parse (exit status {error.code})")


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    text = re.sub(r"`[^`]*`", "", text)
    return [target for target in LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_relative_links_are_found():
    assert "docs/getting-started.md" in relative_links(README)
    assert any(link.endswith(".png") for link in relative_links(README))


@pytest.mark.parametrize("document", [_relative(path) for path in documents()])
def test_every_relative_link_points_at_a_file(document):
    path = ROOT / document
    missing = [target for target in relative_links(path)
               if not (path.parent / target.split("#")[0]).resolve().exists()]
    assert not missing, f"{document}: links to files that do not exist: {missing}"


# --- slow: run the commands as written -----------------------------------------------------------

MAIN_JOB = "python -m benchmarks compare --quick"
NOT_RUN = {
    "python -m benchmarks compare --presets mixed --seeds 0 1": "a part of the full run: about 80 min",
    "python -m benchmarks compare --backend ray --address auto": "joins a Ray cluster, and runs the full comparison",
    "python -m benchmarks compare --agent my_pkg.my_module:MyAgent": "my_pkg is a placeholder for the reader's module",
    "python -m benchmarks compare --presets mixed --agents PPO --budget ppo=1000000 --out results/agents":
        "one learner at 1,000,000 user-steps on 5 seeds: about an hour",
    "recenv serve": "serves until interrupted (tests/test_serving*.py start and query the service)",
    "recenv serve --agent results/my_dqn.pt --port 8080": "serves until interrupted, and needs the reader's saved agent",
    "recenv encoder ship --data \"$RECENV_ML100K\"": "retrains every shipped encoder, and needs MovieLens-100K",
    "recenv encoder train --preset mixed --users 24000 --slate-size 10 --slate-history shown --out slates.pt":
        "26 minutes of training",
    "python -m benchmarks scaling --device cuda --seconds 2 --out results/scaling-cuda": "needs a GPU",
    "python -m benchmarks cell-schedule --comparison results/agents": "reads the stored learners' run (results/agents)",
    "python -m benchmarks paired-differences GreedySlate@results/compare-slate10-shown/mixed-slate10-shown:"
    "GreedySlate@results/compare-slate10/mixed-slate10": "reads the two stored full slate runs",
}


def runnable_commands() -> list[tuple[str, str]]:
    """The commands of the README and of the guides (not of docs/results/, whose pages record
    published runs of hours), and the examples they show, in order, once each, without
    placeholders or the ones NOT_RUN."""
    seen, commands = {MAIN_JOB}, []
    for path in documents():
        if DOCS / "results" in path.parents:
            continue
        text = path.read_text()
        examples = [line.strip() for line in shell_lines(text) if line.strip().startswith(EXAMPLE)]
        for command in [*shown_commands(text), *examples]:
            command = " ".join(command.split())
            if command in seen or command in NOT_RUN or PLACEHOLDER.search(command):
                continue
            seen.add(command)
            commands.append((_relative(path), command))
    return commands


def test_the_commands_not_run_are_still_shown():
    """NOT_RUN cannot rot: each entry is a command the documents show."""
    shown = {" ".join(command.split()) for _, command in all_shown_commands()}
    assert set(NOT_RUN) <= shown, sorted(set(NOT_RUN) - shown)


@pytest.fixture(scope="module")
def after_the_main_job(tmp_path_factory):
    """A working folder where the README's main job has run (examples/ linked in)."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "examples").symlink_to(ROOT / "examples")
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(shlex.split(MAIN_JOB.replace("python", sys.executable, 1)), cwd=folder, env=environment,
                   check=True, timeout=3600)
    return folder, environment


@pytest.mark.slow
@pytest.mark.parametrize(("document", "command"), runnable_commands())
def test_shown_command_runs_as_written(after_the_main_job, document, command):
    folder, environment = after_the_main_job
    completed = subprocess.run(command, shell=True, cwd=folder, env=environment, timeout=3600,
                               capture_output=True, text=True, executable="/bin/bash")
    assert completed.returncode == 0, (
        f"{document}: `{command}` exited {completed.returncode}:\n{completed.stderr[-3000:]}")


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert blocks, "README.md shows no Python example"
    script = tmp_path / "readme_example.py"
    script.write_text(blocks[0])
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    completed = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment, timeout=1800,
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
