"""The examples run end to end (tiny budgets) and print what they promise."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart():
    out = _run("quickstart.py")
    assert "random recommendations:" in out and "clicks in" in out


def test_custom_agent_is_evaluated_next_to_the_references():
    out = _run("custom_agent.py")
    for name in ("RandomAgent", "SupervisedLSTMAgent", "FreshTopicAgent"):
        assert name in out


@pytest.mark.parametrize("script, args, expected", [
    ("train_dqn.py", ["--steps", "3000"], "SupervisedLSTM"),
    ("sb3_dqn.py", ["--steps", "300"], "SB3 DQN"),  # learn() collects 300 steps; learning starts at 5,000 either way
])
def test_training_examples(script, args, expected, tmp_path):
    if script == "train_dqn.py":
        args = [*args, "--save", str(tmp_path / "dqn.pt")]
    out = _run(script, *args)
    assert expected in out and "clicks/session" in out
