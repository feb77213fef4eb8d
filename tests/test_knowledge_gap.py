"""benchmarks.knowledge_gap: the four cells, the privileged diagnostic, and its table."""

import numpy as np

from benchmarks import knowledge_gap
from benchmarks.command_line import main
from recenv import DriftingUserVectorEnv, EnvConfig


def test_the_click_model_with_item_costs_ranks_by_the_ratio_index_without_repeats():
    env = DriftingUserVectorEnv(num_envs=4, config=EnvConfig(preset="mixed"))
    agent = knowledge_gap.ClickModelWithItemCosts(env)
    assert agent.privileged
    observation, _ = env.reset(seed=0)
    first, state = agent.predict(observation)
    p = agent.click_probabilities(observation)
    from agents.farsighted_oracle import farsighted_index

    expected = farsighted_index(p, env.catalog.quality, env.catalog.clickbait, env.user_model, rule="ratio").argmax(1)
    np.testing.assert_array_equal(first, expected)
    second, _ = agent.predict(observation, state)  # the same state again: the first items are not re-shown
    assert (second != first).all()


def test_four_cells_and_a_table(tmp_path):
    text = main(["knowledge-gap", "--presets", "mixed", "--eval-users", "60", "--torch-threads", "1",
                 "--out", str(tmp_path)])
    assert (tmp_path / "knowledge_gap.md").read_text() == text
    rows = [line for line in text.splitlines() if line.startswith("| `mixed`")]
    assert len(rows) == 4
    clicks = [float(row.split("|")[4].split()[0]) for row in rows]
    assert clicks[3] > clicks[0]  # the far-sighted oracle beats the click model on the same users
    assert "+0.00 [+0.00, +0.00]" in rows[0]  # the baseline against itself
