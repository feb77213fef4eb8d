"""The house runs one way: import-linter's contracts hold, and the runtime loads no offline tooling."""

import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold(monkeypatch):
    # The contracts are in pyproject.toml; lint_imports returns 0 when every one is kept.
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def _recenv_modules_after(code: str) -> list[str]:
    script = code + "\nimport sys\nprint('\\n'.join(sorted(m for m in sys.modules if m.startswith('recenv'))))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_import_recenv_loads_no_offline_tooling():
    loaded = _recenv_modules_after("import recenv")
    assert "recenv.env" in loaded and "recenv.vector_env" in loaded  # the check sees what was imported
    assert [m for m in loaded if m.startswith("recenv.offline")] == []


def test_building_and_stepping_an_env_loads_no_offline_tooling():
    loaded = _recenv_modules_after(
        "import gymnasium as gym, recenv\n"
        "env = gym.make('DriftingUser-v0')\nenv.reset(seed=0)\nenv.step(0)\n"
        "envs = gym.make_vec('DriftingUser-v0', num_envs=3, device='cpu')\nenvs.reset(seed=0)\nenvs.step([0, 1, 2])"
    )
    assert "recenv.encoder" in loaded
    assert [m for m in loaded if m.startswith("recenv.offline")] == []
