"""The comparison on slates: slate scenarios through the same protocol and tables, the
``--slate-size`` option, and the slate scenario's logs (the one-item logs of the same users)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from benchmarks import protocol
from benchmarks.command_line import main
from benchmarks.agent_registry import SLATE_AGENTS, is_privileged
from recenv import EnvConfig
from recenv.offline.logging_policies import make_logs

QUIET = protocol.RunSettings(progress=False)

TINY = ["--seeds", "0", "--eval-users", "24", "--logged-users", "40", "--torch-threads", "1",
        "--backend", "sequential"]


def _csv(path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread."""


def test_slate_scenarios_are_the_presets_with_slates():
    scenarios = protocol.slate_scenarios(["mixed", "none"], 10)
    assert scenarios == {"mixed-slate10": EnvConfig(preset="mixed", slate_size=10),
                         "none-slate10": EnvConfig(preset="none", slate_size=10)}
    for bad in (1, 0, -3, 2.5, True):
        with pytest.raises(ValueError, match="slate scenarios need an int >= 2"):
            protocol.slate_scenarios(["mixed"], bad)


def test_the_slate_registry_names_its_agents_and_its_privileged_references():
    assert list(SLATE_AGENTS) == ["RandomSlate", "GreedySlate", "StaticProfileSlate", "OracleSlate",
                                  "FarsightedOracleSlate", "SlateQ"]
    assert {name for name, factory in SLATE_AGENTS.items() if is_privileged(factory)} == {
        "OracleSlate", "FarsightedOracleSlate"}
    assert protocol.SLATE_REFERENCE in SLATE_AGENTS and protocol.SLATE_FARSIGHTED_REFERENCE in SLATE_AGENTS


def test_a_tiny_slate_comparison_gives_the_usual_tables(tmp_path):
    agents = {name: SLATE_AGENTS[name] for name in ("GreedySlate", "OracleSlate")}
    budget = replace(protocol.QUICK, logged_users=40, eval_users=24)
    result = protocol.compare(agents, protocol.slate_scenarios(["mixed"], 4), seeds=[0], budget=budget,
                              settings=QUIET, out=tmp_path, reference="GreedySlate",
                              farsighted_reference=protocol.SLATE_FARSIGHTED_REFERENCE)
    assert [(row["preset"], row["agent"]) for row in result.rows] == [("mixed-slate4", "GreedySlate"),
                                                                       ("mixed-slate4", "OracleSlate")]
    rows = {row["agent"]: row for row in result.rows}
    assert rows["OracleSlate"]["privileged"] and not rows["GreedySlate"]["privileged"]
    assert abs(rows["OracleSlate"]["regret_per_step"]) < 1e-4 < rows["GreedySlate"]["regret_per_step"]
    assert [(d["agent"], d["against"]) for d in result.differences] == [("OracleSlate", "GreedySlate")]
    assert result.config["presets"]["mixed-slate4"]["slate_size"] == 4
    record = json.loads((tmp_path / "parts/mixed-slate4/seed0.json").read_text())
    assert record["settings"]["config"]["slate_size"] == 4


def test_the_command_line_runs_slate_scenarios_with_the_slate_agents(tmp_path):
    main(["compare", *TINY, "--quick", "--slate-size", "3", "--agents", "RandomSlate", "GreedySlate",
                  "FarsightedOracleSlate", "--out", str(tmp_path)])
    rows = _csv(tmp_path / "results.csv")
    assert [(r["preset"], r["agent"]) for r in rows] == [("mixed-slate3", name) for name in
                                                         ("RandomSlate", "GreedySlate", "FarsightedOracleSlate")]
    against = {(r["agent"], r["against"]) for r in _csv(tmp_path / "differences.csv")}
    assert against == {("RandomSlate", "GreedySlate"), ("RandomSlate", "FarsightedOracleSlate"),
                       ("GreedySlate", "FarsightedOracleSlate"), ("FarsightedOracleSlate", "GreedySlate")}
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["config"]["reference"] == "GreedySlate" and "--slate-size" in report["command"]
    table = (tmp_path / "results.md").read_text()
    assert "Scenario `mixed-slate3`" in table and "| FarsightedOracleSlate † |" in table
    assert "vs GreedySlate" in table and "vs FarsightedOracleSlate" in table


def test_the_command_line_takes_histories_of_slates_and_an_encoder_file(tmp_path):
    import torch

    import recenv
    from recenv.encoder import EncoderConfig, NextClickLSTM, save_encoder

    shown = EnvConfig(preset="mixed", slate_size=3, slate_history="shown")
    torch.manual_seed(0)
    encoder = save_encoder(NextClickLSTM(EncoderConfig(384, 8, 8)), tmp_path / "encoder.pt", recenv.default_catalog(),
                           shown.user_model, history=shown.history_record)
    main(["compare", *TINY, "--quick", "--slate-size", "3", "--slate-history", "shown", "--encoder", str(encoder),
                  "--agents", "RandomSlate", "GreedySlate", "--out", str(tmp_path / "run")])
    rows = _csv(tmp_path / "run" / "results.csv")
    assert [(r["preset"], r["agent"]) for r in rows] == [("mixed-slate3-shown", "RandomSlate"),
                                                         ("mixed-slate3-shown", "GreedySlate")]
    config = json.loads((tmp_path / "run" / "results.json").read_text())["config"]["presets"]["mixed-slate3-shown"]
    assert config["slate_history"] == "shown" and config["encoder"] == str(encoder)
    with pytest.raises(SystemExit):  # a file that is not there is refused by the parser
        main(["compare", *TINY, "--quick", "--slate-size", "3", "--encoder", str(tmp_path / "missing.pt")])


def test_a_plug_in_slate_agent_joins_by_import_path(tmp_path):
    main(["compare", *TINY, "--quick", "--slate-size", "3", "--agents", "GreedySlate", "--agent",
                  "agents.slate_baselines:RandomSlateAgent", "--out", str(tmp_path)])
    rows = _csv(tmp_path / "results.csv")
    assert [r["agent"] for r in rows] == ["GreedySlate", "RandomSlateAgent"]


@pytest.mark.parametrize(("argv", "says"), [
    (["--slate-size", "0"], "--slate-size 0: must be at least 1"),
    (["--slate-size", "-2"], "--slate-size -2: must be at least 1"),
    (["--slate-size", "two"], "invalid int value"),
    (["--slate-size", "4", "--agents", "Random"], "--agents Random: allowed: RandomSlate, "),
    (["--agents", "GreedySlate"], "--agents GreedySlate: allowed: "),  # one item: the one-item registry
    (["--slate-size", "4", "--reference", "StaticProfile"], "--reference StaticProfile: not among the agents"),
])
def test_bad_slate_options_are_refused(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--quick", *argv])
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_a_slate_scenario_logs_the_one_item_logs_of_the_same_users():
    """The logging policies show one item per step: the simulator of a slate config runs them as one
    item, so the slate scenario's training log (benchmarks.cells) is its one-item config's."""
    slate = make_logs(EnvConfig(slate_size=10), 30, seed=0, progress=False)
    one_item = make_logs(EnvConfig(), 30, seed=0, progress=False)
    for column in ("user", "step", "item", "click", "propensity", "click_probability"):
        np.testing.assert_array_equal(getattr(slate, column), getattr(one_item, column))


def test_a_scenario_with_histories_of_slates_runs_the_protocol_on_logs_of_slates(tmp_path):
    """With ``slate_history="shown"`` (here through a small encoder made for it, instead of the
    minutes of first-use training) the protocol runs as usual, the logs of its config are slates,
    and the agents that act on no observation give the same sessions as in the chosen-item scenario
    (the same users, simulated the same way: what the history records changes nothing else)."""
    import torch

    import recenv
    from recenv.encoder import EncoderConfig, NextClickLSTM, save_encoder

    shown = EnvConfig(preset="mixed", slate_size=4, slate_history="shown")
    torch.manual_seed(0)
    encoder = save_encoder(NextClickLSTM(EncoderConfig(384, 8, 8)), tmp_path / "encoder.pt", recenv.default_catalog(),
                           shown.user_model, history=shown.history_record)
    scenarios = {"mixed-slate4-shown": shown.replace(encoder=str(encoder)),
                 "mixed-slate4": EnvConfig(preset="mixed", slate_size=4)}
    agents = {name: SLATE_AGENTS[name] for name in ("RandomSlate", "GreedySlate", "OracleSlate")}
    budget = replace(protocol.QUICK, logged_users=20, eval_users=24)
    protocol.compare(agents, scenarios, seeds=[0], budget=budget, settings=QUIET, out=tmp_path / "run",
                     reference="GreedySlate", farsighted_reference=None)
    sessions = {name: protocol.load_sessions(tmp_path / "run", name, [0], list(agents)) for name in scenarios}
    for agent in ("RandomSlate", "OracleSlate"):  # their slates do not depend on the observations
        np.testing.assert_array_equal(sessions["mixed-slate4-shown"][agent][0].returns,
                                      sessions["mixed-slate4"][agent][0].returns)
    assert make_logs(shown, 6, seed=0, progress=False).slot.max() == 3
