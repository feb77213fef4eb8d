"""benchmarks.clickbait_diagnostic runs end to end and its clickbait-free variants show no clickbait."""

import json

from benchmarks.command_line import main


def test_diagnostic_runs_and_the_no_clickbait_variants_show_none(tmp_path):
    main(["clickbait-diagnostic", "--torch-threads", "1", "--presets", "mixed", "--eval-users", "30", "--dqn-steps", "600",
                               "--out", str(tmp_path)])
    rows = {row["agent"]: row for row in json.loads((tmp_path / "diagnostic.json").read_text())["rows"]}
    assert {"StaticProfile", "SupervisedLSTM", "Oracle", "DQN-embedding"} <= set(rows)
    for name in ("SupervisedLSTM, no clickbait (diagnostic)", "Oracle, no clickbait (diagnostic)"):
        assert rows[name]["clickbait_share"] == 0.0
    lstm = rows["SupervisedLSTM"]
    assert 0 < lstm["true_click_probability"] < 1 and 0 < lstm["predicted_click_probability"] < 1
    assert "| mixed | Oracle |" in (tmp_path / "diagnostic.md").read_text()
