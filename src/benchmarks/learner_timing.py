"""A learner's training user-steps per second as the comparison trains it, and the record of one
timing (:class:`Measurement`), shared by the throughput and learner-arithmetic commands."""

from __future__ import annotations

import time
from dataclasses import dataclass

from recenv.threads import torch_threads

__all__ = ["LEARNERS", "Measurement", "measure_learner"]


@dataclass
class Measurement:
    kind: str  # "single", "sync", "native"; "sb3-ppo make_vec_env", "sb3-ppo SB3VecEnv" (training)
    num_envs: int
    device: str
    obs_mode: str
    user_steps: int
    seconds: float
    slate_size: int = 1
    threads: int = 0  # torch threads of a learner row (0: the process's, the env rows)

    @property
    def user_steps_per_second(self) -> float:
        return self.user_steps / self.seconds


LEARNERS = {"DQN-embedding": "`DQNAgent` (embedding head)", "PPO": "`PPOAgent`"}
"""The learners ``--learners`` can time (names of :data:`benchmarks.agent_registry.REFERENCE_AGENTS`),
with their names in the table."""


def measure_learner(name: str, total_steps: int, threads: int, seed: int = 0) -> Measurement:
    """Training user-steps/s of a learner of :data:`LEARNERS` as the comparison trains it: its
    factory in :data:`benchmarks.agent_registry.REFERENCE_AGENTS`, given the comparison's training
    env (:func:`benchmarks.cells.training_env` of the default config, through the public view) and
    a budget of ``total_steps`` user-steps, on ``threads`` torch threads; the whole factory call
    (construction and ``learn``) is timed."""
    import dataclasses

    from benchmarks.agent_registry import REFERENCE_AGENTS, Budget, Context
    from benchmarks.cells import TRAINING_USERS, training_env
    from recenv import EnvConfig
    from recenv.public_view import public_view

    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; known: {list(LEARNERS)}")
    budget = Budget(**{f.name: total_steps for f in dataclasses.fields(Budget)})
    context = Context(public_view(training_env(EnvConfig())), None, seed, budget, "cpu", progress=False)
    with torch_threads(threads):
        start = time.perf_counter()
        agent = REFERENCE_AGENTS[name](context)
        seconds = time.perf_counter() - start
    return Measurement(f"learner {name}", TRAINING_USERS, "cpu", "encoded", int(agent.log.history[-1]["steps"]),
                       seconds, threads=threads)
