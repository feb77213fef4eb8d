"""The one command line of the benchmarks: its commands, and the shared options' one spelling, one
default (the free cores for threads) and one validation."""

import dataclasses

import pytest

from benchmarks import options as options_module
from benchmarks.command_line import COMMANDS, FORWARDED, build_parser, main
from benchmarks.options import OptionError, SharedOptions, field_help, free_cores

EXPECTED = ["compare", "ablation", "throughput", "scaling", "side-by-side", "knowledge-gap", "realism",
            "paired-differences", "fingerprints", "cell-schedule", "clickbait-diagnostic", "encoder-logs",
            "learner-arithmetic", "patience-probe", "slate-history-encoders"]


def test_the_command_list_is_the_decided_one_in_kebab_case(capsys):
    assert list(COMMANDS) == EXPECTED
    assert list(FORWARDED) == ["serve", "load-test", "encoder"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"], prog="recenv")
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out
    assert listing.startswith("usage: recenv [-h] COMMAND ...")
    assert all(f"\n    {name}" in listing for name in [*EXPECTED, *FORWARDED])


def test_an_unknown_command_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["comparee"], prog="recenv")
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("recenv: error: argument COMMAND: invalid choice: 'comparee'")


def _option_help(parser, flag):
    (action,) = [action for action in parser._actions if flag in action.option_strings]
    return action.help


def test_each_shared_option_has_one_spelling_and_the_help_of_its_field():
    _, parsers = build_parser()
    helps = field_help()
    assert set(helps) == {field.name for field in dataclasses.fields(SharedOptions)}
    for name, command in COMMANDS.items():
        flags = {flag for action in parsers[name]._actions for flag in action.option_strings}
        assert not flags & {"--threads", "--preset", "--users-per-seed"}, name  # the old second spellings
        for field in command.shared:
            flag = "--" + field.replace("_", "-")
            assert _option_help(parsers[name], flag) == helps[field], (name, flag)
        if "--workers" in flags:
            assert "workers" in command.shared, name  # never a list of counts under the same name


@pytest.mark.parametrize("name", [name for name, command in COMMANDS.items() if "torch_threads" in command.shared])
def test_one_torch_thread_is_accepted_by_every_command_that_takes_threads(name):
    _, parsers = build_parser()
    required = {"side-by-side": ["--baseline", "HEAD"]}.get(name, [])
    args = parsers[name].parse_args(["--torch-threads", "1", *required])
    assert args.torch_threads == 1
    assert SharedOptions(torch_threads=1).threads == 1


@pytest.mark.parametrize(("argv", "says"), [
    (["--torch-threads", "0"], "--torch-threads 0: must be a whole number of at least 1"),
    (["--workers", "-3"], "--workers -3: must be a whole number of at least 1"),
    (["--eval-users", "0"], "--eval-users 0: must be a whole number of at least 1"),
    (["--backend", "dask"], "--backend 'dask': allowed: auto, sequential, pool, ray"),
    (["--presets", "mixed", "drifty"], "--presets drifty: allowed: none, smooth, abrupt, mixed"),
    (["--seeds", "0", "-1"], "--seeds -1: seeds are integers of at least 0"),
    (["--seeds", "2", "2"], "--seeds 2 2: each seed once"),
    (["--agent", "my_module.MyAgent"], "--agent my_module.MyAgent: write package.module:ClassName"),
])
def test_a_bad_shared_option_names_the_value_and_what_is_allowed(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--quick", *argv], prog="recenv")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"recenv compare: error: {says}\n"


def test_the_same_validation_holds_from_python():
    with pytest.raises(OptionError, match="--torch-threads 0: must be"):
        SharedOptions(torch_threads=0)
    with pytest.raises(OptionError, match="--workers True: must be"):
        SharedOptions(workers=True)


def test_the_thread_default_is_the_free_cores(monkeypatch):
    assert free_cores(cores=8, load_average=0.4) == 8
    assert free_cores(cores=8, load_average=2.6) == 5
    assert free_cores(cores=2, load_average=3.1) == 1  # a busy machine still gets one thread
    monkeypatch.setattr(options_module, "available_cores", lambda: 4)
    monkeypatch.setattr(options_module.os, "getloadavg", lambda: (1.4, 0.0, 0.0))
    assert SharedOptions().threads == 3
    assert SharedOptions(torch_threads=2).threads == 2  # asked for: kept whatever the load


def test_the_output_folder_defaults_under_results():
    assert str(SharedOptions().out_or("throughput")) == "results/throughput"
    assert str(SharedOptions(quick=True).out_or("throughput")) == "results/throughput-quick"
    assert str(SharedOptions(out="x").out_or("throughput")) == "x"


@pytest.mark.parametrize(("command", "usage"), [("serve", "usage: recenv serve "),
                                                ("load-test", "usage: recenv load-test ")])
def test_serve_and_load_test_forward_their_arguments_to_serving(command, usage, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"], prog="recenv")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(usage)


def test_encoder_forwards_to_the_encoder_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encoder", "--help"], prog="recenv")
    assert exit_info.value.code == 0
    assert "train" in capsys.readouterr().out


def test_python_dash_m_benchmarks_runs_a_command_and_ends_a_user_error_in_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "benchmarks", "cell-schedule", "--comparison", str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr == (f"python -m benchmarks cell-schedule: error: --comparison {tmp_path}: "
                             f"no stored cells under {tmp_path}/parts\n")
