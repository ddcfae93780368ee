"""Maze runs under ``plastic-rl evaluate``: reward on new mazes, with and without plasticity, on other sizes.

A plastic maze agent is meant to *learn* where the reward is within each
episode. Two questions show whether it does:

- does it still score on mazes it never saw, and on maze sizes it was not
  trained on (9×9 and 13×13 besides the usual 11×11)?
- what does it lose when its plasticity is switched off (every ``alpha`` set to
  0, so the Hebbian traces no longer reach the activations)?

Each size runs ``episodes`` new mazes in one batched :class:`~plastic_rl.envs.maze.MazeVectorEnv`,
actions sampled from the policy as in training. Maze ``i`` is seeded with
``MAZE_SEED_BASE + seed + i`` (far from the seeds training runs use), and the
policy's action sampling is seeded too, so the run as trained and the run
without plasticity meet exactly the same mazes and the same random numbers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from plastic_rl.policies import load_policy
from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, atomic_write_json, load_checkpoint

DEFAULT_SIZES = (9, 13)
# Training iteration k of a run with seed s plays mazes s * 1_000_003 + 30 k + i: far below this for
# any seed < 1000 and fewer than ~3 million iterations.
MAZE_SEED_BASE = 10**9


def scale_plasticity(policy: nn.Module, scale: float) -> nn.Module:
    """A copy of ``policy`` with every plasticity coefficient ``alpha`` multiplied by ``scale``.

    :param policy: a plastic-core policy.
    :param scale: the factor; 0 switches the traces off, the network then acts as its fixed weights.
    """
    scaled = copy.deepcopy(policy)
    with torch.no_grad():
        for module in scaled.modules():
            plasticity = getattr(module, "plasticity", None)
            if plasticity is not None and plasticity.binary_plasticity:
                # alpha = alpha_scale * sign(parameter): scaling the parameter would keep its sign (and 0 reads as +1)
                plasticity.alpha_scale *= scale
            elif plasticity is not None:
                plasticity.alpha.mul_(scale)
    return scaled


def without_plasticity(policy: nn.Module) -> nn.Module:
    """A copy of ``policy`` whose every plasticity coefficient ``alpha`` is 0 (the traces no longer act).

    :param policy: a plastic-core policy.
    """
    return scale_plasticity(policy, 0.0)


def is_plastic(policy: nn.Module) -> bool:
    """Whether any module of ``policy`` has plasticity parameters.

    :param policy: a plastic-core policy.
    """
    return any(getattr(m, "plasticity", None) is not None for m in policy.modules())


def mean_maze_reward(policy: nn.Module, env_kwargs: Dict[str, Any], episodes: int, seed: int) -> Dict[str, float]:
    """Reward per episode of ``policy`` on ``episodes`` new mazes (one batched env), actions sampled as in training.

    :param policy: a recurrent plastic-core policy with discrete actions.
    :param env_kwargs: ``plastic_rl/Maze-v0`` arguments (size, episode_length, reward_value, wall_penalty).
    :param episodes: number of mazes.
    :param seed: maze ``i`` gets ``MAZE_SEED_BASE + seed + i``; the action sampling is seeded with ``seed``.
    :returns: ``mean_reward``, ``std_reward``, ``sem`` (standard error of the mean).
    """
    from plastic_rl.agents.a2c import run_episodes
    from plastic_rl.envs.maze import MazeVectorEnv

    device = next(policy.parameters()).device
    env = MazeVectorEnv(episodes, device=device, as_tensor=True, **env_kwargs)
    # fork_rng: the seeded action sampling leaves the caller's global torch RNG as it was.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        rewards = run_episodes(policy, env, MAZE_SEED_BASE + seed).rewards.sum(0).double().cpu()
    std = float(rewards.std()) if episodes > 1 else 0.0
    return {"mean_reward": float(rewards.mean()), "std_reward": std, "sem": std / episodes**0.5}


def evaluate_maze_policy(
    policy: nn.Module, env_kwargs: Dict[str, Any], sizes: Sequence[int], episodes: int, seed: int = 0
) -> Dict[int, Dict[str, Any]]:
    """Reward on new mazes of each size, as trained and (plastic policies) with ``alpha = 0``.

    :param policy: a recurrent plastic-core policy.
    :param env_kwargs: the training run's maze arguments; ``size`` is replaced by each of ``sizes``.
    :param sizes: maze sizes (odd, >= 5).
    :param episodes: mazes per size.
    :param seed: base seed (the same mazes for both variants of the policy).
    :returns: size -> ``{"mean_reward", "std_reward", "sem"}`` plus, for a plastic policy,
        ``"without_plasticity": {...}`` and ``"plasticity_gain"`` (mean reward minus that without).
    """
    ablated = without_plasticity(policy) if is_plastic(policy) else None
    results: Dict[int, Dict[str, Any]] = {}
    for size in sizes:
        kwargs = {**env_kwargs, "size": int(size)}
        stats: Dict[str, Any] = mean_maze_reward(policy, kwargs, episodes, seed)
        if ablated is not None:
            stats["without_plasticity"] = mean_maze_reward(ablated, kwargs, episodes, seed)
            stats["plasticity_gain"] = stats["mean_reward"] - stats["without_plasticity"]["mean_reward"]
        results[int(size)] = stats
    return results


def _check_sizes(sizes: Sequence[int]) -> list:
    bad = [s for s in sizes if isinstance(s, bool) or not isinstance(s, int) or s < 5 or s % 2 == 0]
    if bad:
        raise ValueError(f"--maze-sizes must be odd integers >= 5 (walls included, e.g. 9,13); got {list(sizes)!r}.")
    return list(dict.fromkeys(sizes))


def format_maze_table(results: Dict[int, Dict[str, Any]], trained_size: int, title: str = "") -> str:
    """A plain-text table: one row per maze size."""
    lines = [title] if title else []
    header = f"{'maze size':<14} {'reward':>8} {'± sem':>7} {'alpha = 0':>10} {'± sem':>7} {'gain':>7}"
    lines += [header, "-" * len(header)]
    for size, s in results.items():
        label = f"{size}x{size}" + (" (trained)" if size == trained_size else "")
        off = s.get("without_plasticity")
        lines.append(
            f"{label:<14} {s['mean_reward']:>8.2f} {s['sem']:>7.2f} "
            + (f"{off['mean_reward']:>10.2f} {off['sem']:>7.2f} {s['plasticity_gain']:>7.2f}" if off else f"{'-':>10} {'-':>7} {'-':>7}")
        )
    return "\n".join(lines)


def evaluate_maze_run(
    run_dir: str | Path,
    episodes: int = 100,
    sizes: Optional[Sequence[int]] = None,
    seed: int = 0,
    json_out: Optional[str | Path] = None,
    quiet: bool = False,
) -> Dict[str, Any]:
    """Evaluate a maze run folder's policy on new mazes of its own size and of ``sizes``.

    :param run_dir: a folder written by ``plastic-rl train`` on ``plastic_rl/Maze-v0``.
    :param episodes: mazes per size.
    :param sizes: other maze sizes (default 9 and 13); the trained size always comes first.
    :param seed: base seed of the mazes and of the action sampling.
    :param json_out: also write the results to this JSON file.
    :param quiet: do not print the table.
    :returns: ``{"run_dir", "env", "episodes", "seed", "plastic", "sizes": {size: stats}}``
        (see :func:`evaluate_maze_policy`).
    """
    other_sizes = _check_sizes(DEFAULT_SIZES if sizes is None else sizes)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"--episodes must be a positive integer; got {episodes!r}.")
    path = Path(run_dir) / CHECKPOINT_FILE
    checkpoint = load_checkpoint(path)
    try:
        policy = load_policy(checkpoint["policy"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise RunDirError(f"the 'policy' record of {str(path)!r} could not be rebuilt ({err}).") from None
    policy.eval()
    env_kwargs = dict(checkpoint["env"].get("kwargs", {}))
    trained = int(env_kwargs.get("size", 11))
    all_sizes = [trained] + [s for s in other_sizes if s != trained]
    results = evaluate_maze_policy(policy, env_kwargs, all_sizes, episodes, seed)
    report = {
        "run_dir": str(run_dir),
        "env": {"id": checkpoint["env"]["id"], "kwargs": env_kwargs},
        "episodes": episodes,
        "seed": seed,
        "maze_seeds": f"{MAZE_SEED_BASE + seed} .. {MAZE_SEED_BASE + seed + episodes - 1}",
        "plastic": is_plastic(policy),
        "trained_size": trained,
        "sizes": {str(size): stats for size, stats in results.items()},
    }
    if json_out:
        atomic_write_json(json_out, report)
    if not quiet:
        print(format_maze_table(results, trained, title=f"{run_dir}: reward per episode on {episodes} new mazes per size"))
        if json_out:
            print(f"results: {json_out}")
    return report
