"""Thread hygiene: torch's thread count follows the cores a process really gets, and says so."""

import os

import pytest
import torch

from agents.training_log import work_bar
from recenv import threads
from recenv.threads import ThreadChoice, available_cores, cgroup_cpu_quota, choose_torch_threads


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_cgroup_quotas_are_read_in_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) == 1.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(v1) is None
    assert cgroup_cpu_quota(tmp_path / "missing") is None


def test_available_cores_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert available_cores(tmp_path / "missing") == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{100000 * affinity + 1} 100000\n")
    assert available_cores(tmp_path) == affinity  # never above the affinity mask


def test_choice_order_is_request_then_omp_num_threads_then_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_load_average", lambda: 0.2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(8)  # what torch would pick on a big host, in a 2-CPU container
    choice = choose_torch_threads()
    assert (choice.threads, choice.reason) == (2, "one per available core") and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_torch_threads().threads == 1 and torch.get_num_threads() == 1
    choice = choose_torch_threads(2)
    assert (choice.threads, choice.reason) == (2, "asked for") and torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="at least 1"):
        choose_torch_threads(0)


def test_the_description_warns_only_when_threads_outnumber_the_free_cores():
    idle = ThreadChoice(threads=2, cores=2, reason="one per available core", busy=0.3)
    assert not idle.oversubscribed and "warning" not in idle.describe()
    assert "torch threads: 2" in idle.describe() and "2 cores" in idle.describe()
    busy = ThreadChoice(threads=2, cores=2, reason="one per available core", busy=3.0)
    assert busy.oversubscribed and "--torch-threads 1" in busy.describe() and "load average 3.0" in busy.describe()
    single = ThreadChoice(threads=1, cores=2, reason="asked for", busy=3.0)
    assert not single.oversubscribed  # one thread per job is the advice itself
    assert ThreadChoice(threads=4, cores=2, reason="asked for", busy=None).oversubscribed


def test_learners_and_evaluation_cap_threads_at_the_cores_and_show_the_count(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    torch.set_num_threads(2)
    bar = work_bar(10, "DQN", "step", progress=True)
    assert torch.get_num_threads() == 1 and bar.desc == "DQN [1 torch thread]"
    bar.close()


def test_torch_threads_sets_the_count_for_the_block_and_puts_back_the_one_it_found_even_on_error():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with threads.torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), threads.torch_threads(other):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
