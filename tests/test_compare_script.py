"""benchmarks.compare runs end to end on a tiny budget, writes its files, resumes from its parts,
enforces the information policy, and takes custom agents."""

import csv
import dataclasses
import json
import textwrap
from dataclasses import replace

import pytest

import recenv
from benchmarks import protocol
from benchmarks.command_line import main
from benchmarks.agent_registry import REFERENCE_AGENTS, agent_from_import_path
from benchmarks.report import _COLUMNS

QUIET = protocol.RunSettings(progress=False)

TINY = ["--presets", "mixed", "--seeds", "0", "--eval-users", "40", "--logged-users", "100", "--dqn-steps", "600",
        "--q-learning-steps", "600", "--sb3-steps", "300", "--budget", "recurrent_dqn=600", "--budget",
        "long_term_value=600", "--budget", "ppo=600", "--budget", "sb3_ppo=300", "--budget", "topic_q_learning=600"]

USER_AGENT = textwrap.dedent("""
    import numpy as np

    class FirstItemAgent:
        \"\"\"A user's own agent: always item 0 (a deliberately bad, easily recognised policy).\"\"\"

        def __init__(self, env):
            pass

        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            observation = np.asarray(observation)
            return np.zeros(len(observation) if observation.ndim > 1 else 1, dtype=np.int64), state
""")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_agents.py").write_text(USER_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_agents"


def test_compare_end_to_end_writes_every_output(tmp_path):
    main(["compare", *TINY, "--out", str(tmp_path)])
    for name in ("results.csv", "differences.csv", "per_seed.csv", "results.json", "results.md",
                 "clicks_by_agent.png", "paired_differences.png", "learning_curves.png", "regime_shift_effect.png",
                 "parts/mixed/seed0.npz", "parts/mixed/seed0.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["agent"] for r in rows] == list(REFERENCE_AGENTS)
    assert set(rows[0]) == set(_COLUMNS)
    oracle = next(r for r in rows if r["agent"] == "Oracle")
    random = next(r for r in rows if r["agent"] == "Random")
    assert float(oracle["clicks_per_session"]) > float(random["clicks_per_session"])
    assert abs(float(oracle["regret_per_step"])) < 1e-4 and float(random["regret_per_step"]) > 0.1
    assert oracle["privileged"] == "True" and random["privileged"] == "False"
    assert float(random["coupling_error"]) == 0.0  # the counterfactual replay is coupled, randomness included
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text  # standard JSON, readable outside Python
    report = json.loads(text)
    assert report["config"]["budget"]["eval_users"] == 40 and "--eval-users" in report["command"]
    assert report["config"]["reference"] == "StaticProfile"
    assert any(key.startswith("mixed/DQN-embedding") for key in report["learning_curves"])
    against = {(d["agent"], d["against"]) for d in report["differences"]}
    assert ("Random", "StaticProfile") in against and ("Random", "FarsightedOracle") in against
    table = (tmp_path / "results.md").read_text()
    assert "| Oracle † |" in table and "Placebo" in table


def test_any_two_agents_of_a_stored_run_can_be_paired(tmp_path):
    agents = {name: REFERENCE_AGENTS[name] for name in ("Random", "StaticProfile", "Oracle")}
    budget = replace(protocol.QUICK, logged_users=60, eval_users=30)
    result = protocol.compare(agents, ["none"], seeds=[0, 1], budget=budget, settings=QUIET, out=tmp_path)
    lines = main(["paired-differences", "Oracle:Random", "--comparison", str(tmp_path), "--scenario", "none",
                                     "--seeds", "0", "1", "Random:StaticProfile"])  # a pair after --seeds too
    stored = next(d for d in result.differences if d["agent"] == "Random" and d["against"] == "StaticProfile")
    assert lines[0].startswith("none: Oracle − Random: +") and "] better;" in lines[0]
    assert f"{stored['mean']:+.2f} [{stored['low']:+.2f}, {stored['high']:+.2f}]" in lines[1]


def test_agents_of_two_runs_on_the_same_users_pair_per_user(tmp_path, capsys):
    agents = {name: REFERENCE_AGENTS[name] for name in ("Random", "Oracle")}
    budget = replace(protocol.QUICK, logged_users=60, eval_users=30)
    protocol.compare(agents, ["none"], seeds=[0], budget=budget, settings=QUIET, out=tmp_path / "a")
    protocol.compare(agents, ["none"], seeds=[0], budget=budget, settings=QUIET, out=tmp_path / "b")
    lines = main(["paired-differences", f"Random@{tmp_path / 'b' / 'none'}:Random@{tmp_path / 'a' / 'none'}",
                                     f"Oracle@{tmp_path / 'b' / 'none'}:Random", "--comparison", str(tmp_path / "a"),
                                     "--scenario", "none", "--seeds", "0"])
    assert lines[0].startswith("paired per user: Random@") and ": +0.00 [+0.00, +0.00]" in lines[0]
    assert "] better;" in lines[1]
    protocol.compare(agents, ["none"], seeds=[0], budget=replace(budget, eval_users=20), settings=QUIET,
                     out=tmp_path / "c")
    with pytest.raises(SystemExit) as exit_info:
        main(["paired-differences", f"Random@{tmp_path / 'c' / 'none'}:Random", "--comparison", str(tmp_path / "a"),
              "--scenario", "none", "--seeds", "0"])
    assert exit_info.value.code == 2
    assert "not the same users" in capsys.readouterr().err


def test_a_run_in_parts_resumes_and_merges_to_the_same_numbers(tmp_path):
    agents = {name: REFERENCE_AGENTS[name] for name in ("Random", "StaticProfile", "Oracle")}
    budget = replace(protocol.QUICK, logged_users=60, eval_users=30)
    first = protocol.compare(agents, ["none"], seeds=[0], budget=budget, settings=QUIET, out=tmp_path)
    stamp = (tmp_path / "parts/none/seed0.json").stat().st_mtime_ns
    both = protocol.compare(agents, ["none"], seeds=[0, 1], budget=budget, settings=QUIET, out=tmp_path)
    assert (tmp_path / "parts/none/seed0.json").stat().st_mtime_ns == stamp  # seed 0 was not run again
    assert both.config["seeds"] == [0, 1] and len(both.per_seed) == 6
    seed_0 = [row for row in both.per_seed if row["seed"] == 0]
    assert [row["clicks_per_session"] for row in seed_0] == [row["clicks_per_session"] for row in first.per_seed]
    merged = protocol.merge(tmp_path, {"none": recenv.EnvConfig(preset="none")}, [0, 1], list(agents))
    assert [row["clicks_per_session"] for row in merged.rows] == [row["clicks_per_session"] for row in both.rows]
    with pytest.raises(FileNotFoundError, match="seed 2"):
        protocol.merge(tmp_path, {"none": recenv.EnvConfig(preset="none")}, [0, 2], list(agents))


def test_a_stored_part_keeps_its_agents_and_runs_only_new_or_changed_ones(tmp_path):
    # TopicQLearning is the tabular learner here (QLearning fits its k-means states on 20,000 random
    # user-steps whatever its budget, seconds per run).
    budget = replace(protocol.QUICK, logged_users=60, eval_users=30, topic_q_learning=300)
    first = protocol.compare({name: REFERENCE_AGENTS[name] for name in ("Random", "TopicQLearning")}, ["none"],
                             seeds=[0], budget=budget, settings=QUIET, out=tmp_path)
    record_path = tmp_path / "parts/none/seed0.json"
    random_seconds = json.loads(record_path.read_text())["agents"]["Random"]["train_seconds"]

    # A new agent and another DQN budget: Random and TopicQLearning (which reads neither) are kept as stored.
    wider = protocol.compare({name: REFERENCE_AGENTS[name] for name in ("Random", "TopicQLearning", "StaticProfile")},
                             ["none"], seeds=[0], budget=replace(budget, dqn=123), settings=QUIET, out=tmp_path)
    record = json.loads(record_path.read_text())
    assert list(record["agents"]) == ["Random", "TopicQLearning", "StaticProfile"]
    assert record["agents"]["Random"]["train_seconds"] == random_seconds
    assert [r["clicks_per_session"] for r in wider.per_seed[:2]] == [r["clicks_per_session"] for r in first.per_seed]

    # Another budget of its own reruns TopicQLearning only; --rerun reruns what it names.
    protocol.compare({"TopicQLearning": REFERENCE_AGENTS["TopicQLearning"]}, ["none"], seeds=[0],
                     budget=replace(budget, topic_q_learning=400), settings=QUIET, out=tmp_path)
    record = json.loads(record_path.read_text())
    assert record["agents"]["TopicQLearning"]["budget"] == {"topic_q_learning": 400}
    assert record["agents"]["TopicQLearning"]["train_steps"] >= 400
    assert record["agents"]["Random"]["train_seconds"] == random_seconds  # kept, though not asked for
    protocol.compare({"Random": REFERENCE_AGENTS["Random"]}, ["none"], seeds=[0], budget=budget, settings=QUIET,
                     out=tmp_path, rerun=["Random"])
    assert json.loads(record_path.read_text())["agents"]["Random"]["train_seconds"] != random_seconds

    # Other evaluation users: nothing stored can be reused.
    protocol.compare({"Random": REFERENCE_AGENTS["Random"]}, ["none"], seeds=[0],
                     budget=replace(budget, eval_users=20), settings=QUIET, out=tmp_path)
    assert list(json.loads(record_path.read_text())["agents"]) == ["Random"]
    assert not list(tmp_path.glob("parts/none/*.writing.*"))


def test_two_runs_adding_agents_to_one_part_at_once_keep_both(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    budget = replace(protocol.QUICK, logged_users=60, eval_users=30)

    def run(name):
        return protocol.compare({name: REFERENCE_AGENTS[name]}, ["none"], seeds=[0], budget=budget, settings=QUIET,
                                out=tmp_path)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, ["Random", "StaticProfile"]))
    record = json.loads((tmp_path / "parts/none/seed0.json").read_text())
    assert sorted(record["agents"]) == ["Random", "StaticProfile"]  # the second waited for the first, then added


def test_a_part_of_the_first_format_is_read_and_extended(tmp_path):
    budget = replace(protocol.QUICK, logged_users=60, eval_users=30)
    agents = {name: REFERENCE_AGENTS[name] for name in ("Random", "StaticProfile")}
    protocol.compare(agents, ["none"], seeds=[0], budget=budget, settings=QUIET, out=tmp_path)
    record_path = tmp_path / "parts/none/seed0.json"
    record = json.loads(record_path.read_text())
    settings = record["settings"]  # written as format 1 wrote it
    settings.update(format_version=1, agents=list(agents), budget=dataclasses.asdict(budget))
    del settings["eval_users"]
    for entry in record["agents"].values():
        del entry["budget"]
    record_path.write_text(json.dumps(record))
    seconds = record["agents"]["Random"]["train_seconds"]
    protocol.compare({**agents, "Oracle": REFERENCE_AGENTS["Oracle"]}, ["none"], seeds=[0], budget=budget,
                     settings=QUIET, out=tmp_path)
    record = json.loads(record_path.read_text())
    assert record["settings"]["format_version"] == protocol.PART_FORMAT_VERSION
    assert list(record["agents"]) == ["Random", "StaticProfile", "Oracle"]
    assert record["agents"]["Random"]["train_seconds"] == seconds


def test_a_custom_agent_plugs_in_by_import_path(tmp_path, user_module):
    main(["compare", *TINY, "--agents", "Random", "--agent", f"{user_module}:FirstItemAgent",
                  "--out", str(tmp_path / "out")])
    rows = {r["agent"]: r for r in csv.DictReader(open(tmp_path / "out" / "results.csv"))}
    assert set(rows) == {"Random", "FirstItemAgent"}
    assert float(rows["FirstItemAgent"]["topic_entropy_bits"]) == 0.0  # one item, one topic


def test_a_custom_agent_plugs_in_through_python(tmp_path, user_module):
    from my_agents import FirstItemAgent

    agents = {"Mine": lambda ctx: FirstItemAgent(ctx.train_env), "Random": REFERENCE_AGENTS["Random"]}
    budget = replace(protocol.QUICK, logged_users=100, eval_users=30)
    result = protocol.compare(agents, presets=["none"], seeds=[0], budget=budget, settings=QUIET, out=tmp_path,
                              reference="Random")
    assert [row["agent"] for row in result.rows] == ["Mine", "Random"]
    assert [(d["agent"], d["against"]) for d in result.differences] == [("Mine", "Random")]


def test_an_unimportable_plug_in_ends_in_one_line_naming_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--quick", "--agent", "my_pkg.my_module:MyAgent"], prog="recenv")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "recenv compare: error: --agent my_pkg.my_module:MyAgent: no module named 'my_pkg'\n"


def test_a_missing_part_names_itself_and_the_command_that_makes_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["paired-differences", "--comparison", str(tmp_path), "--scenario", "mixed-slate10", "--seeds", "3",
              "DQN-embedding:GRU4Rec"], prog="recenv")
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("recenv paired-differences: error: --comparison ")
    assert "part ('mixed-slate10', seed 3) is missing" in line
    assert f"make it with: recenv compare --presets mixed --slate-size 10 --seeds 3 --out {tmp_path} (" in line


def test_bad_agent_import_path_is_refused():
    with pytest.raises(ValueError, match="takes 'package.module:ClassName'"):
        agent_from_import_path("no_colon_here")
    with pytest.raises(ValueError, match="cannot import agent"):
        agent_from_import_path("json:NoSuchAgent")


@pytest.mark.first_use_training
def test_ablation_switches_each_mechanism_off_and_each_scenario_gets_its_own_encoder(tmp_path, monkeypatch):
    import recenv.offline.encoder_training as training
    from benchmarks import ablation
    from recenv.encoder import cached_encoder_path

    # A scenario is other dynamics than any preset: its encoder is trained on first use (tiny here).
    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(training, "FIRST_USE_USERS", 200)
    monkeypatch.setattr(training, "FIRST_USE_EPOCHS", 1)
    main(["ablation", "--scenarios", "mixed (all on)", "no clickbait", "--agents", "Random", "Oracle",
                   "--seeds", "0", "--eval-users", "40", "--logged-users", "100", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [(r["preset"], r["agent"]) for r in rows] == [
        ("mixed (all on)", "Random"), ("mixed (all on)", "Oracle"),
        ("no clickbait", "Random"), ("no clickbait", "Oracle"),
    ]
    summary = (tmp_path / "results.md").read_text().split("Clicks per session [95% CI]:")[1]
    assert "| agent | mixed (all on) | no clickbait |" in summary and "| Oracle † |" in summary
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text  # standard JSON, readable outside Python
    report = json.loads(text)
    assert report["config"]["presets"]["no clickbait"]["params"] == {"overrides": {"clickbait": False}}
    switches = {name: dict(config.params) for name, config in ablation.SCENARIOS.items() if config.params}
    # One scenario per mechanism switch, clickbait and patience apart.
    assert sorted(next(iter(o)) for o in switches.values()) == sorted(
        ["exogenous_drift", "consumption_drift", "regime_shifts", "satiation", "impression_fatigue", "clickbait", "patience"])
    assert all(list(o.values()) == [False] for o in switches.values())
    scenario = ablation.SCENARIOS["no clickbait"]
    assert cached_encoder_path(recenv.default_catalog(), scenario.user_model).exists()


def test_training_steps_of_a_stored_agent_come_from_its_record_or_its_curve():
    assert protocol._stored_train_steps({"train_steps": 300, "learning_curve": [{"steps": 5}]}) == 300
    assert protocol._stored_train_steps({"learning_curve": [{"steps": 5}, {"steps": 9}]}) == 9  # first format
    assert protocol._stored_train_steps({"train_steps": None, "learning_curve": []}) is None  # it does not learn
