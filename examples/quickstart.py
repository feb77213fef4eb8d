"""Quickstart: make the environment, watch one session, and score a random recommender.

    python examples/quickstart.py
"""

import gymnasium as gym

import recenv  # noqa: F401  (registers DriftingUser-v0)
from agents import RandomAgent

env = gym.make("DriftingUser-v0", render_mode="ansi")  # default: preset "mixed", LSTM-encoded observations
observation, info = env.reset(seed=0)
print("observation:", observation.shape, "— the LSTM state after the user's 20-interaction past")

agent = RandomAgent(env, seed=0)
clicks, steps = 0.0, 0
terminated = truncated = False
while not (terminated or truncated):
    action, _ = agent.predict(observation)
    observation, reward, terminated, truncated, info = env.step(action)
    clicks += reward
    steps += 1
print(env.render())
print(f"random recommendations: {clicks:.0f} clicks in {steps} steps "
      f"({'the user left' if terminated else 'the session hit the horizon'})")
print("ground truth in info:", {k: round(v, 3) if isinstance(v, float) else v for k, v in info.items()})
