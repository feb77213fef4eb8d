"""DQN on DriftingUser-v0 in one file, in the style of CleanRL's ``dqn.py``.

    python examples/cleanrl_dqn.py [--total-timesteps 500000] [--num-envs 16] [--cuda]
    tensorboard --logdir runs

Modelled on CleanRL (Huang et al., 2022, https://github.com/vwxyzjn/cleanrl, ``cleanrl/dqn.py``;
https://docs.cleanrl.dev/rl-algorithms/dqn/): an ``Args`` dataclass, an explicit act-store-learn
loop, a target network copied every few steps, a linear ε schedule, TensorBoard logs under
``runs/{run_name}`` (``charts/episodic_return``, ``charts/episodic_length``, ``charts/SPS``,
``losses/td_loss``, ``losses/q_values``). Written for recenv and Gymnasium 1.x, which changes
these things against CleanRL's script (written for Gymnasium 0.29, one environment):

- the environment is recenv's native vector env (``gym.make_vec``: ``num_envs`` users as one batch
  of tensors), wrapped in Gymnasium's *vector* ``RecordEpisodeStatistics``, which reports finished
  sessions in ``info["episode"]`` masked by ``info["_episode"]`` (Gymnasium 0.29:
  ``info["final_info"]``); every user explores with its own ε-draw;
- autoreset is next-step, so there is no ``info["final_observation"]``: the step that ends a
  session returns its real last observation (truncated sessions bootstrap from it, terminated ones
  do not), and the following step resets the user, ignores its action and returns the new user's
  first observation with reward 0. That reset step is no transition and stays out of the replay
  buffer (``resetting`` below);
- the replay buffer is a few tensors in this file rather than ``cleanrl_utils.buffers``.

``global_step`` counts user-steps, reset steps included. Rewards are clicks, so an episodic return
is the number of clicks in a session.

Measured (speed, and what it learns with the default arguments):
docs/results/throughput.md, "The CleanRL-style examples".
"""

import argparse
import ast
import dataclasses
import inspect
import itertools
import os
import time
from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn, optim
from torch.utils.tensorboard import SummaryWriter

import recenv  # noqa: F401  (registers DriftingUser-v0)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment (network initialisation, exploration, replay sampling, the users)"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """if toggled, train (and simulate the users) on CUDA when it is available"""
    log_dir: str = "runs"
    """TensorBoard logs go to `{log_dir}/{run_name}`"""

    # Environment arguments
    env_id: str = "DriftingUser-v0"
    """the id of the environment"""
    preset: str = "mixed"
    """which interest drift the users have: none | smooth | abrupt | mixed"""
    max_episode_steps: int = 200
    """the horizon: sessions are truncated after this many steps (most end earlier, when patience runs out)"""
    num_envs: int = 16
    """the number of users simulated in parallel (one batch of tensors)"""

    # Algorithm specific arguments
    total_timesteps: int = 500_000
    """total user-steps of the experiment"""
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer"""
    hidden_size: int = 256
    """width of the two hidden layers of the Q-network"""
    buffer_size: int = 100_000
    """the replay memory buffer size (transitions)"""
    gamma: float = 0.95
    """the discount factor gamma (a horizon of about 20 steps, the length of a session)"""
    tau: float = 1.0
    """the target network update rate"""
    target_network_frequency: int = 500
    """the vector steps it takes to update the target network"""
    batch_size: int = 128
    """the batch size of sample from the reply memory"""
    start_e: float = 1.0
    """the starting epsilon for exploration"""
    end_e: float = 0.05
    """the ending epsilon for exploration"""
    exploration_fraction: float = 0.1
    """the fraction of `total-timesteps` it takes from start-e to go end-e"""
    learning_starts: int = 10_000
    """user-step to start learning"""
    train_frequency: int = 1
    """the vector steps (of `num-envs` user-steps each) between two gradient steps"""


def parse_args() -> Args:
    """``Args`` from the command line: one ``--flag-name`` per field (``--cuda``/``--no-cuda`` for
    booleans), the field's docstring as its help. A small stand-in for CleanRL's ``tyro.cli(Args)``."""
    class_body = ast.parse(inspect.getsource(Args)).body[0].body
    docs = {
        node.target.id: doc.value.value
        for node, doc in itertools.pairwise(class_body)
        if isinstance(node, ast.AnnAssign) and isinstance(doc, ast.Expr)
    }
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for arg in dataclasses.fields(Args):
        flag, help_text = "--" + arg.name.replace("_", "-"), f"{docs.get(arg.name, '')} (default: {arg.default})"
        if arg.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=arg.default, help=help_text)
        else:
            parser.add_argument(flag, type=arg.type, default=arg.default, help=help_text)
    return Args(**vars(parser.parse_args()))


class ReplayBuffer:
    """The last ``capacity`` transitions (s, a, r, s', terminated), in tensors on ``device``.

    ``terminated`` only: a truncated session's last observation is real (next-step autoreset
    returns it), so its value is bootstrapped as for any other step.
    """

    def __init__(self, capacity, observation_shape, device):
        self.observations = torch.zeros((capacity, *observation_shape), device=device)
        self.next_observations = torch.zeros((capacity, *observation_shape), device=device)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.terminations = torch.zeros(capacity, device=device)
        self.capacity, self.size, self.position, self.device = capacity, 0, 0, device

    def add(self, obs, next_obs, actions, rewards, terminations):
        """Store a batch of transitions (numpy arrays with a leading batch axis)."""
        index = torch.as_tensor((self.position + np.arange(len(actions))) % self.capacity, device=self.device)
        self.observations[index] = torch.as_tensor(obs, device=self.device)
        self.next_observations[index] = torch.as_tensor(next_obs, device=self.device)
        self.actions[index] = torch.as_tensor(actions, device=self.device)
        self.rewards[index] = torch.as_tensor(rewards, dtype=torch.float32, device=self.device)
        self.terminations[index] = torch.as_tensor(terminations, dtype=torch.float32, device=self.device)
        self.position = (self.position + len(actions)) % self.capacity
        self.size = min(self.size + len(actions), self.capacity)

    def sample(self, batch_size, rng):
        """``batch_size`` transitions drawn uniformly, with replacement, by the numpy generator ``rng``."""
        index = torch.as_tensor(rng.integers(self.size, size=batch_size), device=self.device)
        return (
            self.observations[index],
            self.actions[index],
            self.rewards[index],
            self.next_observations[index],
            self.terminations[index],
        )


# ALGO LOGIC: initialize agent here:
class QNetwork(nn.Module):
    def __init__(self, envs, hidden_size):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(int(np.prod(envs.single_observation_space.shape)), hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, envs.single_action_space.n),
        )

    def forward(self, x):
        return self.network(x)


def linear_schedule(start_e: float, end_e: float, duration: float, t: int):
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


if __name__ == "__main__":
    args = parse_args()
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(os.path.join(args.log_dir, run_name))
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n" + "\n".join(f"|{key}|{value}|" for key, value in vars(args).items()),
    )

    # seeding: torch's generator drives the initialisation, `rng` the exploration and the replay
    # sampling, and the env seeds its own generator from `reset(seed=...)`
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    # env setup: one native vector env for all users, on the training device
    envs = gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        preset=args.preset,
        max_episode_steps=args.max_episode_steps,
        device=device.type,
    )
    envs = RecordEpisodeStatistics(envs)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only discrete action space is supported"
    num_items = envs.single_action_space.n

    q_network = QNetwork(envs, args.hidden_size).to(device)
    optimizer = optim.Adam(q_network.parameters(), lr=args.learning_rate)
    target_network = QNetwork(envs, args.hidden_size).to(device)
    target_network.load_state_dict(q_network.state_dict())

    rb = ReplayBuffer(args.buffer_size, envs.single_observation_space.shape, device)
    start_time = time.time()
    recent_returns = deque(maxlen=100)

    # start the sessions
    obs, _ = envs.reset(seed=args.seed)
    # True for a user whose session ended in the previous step: its next step is a reset step
    resetting = np.zeros(args.num_envs, dtype=bool)
    num_iterations = args.total_timesteps // args.num_envs
    for iteration in range(1, num_iterations + 1):
        global_step = iteration * args.num_envs

        # ALGO LOGIC: put action logic here (each user explores with its own draw)
        epsilon = linear_schedule(args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps, global_step)
        with torch.no_grad():
            greedy = torch.argmax(q_network(torch.as_tensor(obs, device=device)), dim=1).cpu().numpy()
        explore = rng.random(args.num_envs) < epsilon
        actions = np.where(explore, rng.integers(num_items, size=args.num_envs), greedy)

        # execute the step and log the sessions that ended
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        if "episode" in infos:
            for user in np.flatnonzero(infos["_episode"]):
                episodic_return, episodic_length = float(infos["episode"]["r"][user]), int(infos["episode"]["l"][user])
                recent_returns.append(episodic_return)
                writer.add_scalar("charts/episodic_return", episodic_return, global_step)
                writer.add_scalar("charts/episodic_length", episodic_length, global_step)

        # save data to the replay buffer, leaving out the reset steps (action ignored, reward 0,
        # the next observation belongs to a new user): there is no `final_observation` to handle
        transition = ~resetting
        rb.add(obs[transition], next_obs[transition], actions[transition], rewards[transition], terminations[transition])
        resetting = np.logical_or(terminations, truncations)

        # CRUCIAL step easy to overlook
        obs = next_obs

        # ALGO LOGIC: training.
        if global_step > args.learning_starts:
            if iteration % args.train_frequency == 0:
                observations, taken, clicks, next_observations, terminated = rb.sample(args.batch_size, rng)
                with torch.no_grad():
                    target_max, _ = target_network(next_observations).max(dim=1)
                    td_target = clicks + args.gamma * target_max * (1 - terminated)
                old_val = q_network(observations).gather(1, taken.unsqueeze(1)).squeeze(1)
                loss = F.mse_loss(td_target, old_val)

                if iteration % 100 == 0:
                    writer.add_scalar("losses/td_loss", loss.item(), global_step)
                    writer.add_scalar("losses/q_values", old_val.mean().item(), global_step)

                # optimize the model
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            # update target network
            if iteration % args.target_network_frequency == 0:
                for target_network_param, q_network_param in zip(target_network.parameters(), q_network.parameters()):
                    target_network_param.data.copy_(
                        args.tau * q_network_param.data + (1.0 - args.tau) * target_network_param.data
                    )

        if iteration % 100 == 0:
            sps = int(global_step / (time.time() - start_time))
            writer.add_scalar("charts/epsilon", epsilon, global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            if iteration % 2000 == 0:
                recent = f"{np.mean(recent_returns):.2f}" if recent_returns else "n/a"
                print(f"global_step={global_step}, SPS={sps}, mean episodic return (last 100)={recent}")

    envs.close()
    writer.close()
    if recent_returns:
        print(f"mean episodic return of the last {len(recent_returns)} episodes: {np.mean(recent_returns):.2f}")
    else:
        print("no episode ended: raise --total-timesteps")
