"""Comparison cells run anywhere and store the same numbers: sequentially, on a local process pool,
as Ray tasks; an interrupted run resumes with only the missing cells; a changed config reuses nothing."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from benchmarks.agent_registry import REFERENCE_AGENTS, reads_budget
from benchmarks.backends import resolve_backend
from benchmarks.protocol import QUICK, RunSettings, compare
from benchmarks.report import write_outputs

TINY = replace(QUICK, topic_q_learning=3_000, ppo=2_048, logged_users=60, eval_users=24)
# PPO's numbers depend on torch's thread count: cells fix it, so every backend stores the same.
# TopicQLearning is the tabular learner here: QLearning fits its k-means states on 20,000 random
# user-steps whatever its budget, three quarters of a run's time.
AGENTS = {name: REFERENCE_AGENTS[name] for name in ("Random", "Popularity", "TopicQLearning", "Oracle", "PPO")}
TIMINGS = {"train_seconds", "train_steps_per_second", "cell_seconds"}


def _tables(out):
    """Every table the comparison writes as CSV, timings left out (wall-clock times differ run to run)."""
    tables = {}
    for name in ("results.csv", "differences.csv", "per_seed.csv"):
        with open(out / name, newline="", encoding="utf-8") as file:
            tables[name] = [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(file)]
    return tables


def _run(out, backend, workers=None, agents=AGENTS, seeds=(0, 1), budget=TINY):
    result = compare(agents, ["mixed"], list(seeds), budget, RunSettings(backend=backend, workers=workers, progress=False),
                     out=out, reference="Random")
    write_outputs(result, out, "test", 0.0)
    return result


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential")
    result = _run(out, "sequential")
    return out, result


def test_the_sequential_run_stores_every_cell_and_says_how_it_ran(sequential):
    out, result = sequential
    assert (result.config["backend"], result.config["cells_run"], result.config["cells_stored"]) == ("sequential", 10, 0)
    rows = _tables(out)["per_seed.csv"]
    assert len(rows) == 10 and all(float(row["clicks_per_session"]) >= 0 for row in rows)
    record = json.loads((out / "parts" / "mixed" / "seed1.json").read_text())
    assert all(entry["torch_threads"] == 1 and entry["cell_seconds"] > 0 for entry in record["agents"].values())


def test_a_local_process_pool_stores_the_same_numbers(sequential, tmp_path):
    result = _run(tmp_path, "pool", workers=2)
    assert (result.config["backend"], result.config["workers"]) == ("pool", 2)
    assert _tables(tmp_path) == _tables(sequential[0])


def test_ray_tasks_on_a_local_instance_store_the_same_numbers(sequential, tmp_path):
    pytest.importorskip("ray", reason='the Ray backend is an extra: pip install -e ".[ray]"')
    result = _run(tmp_path, "ray", workers=2)
    assert (result.config["backend"], result.config["workers"]) == ("ray", 2)
    assert _tables(tmp_path) == _tables(sequential[0])


def test_an_interrupted_run_resumes_with_only_the_missing_cells(sequential, tmp_path):
    calls = {"Counted": 0, "Interrupting": 0}

    @reads_budget()
    def counted(ctx):
        calls["Counted"] += 1
        return REFERENCE_AGENTS["Random"](ctx)

    @reads_budget("logged_users")
    def interrupting(ctx):
        calls["Interrupting"] += 1
        if calls["Interrupting"] == 1:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run
        return REFERENCE_AGENTS["Popularity"](ctx)

    agents = {"Random": AGENTS["Random"], "Counted": counted, "Interrupting": interrupting,
              "TopicQLearning": AGENTS["TopicQLearning"], "Oracle": AGENTS["Oracle"], "PPO": AGENTS["PPO"]}
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "sequential", agents=agents)
    assert calls == {"Counted": 1, "Interrupting": 1}  # seed 0: Random and Counted were stored
    result = _run(tmp_path, "sequential", agents=agents)
    assert calls == {"Counted": 2, "Interrupting": 3}  # only seed 1's Counted, both Interrupting cells
    assert (result.config["cells_run"], result.config["cells_stored"]) == (10, 2)
    # What was stored before the interruption and what was run after it give the numbers a whole run gives.
    renamed = {"Counted": "Random", "Interrupting": "Popularity"}
    expected = {(row["agent"], row["seed"]): row["clicks_per_session"] for row in _tables(sequential[0])["per_seed.csv"]}
    for row in _tables(tmp_path)["per_seed.csv"]:
        assert row["clicks_per_session"] == expected[(renamed.get(row["agent"], row["agent"]), row["seed"])]


def test_a_changed_config_or_budget_never_reuses_a_stale_cell(sequential, tmp_path):
    _run(tmp_path, "sequential", seeds=(0,))
    assert _run(tmp_path, "sequential", seeds=(0,)).config["cells_run"] == 0  # all stored
    more_users = _run(tmp_path, "sequential", seeds=(0,), budget=replace(TINY, eval_users=30))
    assert more_users.config["cells_run"] == 5  # other held-out users: every cell again
    longer = _run(tmp_path, "sequential", seeds=(0,), budget=replace(TINY, eval_users=30, topic_q_learning=4_000))
    assert (longer.config["cells_run"], longer.config["cells_stored"]) == (1, 4)  # only the learner that reads it


def test_backend_choice_and_worker_counts():
    assert resolve_backend("sequential", None) == ("sequential", 1)
    assert resolve_backend("pool", 3) == ("pool", 3)
    assert resolve_backend("auto", 1) == ("sequential", 1)
    assert resolve_backend("auto", 2) == ("pool", 2)
    with pytest.raises(ValueError, match="unknown backend 'dask'"):
        resolve_backend("dask", None)
    with pytest.raises(ValueError, match="workers 0: must be a whole number of at least 1"):
        RunSettings(backend="pool", workers=0)
    with pytest.raises(ValueError, match="threads 0: must be a whole number of at least 1"):
        RunSettings(threads=0)


def test_the_schedule_projection_is_longest_first_onto_the_free_worker(tmp_path):
    from benchmarks.cell_schedule import cell_seconds, lpt_makespan

    times = [5, 4, 3, 3, 3]
    assert lpt_makespan(times, 1) == 18 and lpt_makespan(times, 64) == 5
    assert lpt_makespan(times, 2) == 10  # 5+3 | 4+3+3: LPT's answer (the best split, 9, is 5+4 | 3+3+3)
    # A part with one cell that recorded its time and two stored before cells did (estimated).
    part = tmp_path / "parts" / "mixed"
    part.mkdir(parents=True)
    (part / "seed3.json").write_text(json.dumps({"wall_seconds": 100.0, "agents": {
        "A": {"train_seconds": 10.0, "cell_seconds": 30.0},
        "B": {"train_seconds": 20.0},
        "C": {"train_seconds": 0.0},
    }}))
    # 100 s in all: A's 30 measured, B and C trained 20 s, and share the other 50 s.
    assert cell_seconds(tmp_path) == [("mixed", 3, "A", 30.0, True), ("mixed", 3, "B", 45.0, False),
                                      ("mixed", 3, "C", 25.0, False)]


def test_a_cell_that_fails_in_a_worker_stops_the_pool_with_its_error(tmp_path):
    def failing(ctx):
        raise RuntimeError("this agent cannot be built")

    agents = {"Random": AGENTS["Random"], "Failing": failing, "Oracle": AGENTS["Oracle"]}
    with pytest.raises(RuntimeError, match="this agent cannot be built"):
        _run(tmp_path, "pool", workers=2, agents=agents)
    # What finished before the failure is stored whole (never a part whose record lies about its
    # sessions), and a run without the failing agent completes from there.
    for record_path in (tmp_path / "parts" / "mixed").glob("seed*.json"):
        record = json.loads(record_path.read_text())
        assert set(record["agents"]) <= {"Random", "Oracle"}
        with np.load(record_path.with_suffix(".npz")) as sessions:
            assert {key.split("/")[0] for key in sessions.files} == {f"a{e['index']}" for e in record["agents"].values()}
    result = _run(tmp_path, "sequential", agents={"Random": AGENTS["Random"], "Oracle": AGENTS["Oracle"]})
    assert result.config["cells_run"] == 4 - result.config["cells_stored"]
