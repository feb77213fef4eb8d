"""benchmarks/throughput.py runs end to end and writes its table (timings are not asserted)."""

import csv
import json

from benchmarks.command_line import main


def test_throughput_script_writes_markdown_csv_and_json(tmp_path):
    main(["throughput", "--torch-threads", "1", "--sizes", "1", "8", "--sync-max", "8", "--seconds", "0.05", "--obs-modes", "ids",
                     "--sb3-ppo-users", "2", "--sb3-ppo-steps", "256", "--slate-sizes", "3", "--slate-users", "4",
                     "--learners", "DQN-embedding", "PPO", "--learner-steps", "128", "--learner-threads", "1",
                     "--out", str(tmp_path)])
    with open(tmp_path / "throughput.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["kind"], r["num_envs"]) for r in rows] == [
        ("cartpole", "1"), ("single", "1"), ("sync", "1"), ("sync", "8"), ("native", "1"), ("native", "8"),
        ("native-lean", "8"), ("native", "4"), ("native-lean", "4"), ("sb3-ppo make_vec_env", "2"),
        ("sb3-ppo SB3VecEnv", "2"), ("learner DQN-embedding", "64"), ("learner PPO", "64"),
    ]
    assert [r["slate_size"] for r in rows[-6:-4]] == ["3", "3"]
    assert [int(r["user_steps"]) for r in rows[-4:-2]] == [256, 256]  # one PPO rollout of 128 steps x 2 users
    assert [r["threads"] for r in rows[-2:]] == ["1", "1"]
    assert all(int(r["user_steps"]) >= 128 for r in rows[-2:])  # the learners' own counts: at least the budget
    assert all(float(r["user_steps_per_second"]) > 0 for r in rows)
    report = json.loads((tmp_path / "throughput.json").read_text())
    assert report["environment"]["torch"] and "--sizes" in report["command"]
    text = (tmp_path / "throughput.md").read_text()
    assert "| native vector env | 8 | cpu | ids |" in text and "Hardware:" in text and "Command:" in text
    assert "| native vector env, `ground_truth=False` | 8 | cpu | ids |" in text and "| Gymnasium `CartPole-v1`" in text
    assert "| `recenv.sb3.SB3VecEnv` over the native vector env | 2 | 256 |" in text
    assert "| native vector env, slates of 3 | 4 | cpu | ids |" in text
    assert "| `DQNAgent` (embedding head) | 64 | 1 |" in text and "| `PPOAgent` | 64 | 1 |" in text
