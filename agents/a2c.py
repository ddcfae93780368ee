"""A2C with backpropagation through the whole episode (Backpropamine's maze trainer).

Read top to bottom: :class:`Config` says what can be set, :func:`build_policy_for`
builds the network, :func:`run_episodes` plays one batch of episodes in lock-step
through the batched maze while keeping the autograd graph, :func:`a2c_loss` turns
them into the loss, and :func:`train` is the loop with logging, checkpoints and
resume.

The loss follows Backpropamine (Miconi et al. 2019), DESIGN.md §4:

- Monte-Carlo returns ``R_t = r_t + γ R_{t+1}`` (γ = 0.9) over the full episode;
- policy-gradient term ``-log π(a_t) (R_t - V_t)`` with the advantage detached;
- value loss ``0.1 (R_t - V_t)²``;
- a penalty ``0.03 Σ_a π(a)²`` standing in for the entropy bonus;
- averaged over the batch and the episode length; Adam (lr 1e-4), gradient norm clipped at 4.

One deliberate difference from the original code: there, every episode of the
batch used *batch element 0's* value estimate as its baseline (``vs[t][0]``);
here each episode uses its own ``V_t``, which is what A2C means and gives
lower-variance gradients.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional

import torch
from torch import Tensor

from plastic_rl.config import ConfigError, check_device, check_seed
from plastic_rl.plasticity import MODULATIONS, RULES
from plastic_rl.policies import RecurrentActorCritic, count_parameters, export_policy
from plastic_rl.runs import CHECKPOINT_FILE, METRICS_FILE, Run, plot_curves, read_metrics

from plastic_rl.envs.maze import OBS_SIZE, MazeVectorEnv

__all__ = ["Config", "Rollout", "build_policy_for", "run_episodes", "a2c_loss", "a2c_update", "make_optimizer", "train"]

CURVE_FILE = "learning_curve.png"
#: Config fields a resumed run may change (recorded in run.json); every other field must match the run's.
RESUMABLE_FIELDS = ("iterations", "learning_rate", "device", "num_threads", "checkpoint_every", "tensorboard", "progress")
METRIC_FIELDS = (
    "iteration", "episodes", "env_steps", "mean_reward", "loss", "policy_loss", "value_loss",
    "probs_penalty", "grad_norm", "seconds_per_iteration", "wall_time",
)


@dataclass
class Config:
    """Everything a maze A2C run depends on (stored as ``config.yaml`` in the run folder)."""

    # --- the maze (plastic_rl/Maze-v0 arguments)
    maze_size: int = 11  #: side of the grid, walls included (odd, >= 5)
    episode_length: int = 200  #: steps per episode
    reward_value: float = 10.0  #: reward for reaching the reward cell
    wall_penalty: float = 0.0  #: subtracted when the agent bumps into a wall

    # --- the policy (plastic_rl.RecurrentActorCritic)
    cell: str = "rnn"  #: "rnn" (Backpropamine's plastic Elman cell), "lstm", or "spiking" (plastic LIF neurons, leaky readout)
    hidden_size: int = 100  #: recurrent units of the plastic network
    plastic: bool = True  #: False trains the non-plastic baseline
    modulation: str = "simple"  #: "none", "simple" or "retroactive" (ignored when plastic is False)
    rule: str = "hebbian"  #: "hebbian", "oja", "bcm" or "abcd"
    clip: float = 1.0  #: Hebbian traces stay in [-clip, clip]
    match_parameters: bool = True  #: non-plastic only: widen it to the plastic network's parameter count
    random_weights: bool = False  #: rules-only: the cell's weights drawn at random every episode, only plasticity and heads learned (needs plastic, cell rnn)
    binary: bool = False  #: binarized cell: input/recurrent weights sign(W)/sqrt(fan_in) over real hidden weights (straight-through), plasticity and heads real (cell rnn or lstm)
    binary_plasticity: bool = False  #: binarized plasticity: alpha = ±alpha_scale, neuromodulator weights ±1/sqrt(fan_in), straight-through (PlasticityConfig.binary_plasticity)
    alpha_scale: float = 1.0  #: alpha = alpha_scale x its parameter (with binary_plasticity: x its sign); PlasticityConfig.alpha_scale
    alpha_init: float = 0.01  #: alpha starts at alpha_init x U[0, 1] (with binary_plasticity: its hidden value at alpha_init / alpha_scale x U[0, 1]); PlasticityConfig.alpha_init

    # --- A2C (Backpropamine's defaults)
    iterations: int = 1000  #: training iterations; each plays `batch_size` episodes (on resume: the new total)
    batch_size: int = 30  #: episodes per iteration, run in lock-step
    gamma: float = 0.9  #: discount of the Monte-Carlo returns
    value_coef: float = 0.1  #: weight of the value loss
    probs_penalty: float = 0.03  #: weight of Σπ², Backpropamine's stand-in for an entropy bonus
    learning_rate: float = 1e-4  #: Adam step size
    adam_eps: float = 1e-8  #: Adam epsilon (torch's default; Backpropamine's own code used 1e-4, which damps steps of rarely-updated parameters)
    max_grad_norm: float = 4.0  #: gradient-norm clip

    # --- run
    seed: int = 0  #: seeds the network, the action sampling and the mazes
    device: str = "cpu"  #: torch device of the network and of the batched maze
    num_threads: int = 1  #: torch CPU threads (small batches run fastest on one)
    checkpoint_every: int = 50  #: iterations between checkpoints (and always at the end)
    tensorboard: bool = True  #: also write TensorBoard events under RUN_DIR/tb
    progress: bool = True  #: show a progress bar on stderr

    def __post_init__(self) -> None:
        positive = ("maze_size", "episode_length", "hidden_size", "iterations", "batch_size", "checkpoint_every", "num_threads")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer; got {getattr(self, name)!r}.")
        if self.maze_size % 2 == 0 or self.maze_size < 5:
            raise ConfigError(f"maze_size must be odd and >= 5; got {self.maze_size!r}.")
        choices = {"cell": ("rnn", "lstm", "spiking"), "modulation": MODULATIONS, "rule": RULES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}.")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1]; got {self.gamma!r}.")
        for name in ("value_coef", "probs_penalty", "wall_penalty"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0; got {getattr(self, name)!r}.")
        for name in ("learning_rate", "adam_eps", "max_grad_norm", "clip", "alpha_scale", "alpha_init"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0; got {getattr(self, name)!r}.")
        if self.random_weights and (not self.plastic or self.cell != "rnn"):
            raise ConfigError(f"random_weights needs plastic: true and cell: rnn (the rules-only plastic Elman cell); "
                              f"got plastic={self.plastic!r}, cell={self.cell!r}.")
        if self.binary and (self.random_weights or self.cell not in ("rnn", "lstm")):
            raise ConfigError(f"binary needs cell: rnn or lstm with learned weights (random_weights: false); "
                              f"got cell={self.cell!r}, random_weights={self.random_weights!r}.")
        check_seed(self.seed)
        check_device(self.device)

    @property
    def env_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of ``plastic_rl/Maze-v0`` for this config."""
        return dict(size=self.maze_size, episode_length=self.episode_length,
                    reward_value=self.reward_value, wall_penalty=self.wall_penalty)


def build_policy_for(config: Config) -> RecurrentActorCritic:
    """The policy ``config`` asks for, on ``config.device``.

    A non-plastic policy with ``match_parameters`` gets the hidden size that matches
    the parameter count of the plastic network of the same ``hidden_size`` and
    ``modulation`` (as the Backpropamine paper compared them).
    """
    plastic = RecurrentActorCritic(
        OBS_SIZE, 4, "discrete", hidden_size=config.hidden_size, cell=config.cell,
        modulation=config.modulation, rule=config.rule, clip=config.clip, random_weights=config.random_weights,
        binary=config.binary, binary_plasticity=config.binary_plasticity, alpha_scale=config.alpha_scale,
        alpha_init=config.alpha_init,
    )
    if config.plastic:
        policy = plastic
    elif config.match_parameters:
        policy = RecurrentActorCritic.matching(plastic, plastic=False)
    else:
        policy = RecurrentActorCritic(OBS_SIZE, 4, "discrete", hidden_size=config.hidden_size, cell=config.cell, plastic=False,
                                      binary=config.binary)
    return policy.to(config.device)


class Rollout(NamedTuple):
    """One batch of episodes, time first: every tensor is ``(T, B)`` and keeps its graph."""

    log_probs: Tensor  #: log π(a_t | history) of the actions taken
    values: Tensor  #: V_t
    rewards: Tensor  #: r_t (no graph)
    probs_sq: Tensor  #: Σ_a π(a)², the Backpropamine penalty term


def run_episodes(policy: RecurrentActorCritic, env: MazeVectorEnv, seed: int) -> Rollout:
    """Play one episode in each of ``env.num_envs`` mazes, sampling actions from ``policy``.

    The plastic traces start at zero (``state=None``) and live only in the local
    ``state`` variable, so nothing leaks into the next batch. ``env`` must have
    been built with ``as_tensor=True``; it is reset with ``seed`` (maze ``i``
    gets ``seed + i``) and stepped exactly ``episode_length`` times.
    """
    obs, _ = env.reset(seed=seed)
    state = None
    log_probs, values, rewards, probs_sq = [], [], [], []
    for _ in range(env.episode_length):
        out, state = policy(obs, state)
        log_pi = torch.log_softmax(out.action_params, dim=-1)
        pi = log_pi.exp()
        # Inverse-CDF sampling on detached probabilities (no graph needed); a few
        # cheap ops instead of torch.multinomial's per-call overhead.
        cdf = pi.detach().cumsum(dim=1)
        u = torch.rand(cdf.shape[0], 1, device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
        action = (cdf < u).sum(dim=1, keepdim=True).clamp_(max=cdf.shape[1] - 1)
        log_probs.append(log_pi.gather(1, action).squeeze(1))
        probs_sq.append(pi.pow(2).sum(dim=1))
        values.append(out.value)
        obs, reward, _, _, _ = env.step(action.squeeze(1))
        rewards.append(reward)
    return Rollout(torch.stack(log_probs), torch.stack(values), torch.stack(rewards), torch.stack(probs_sq))


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """``R_t = r_t + γ R_{t+1}`` over the time dimension (0) of ``rewards``; the episode ends after the last step."""
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def a2c_loss(rollout: Rollout, config: Config) -> Dict[str, Tensor]:
    """Backpropamine's A2C loss, averaged over batch and time; each episode is its own baseline."""
    returns = discounted_returns(rollout.rewards, config.gamma)
    advantage = returns - rollout.values
    policy_loss = -(rollout.log_probs * advantage.detach()).mean()
    value_loss = advantage.pow(2).mean()
    penalty = rollout.probs_sq.mean()
    loss = policy_loss + config.value_coef * value_loss + config.probs_penalty * penalty
    return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "probs_penalty": penalty}


def make_optimizer(policy: RecurrentActorCritic, config: Config) -> torch.optim.Adam:
    """Adam over all of ``policy``'s parameters with the config's step size and epsilon."""
    return torch.optim.Adam(policy.parameters(), lr=config.learning_rate, eps=config.adam_eps)


def a2c_update(policy: RecurrentActorCritic, optimizer: torch.optim.Optimizer, env: MazeVectorEnv,
               config: Config, seed: int, check: Optional[Callable[..., None]] = None) -> tuple[Rollout, Dict[str, Tensor], Tensor]:
    """One A2C iteration: play a batch of episodes, backpropagate through them, clip, step.

    :param policy: the policy being trained.
    :param optimizer: its optimizer.
    :param env: the batched maze (``as_tensor=True``).
    :param config: the run's config.
    :param seed: seed of this batch's mazes.
    :param check: called as ``check(loss=..., grad_norm=...)`` before the step; it raises to stop
        a poisoned update from reaching the weights (:meth:`plastic_rl.runs.Run.check_finite`).
    :return: the rollout, the loss terms and the gradient norm before clipping.
    """
    rollout = run_episodes(policy, env, seed)
    losses = a2c_loss(rollout, config)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
    if check is not None:
        check(loss=losses["loss"].detach(), grad_norm=grad_norm)
    optimizer.step()
    return rollout, losses, grad_norm


def _episode_seed(config: Config, iteration: int) -> int:
    # Iteration k always plays the same mazes, so a resumed run plays what the
    # unbroken run would have played. Streams of different runs are spaced far apart.
    return (config.seed * 1_000_003 + iteration * config.batch_size) % (2**31)


def _restore(checkpoint: Dict[str, Any], config: Config, policy, optimizer) -> float:
    """Restore weights, optimizer and sampling RNG from a checkpoint; return its wall time."""
    policy.load_state_dict(checkpoint["policy"]["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate  # the step may change on resume (e.g. smaller after a NaN stop)
    torch.set_rng_state(checkpoint["torch_rng"])
    return float(checkpoint["wall_time"])


def _checkpoint_payload(config: Config, policy, optimizer, iteration: int, wall: float) -> Dict[str, Any]:
    return {
        "iteration": iteration,
        "env_steps": iteration * config.batch_size * config.episode_length,
        "wall_time": wall,
        "policy": export_policy(policy),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "env": {"id": "plastic_rl/Maze-v0", "kwargs": config.env_kwargs},
        "obs_norm": None,
    }


def rolling_mean(values, window: int) -> list:
    """Trailing mean of ``values`` over ``window`` entries (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def write_curve(run_dir: Path, its: list, rewards: list) -> Path:
    """Plot batch-mean episode reward per iteration (and a rolling mean) as ``learning_curve.png``."""
    window = max(1, len(rewards) // 20)
    path = run_dir / CURVE_FILE
    plot_curves(path, its, {"batch mean": rewards, f"rolling mean ({window})": rolling_mean(rewards, window)},
                xlabel="iteration", ylabel="reward per episode", title="Maze A2C")
    return path


def train(config: Config, run_dir: str | Path, resume: bool = False) -> Dict[str, Any]:
    """Train (or, with ``resume``, continue training) a policy on the maze; return the summary.

    :param config: the run's configuration.
    :param run_dir: the run folder (created; must be new or empty unless ``resume``).
    :param resume: continue from ``run_dir/checkpoint.pt`` up to ``config.iterations``.
    """
    run = Run.open(run_dir, "a2c", config, resume=resume, resumable=RESUMABLE_FIELDS, files=(CURVE_FILE,),
                   step_name="iteration")
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    policy = build_policy_for(config)
    optimizer = make_optimizer(policy, config)
    wall_offset = _restore(run.checkpoint, config, policy, optimizer) if run.resumed else 0.0
    env = MazeVectorEnv(config.batch_size, device=config.device, as_tensor=True, **config.env_kwargs)
    episode_steps = config.batch_size * config.episode_length

    logger = run.metrics(METRIC_FIELDS)
    bar = run.progress(config.iterations, desc="maze a2c", unit="it")
    t0 = time.perf_counter() - wall_offset
    iteration = run.start_step
    try:
        for iteration in range(run.start_step + 1, config.iterations + 1):
            tic = time.perf_counter()
            check = lambda **quantities: run.check_finite(iteration, **quantities)  # noqa: E731
            rollout, losses, grad_norm = a2c_update(policy, optimizer, env, config, _episode_seed(config, iteration), check)
            mean_reward = float(rollout.rewards.sum(0).mean())
            row = {"iteration": iteration, "episodes": iteration * config.batch_size,
                   "env_steps": iteration * episode_steps, "mean_reward": mean_reward,
                   "grad_norm": float(grad_norm), "seconds_per_iteration": time.perf_counter() - tic,
                   "wall_time": time.perf_counter() - t0}
            row.update({k: float(v.detach()) for k, v in losses.items()})
            logger.log(row)
            bar.set_postfix(reward=f"{mean_reward:.1f}", refresh=False)
            bar.update(1)
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                run.save_checkpoint(_checkpoint_payload(config, policy, optimizer, iteration, time.perf_counter() - t0), iteration)
    finally:
        logger.close()
        bar.close()

    # The whole run's curve, including iterations before a resume.
    rows = read_metrics(run.path / METRICS_FILE)
    rewards = [float(r["mean_reward"]) for r in rows]
    tail = rewards[-max(1, len(rewards) // 10):]
    curve = write_curve(run.path, [int(r["iteration"]) for r in rows], rewards)
    return run.finish({
        "trainer": "a2c",
        "iterations": iteration,
        "episodes": iteration * config.batch_size,
        "env_steps": iteration * episode_steps,
        "final_reward": sum(tail) / len(tail),
        "final_reward_window": len(tail),
        "parameters": count_parameters(policy),
        "hidden_size": policy.config["hidden_size"],
        "wall_time": time.perf_counter() - t0,
        "curve_png": str(curve),
        "checkpoint": str(run.path / CHECKPOINT_FILE),
    })
