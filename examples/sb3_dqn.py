"""Stable-Baselines3's DQN on DriftingUser-v0: an SB3 model is an agent as it is, no wrapper needed.

    python examples/sb3_dqn.py [--steps 50000]
"""

import argparse

import gymnasium as gym
from stable_baselines3 import DQN

import recenv  # noqa: F401
from agents import RandomAgent, run_sessions

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=50_000)
args = parser.parse_args()

env = gym.make("DriftingUser-v0")
model = DQN("MlpPolicy", env, learning_rate=5e-4, buffer_size=100_000, learning_starts=5_000, batch_size=256,
            gamma=0.9, train_freq=4, target_update_interval=2_000, exploration_fraction=0.3,
            policy_kwargs={"net_arch": [256, 256]}, seed=0, verbose=0)
model.learn(total_timesteps=args.steps)

evaluation = dict(num_users=1000, seed=10_000, progress=False)
for name, agent in (("SB3 DQN", model), ("Random", RandomAgent(env))):
    records = run_sessions(agent, **evaluation)  # the SB3 model goes in unchanged
    print(f"{name:8s} clicks/session {records.returns.mean():6.2f}")
