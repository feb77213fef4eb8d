"""Train the DQN agent (embedding head) on the vector env and compare it with the supervised LSTM.

    python examples/train_dqn.py [--steps 200000]
"""

import argparse

import gymnasium as gym

import recenv  # noqa: F401
from agents import DQNAgent, DQNConfig, SupervisedLSTMAgent, run_sessions

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=200_000, help="training user-steps")
parser.add_argument("--head", default="embedding", choices=["embedding", "mlp"])
parser.add_argument("--save", default="results/dqn.pt")
args = parser.parse_args()

train_env = gym.make_vec("DriftingUser-v0", num_envs=64)
agent = DQNAgent(train_env, DQNConfig(head=args.head))
agent.learn(train_env, total_timesteps=args.steps)
agent.save(args.save)
print(f"saved {args.save}")

evaluation = dict(num_users=1000, seed=10_000, progress=False)  # held-out users: a seed never used in training
for name, candidate in (("DQN", agent), ("SupervisedLSTM", SupervisedLSTMAgent(train_env))):
    records = run_sessions(candidate, **evaluation)
    print(f"{name:15s} clicks/session {records.returns.mean():6.2f} ± {1.96 * records.returns.std() / len(records) ** 0.5:.2f}")
