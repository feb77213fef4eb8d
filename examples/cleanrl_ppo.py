"""PPO on DriftingUser-v0 in one file, in the style of CleanRL's ``ppo.py``.

    python examples/cleanrl_ppo.py [--total-timesteps 500000] [--num-envs 64] [--cuda]
    tensorboard --logdir runs

Modelled on CleanRL (Huang et al., 2022, https://github.com/vwxyzjn/cleanrl, ``cleanrl/ppo.py``;
https://docs.cleanrl.dev/rl-algorithms/ppo/): an ``Args`` dataclass, an explicit rollout-then-update
loop, TensorBoard logs under ``runs/{run_name}`` (``charts/episodic_return``,
``charts/episodic_length``, ``charts/SPS``, ``losses/*``). Written for recenv and Gymnasium 1.x,
which changes these things against CleanRL's script (written for Gymnasium 0.29):

- the environment is recenv's native vector env (``gym.make_vec``: all users as one batch of
  tensors, no ``SyncVectorEnv`` of single users), wrapped in Gymnasium's *vector*
  ``RecordEpisodeStatistics``, which reports finished sessions in ``info["episode"]`` masked by
  ``info["_episode"]`` (Gymnasium 0.29 used ``info["final_info"]``, a list of dicts);
- autoreset is next-step: after a session ends, the next ``step()`` resets that user, ignores its
  action and returns the new user's first observation with reward 0. That step is no transition,
  so it is left out of the update (the ``valid`` mask below);
- the policy has 500 actions (one per catalog item), hence wider layers (256 units against
  CleanRL's 64), a larger learning rate (3e-3) and shorter rollouts (16 steps of 64 users).

``global_step`` counts user-steps, reset steps included, as CleanRL counts environment steps.
Rewards are clicks, so an episodic return is the number of clicks in a session.

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
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn, optim
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter

import recenv  # noqa: F401  (registers DriftingUser-v0)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment (network initialisation, action sampling, minibatch shuffles, the users)"""
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
    num_envs: int = 64
    """the number of users simulated in parallel (one batch of tensors)"""

    # Algorithm specific arguments
    total_timesteps: int = 500_000
    """total user-steps of the experiment"""
    learning_rate: float = 3e-3
    """the learning rate of the optimizer (3e-3 as in `agents.PPOConfig`, where 3e-4 hardly moved the policy in 500k steps)"""
    hidden_size: int = 256
    """width of the hidden layers of the actor and the critic"""
    num_steps: int = 16
    """the number of steps to run in each environment per policy rollout"""
    anneal_lr: bool = True
    """Toggle learning rate annealing for policy and value networks"""
    gamma: float = 0.99
    """the discount factor gamma (clickbait costs patience; the cost shows over the rest of the session)"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches"""
    update_epochs: int = 4
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """Toggles advantages normalization"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """Toggles whether or not to use a clipped loss for the value function, as per the paper."""
    ent_coef: float = 0.01
    """coefficient of the entropy (a uniform choice among 500 items has entropy ln 500 = 6.2)"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float | None = None
    """the target KL divergence threshold"""

    # to be filled in runtime
    batch_size: int = field(default=0, init=False)
    """the batch size (computed in runtime)"""
    minibatch_size: int = field(default=0, init=False)
    """the mini-batch size (computed in runtime)"""
    num_iterations: int = field(default=0, init=False)
    """the number of iterations (computed in runtime)"""


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
        if not arg.init:  # computed at runtime
            continue
        flag, help_text = "--" + arg.name.replace("_", "-"), f"{docs.get(arg.name, '')} (default: {arg.default})"
        if arg.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=arg.default, help=help_text)
        else:
            value_type = float if arg.type == (float | None) else arg.type
            parser.add_argument(flag, type=value_type, default=arg.default, help=help_text)
    return Args(**vars(parser.parse_args()))


def layer_init(layer, std=2**0.5, bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, envs, hidden_size):
        super().__init__()
        observation_size = int(np.prod(envs.single_observation_space.shape))
        self.critic = nn.Sequential(
            layer_init(nn.Linear(observation_size, hidden_size)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden_size, hidden_size)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden_size, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(observation_size, hidden_size)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden_size, hidden_size)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden_size, envs.single_action_space.n), std=0.01),
        )

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


if __name__ == "__main__":
    args = parse_args()
    args.batch_size = int(args.num_envs * args.num_steps)
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    args.num_iterations = args.total_timesteps // args.batch_size
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(os.path.join(args.log_dir, run_name))
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n" + "\n".join(f"|{key}|{value}|" for key, value in vars(args).items()),
    )

    # seeding: torch's generator drives initialisation and action sampling, `rng` the minibatch
    # shuffles, and the env seeds its own generator from `reset(seed=...)`
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

    agent = Agent(envs, args.hidden_size).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # ALGO Logic: Storage setup
    obs = torch.zeros((args.num_steps, args.num_envs) + envs.single_observation_space.shape).to(device)
    actions = torch.zeros((args.num_steps, args.num_envs) + envs.single_action_space.shape).to(device)
    logprobs = torch.zeros((args.num_steps, args.num_envs)).to(device)
    rewards = torch.zeros((args.num_steps, args.num_envs)).to(device)
    dones = torch.zeros((args.num_steps, args.num_envs)).to(device)
    values = torch.zeros((args.num_steps, args.num_envs)).to(device)

    # start the sessions
    global_step = 0
    start_time = time.time()
    recent_returns = deque(maxlen=100)
    next_obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.Tensor(next_obs).to(device)
    next_done = torch.zeros(args.num_envs).to(device)

    for iteration in range(1, args.num_iterations + 1):
        # Annealing the rate if instructed to do so.
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            lrnow = frac * args.learning_rate
            optimizer.param_groups[0]["lr"] = lrnow

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            # dones[step] = 1: the session of this user ended in the previous step, so this step
            # resets it (next-step autoreset) and is no transition of the policy
            dones[step] = next_done

            # ALGO LOGIC: action logic
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            # execute the step and log the sessions that ended
            next_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            # A truncated session is treated as terminated: no bootstrap from its last observation,
            # as in CleanRL (sessions reach the 200-step horizon rarely: most end when patience runs out).
            next_done = np.logical_or(terminations, truncations)
            rewards[step] = torch.tensor(reward).to(device).view(-1)
            next_obs, next_done = torch.Tensor(next_obs).to(device), torch.Tensor(next_done).to(device)

            if "episode" in infos:
                for user in np.flatnonzero(infos["_episode"]):
                    episodic_return, episodic_length = float(infos["episode"]["r"][user]), int(infos["episode"]["l"][user])
                    recent_returns.append(episodic_return)
                    writer.add_scalar("charts/episodic_return", episodic_return, global_step)
                    writer.add_scalar("charts/episodic_length", episodic_length, global_step)

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards).to(device)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    # 0 when step t+1 is a reset step, i.e. step t ended the session: the chain
                    # of advantages stops there and the reset step's own advantage is unused
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
            returns = advantages + values

        # flatten the batch, keeping the transitions only (the reset steps ignored the action)
        valid = (dones == 0).reshape(-1)
        b_obs = obs.reshape((-1,) + envs.single_observation_space.shape)[valid]
        b_logprobs = logprobs.reshape(-1)[valid]
        b_actions = actions.reshape((-1,) + envs.single_action_space.shape)[valid]
        b_advantages = advantages.reshape(-1)[valid]
        b_returns = returns.reshape(-1)[valid]
        b_values = values.reshape(-1)[valid]
        num_transitions = len(b_obs)
        minibatch_size = max(1, num_transitions // args.num_minibatches)

        # Optimizing the policy and value network
        b_inds = np.arange(num_transitions)
        clipfracs = []
        for epoch in range(args.update_epochs):
            rng.shuffle(b_inds)
            for start in range(0, num_transitions - minibatch_size + 1, minibatch_size):
                end = start + minibatch_size
                mb_inds = b_inds[start:end]

                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions.long()[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                with torch.no_grad():
                    # calculate approx_kl http://joschu.net/blog/kl-approx.html
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                # Policy loss
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # Value loss
                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds],
                        -args.clip_coef,
                        args.clip_coef,
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
                    v_loss = 0.5 * v_loss_max.mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

        # record the training curves
        sps = int(global_step / (time.time() - start_time))
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", np.mean(clipfracs), global_step)
        writer.add_scalar("losses/explained_variance", explained_var, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        if iteration % 20 == 0 or iteration == args.num_iterations:
            recent = f"{np.mean(recent_returns):.2f}" if recent_returns else "n/a"
            print(f"global_step={global_step}, SPS={sps}, mean episodic return (last 100)={recent}")

    envs.close()
    writer.close()
    if recent_returns:
        print(f"mean episodic return of the last {len(recent_returns)} episodes: {np.mean(recent_returns):.2f}")
    else:
        print("no episode ended: raise --total-timesteps")
