"""benchmarks/realism.py runs end to end on fixture data and writes its report, plots and parameters."""

import csv
import json

import pytest
import torch
from movielens_fixture import write_grouplens

from benchmarks import realism
from benchmarks.command_line import main
from recenv.params import load_params_file


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()  # the script sets its own (--threads)
    yield
    torch.set_num_threads(threads)


def test_realism_script_writes_report_plots_and_fitted_parameters(tmp_path):
    data = write_grouplens(tmp_path / "ml-100k")
    out = tmp_path / "out"
    shipped = realism.PACKAGE_PARAMS.read_bytes()
    main(["realism", "--torch-threads", "1", "--data", str(data), "--quick", "--window", "5", "--max-lag", "3", "--out", str(out)])
    assert realism.PACKAGE_PARAMS.read_bytes() == shipped  # only --write-params touches the package

    summary = json.loads((out / "realism.json").read_text())
    gaps = summary["max_abs_drift_curve_gap"]
    assert set(gaps) == {"default", "fitted"} and all(0 <= value <= 2 for value in gaps.values())
    assert summary["data"]["users"] == 8 and "--quick" in summary["command"]
    rows = list(csv.DictReader(open(out / "drift_curves.csv")))
    assert [row["lag"] for row in rows] == ["1", "2", "3"]
    # The report's gap is the largest |real − simulated| of the curves it lists.
    largest = max(abs(float(row["real"]) - float(row["fitted"])) for row in rows)
    assert abs(largest - gaps["fitted"]) < 1e-9

    report = (out / "realism.md").read_text()
    assert "Maximum absolute gap" in report and f"| {gaps['default']:.3f} |" in report
    assert "Command:" in report and "Hardware:" in report
    for name in ("drift_curve.png", "statistics.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fitted = load_params_file(out / "ml100k_params.json")
    assert fitted.to_dict() == summary["fitted_params"]
