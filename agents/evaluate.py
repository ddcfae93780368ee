"""Limb-failure evaluation: how a trained quadruped policy copes when a leg stops working.

``plastic-rl evaluate RUN_DIR --failures all`` loads the policy of a run folder
(any trainer that saves the keys ``policy``, ``obs_norm`` and ``env`` in its
``checkpoint.pt``: the ES trainer here, a gradient trainer later) and runs it,
deterministically, under a set of *conditions*:

- ``intact``: no leg fails;
- ``front_left`` …: that leg has no control from the first step;
- ``front_left@K`` …: that leg stops at step K (default: half the episode).

All conditions × episodes run as one gymnasium ``SyncVectorEnv`` with one
batched policy forward per step; episode *i* of every condition starts from the
same seed, so conditions are compared on the same initial states. The plastic
traces start from zero in every episode (``state=None``).

Outputs: a dict (and optionally a JSON file) ``{"conditions": {name: {"mean_return",
"std_return", "mean_forward_velocity", "episodes", ...}}, ...}``, a table on the
terminal, and a PNG of the forward velocity over time around the failure step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from plastic_rl.policies import load_policy
from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, atomic_write_json, load_checkpoint

LEG_NAMES = ("front_left", "front_right", "back_left", "back_right")  # = plastic_rl.envs.quadruped.LEG_NAMES
QUADRUPED_ENV_PREFIX = "plastic_rl/AntLegFailure"
VELOCITY_PNG = "velocity_failure.png"
SMOOTHING = 20  # steps of the moving average in the velocity plot (Ant's velocity is very jerky)


# ------------------------------------------------------------------------------------------- conditions
def parse_failures(failures: str | Sequence[str]) -> List[str]:
    """The legs named by ``--failures``: ``"all"``, ``"none"`` or comma-separated leg names.

    :param failures: the user's value.
    :raises ValueError: on an unknown leg name, naming the allowed values.
    """
    if isinstance(failures, str):
        text = failures.strip()
        if text == "all":
            return list(LEG_NAMES)
        if text == "none":
            return []
        names = [name.strip() for name in text.split(",") if name.strip()]
    else:
        names = list(failures)
    unknown = [name for name in names if name not in LEG_NAMES]
    if unknown or not names:
        raise ValueError(
            f"--failures must be 'all', 'none' or comma-separated leg names from {', '.join(LEG_NAMES)}; got {failures!r}."
        )
    return [leg for leg in LEG_NAMES if leg in names]  # canonical order, no duplicates


def failure_conditions(legs: Sequence[str], failure_step: Optional[int]) -> Dict[str, Dict[str, Any]]:
    """Condition name -> env keyword overrides: intact, each leg from the start, each leg at ``failure_step``.

    :param legs: legs to fail, one at a time.
    :param failure_step: step of the mid-episode failures; None or 0 leaves them out.
    """
    conditions: Dict[str, Dict[str, Any]] = {"intact": {"failed_legs": [], "failure_step": 0}}
    for leg in legs:
        conditions[leg] = {"failed_legs": [leg], "failure_step": 0}
    if failure_step:
        for leg in legs:
            conditions[f"{leg}@{failure_step}"] = {"failed_legs": [leg], "failure_step": int(failure_step)}
    return conditions


# ------------------------------------------------------------------------------------------- rollouts
def normalize_obs(obs: np.ndarray, obs_norm: Optional[Mapping[str, torch.Tensor]], device: torch.device) -> torch.Tensor:
    """``(obs - mean) / stdev`` with the training run's statistics (or the raw obs if there are none)."""
    x = torch.as_tensor(obs, dtype=torch.float32, device=device)
    if obs_norm is None:
        return x
    return (x - obs_norm["mean"].to(device)) / obs_norm["stdev"].to(device)


@torch.no_grad()
def run_episodes(
    policy: nn.Module,
    obs_norm: Optional[Mapping[str, torch.Tensor]],
    env_id: str,
    env_kwargs: Sequence[Mapping[str, Any]],
    episode_length: int,
    seed: int = 0,
    seeds: Optional[Sequence[int]] = None,
    record_velocity: bool = False,
) -> Dict[str, np.ndarray]:
    """Run one episode per entry of ``env_kwargs`` side by side, deterministic actions, one batched forward per step.

    :param policy: a plastic-core policy (its state starts at zero: ``state=None``).
    :param obs_norm: ``{"mean", "stdev"}`` of the training run, or None.
    :param env_id: gymnasium env id.
    :param env_kwargs: keyword arguments of each env (one episode each).
    :param episode_length: time limit of every episode.
    :param seed: episode ``i`` is reset with ``seed + i`` unless ``seeds`` is given.
    :param seeds: explicit reset seed per episode.
    :param record_velocity: also return ``info["x_velocity"]`` per step (NaN after an episode ended).
    :returns: ``returns`` (n,), ``lengths`` (n,), and ``velocities`` (n, episode_length) if asked.
    """
    import gymnasium as gym

    import plastic_rl.envs  # noqa: F401  (registers plastic_rl/*)

    n = len(env_kwargs)
    seeds = [seed + i for i in range(n)] if seeds is None else list(seeds)
    env = gym.vector.SyncVectorEnv(
        [(lambda kw=dict(kw): gym.make(env_id, max_episode_steps=episode_length, **kw)) for kw in env_kwargs]
    )
    low, high = env.single_action_space.low, env.single_action_space.high
    device = next(policy.parameters()).device
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    velocities = np.full((n, episode_length), np.nan) if record_velocity else None
    alive = np.ones(n, dtype=bool)
    try:
        obs, _ = env.reset(seed=seeds)
        state = None  # every episode starts with zero traces
        for t in range(episode_length):
            action, state = policy.act(normalize_obs(obs, obs_norm, device), state, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(np.clip(action.cpu().numpy(), low, high))
            returns[alive] += reward[alive]
            lengths[alive] += 1
            if velocities is not None and "x_velocity" in info:
                velocities[alive, t] = np.asarray(info["x_velocity"])[alive]
            alive &= ~(terminated | truncated)  # the vector env auto-resets later; we only count the first episode
            if not alive.any():
                break
    finally:
        env.close()
    result = {"returns": returns, "lengths": lengths}
    if velocities is not None:
        result["velocities"] = velocities
    return result


def evaluate_policy(
    policy: nn.Module,
    obs_norm: Optional[Mapping[str, torch.Tensor]],
    env_id: str,
    env_kwargs: Mapping[str, Any],
    conditions: Mapping[str, Mapping[str, Any]],
    episodes: int = 5,
    seed: int = 0,
    episode_length: int = 1000,
) -> Dict[str, Any]:
    """Returns and forward velocities of ``policy`` under each condition.

    :param policy: a plastic-core policy.
    :param obs_norm: observation statistics of its training run, or None.
    :param env_id: gymnasium env id (the quadruped).
    :param env_kwargs: the training env's keyword arguments; each condition overrides some of them.
    :param conditions: condition name -> env keyword overrides (see :func:`failure_conditions`).
    :param episodes: episodes per condition (episode ``i`` of every condition uses seed ``seed + i``).
    :param seed: base seed.
    :param episode_length: steps per episode.
    :returns: ``{"conditions": {name: stats}, "velocity": {name: mean velocity per step}}``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be a positive integer; got {episodes}.")
    names = list(conditions)
    kwargs = [{**env_kwargs, **conditions[name]} for name in names for _ in range(episodes)]
    seeds = [seed + i for _ in names for i in range(episodes)]
    was_training = policy.training
    policy.eval()
    rollout = run_episodes(policy, obs_norm, env_id, kwargs, episode_length, seeds=seeds, record_velocity=True)
    policy.train(was_training)
    results: Dict[str, Any] = {}
    velocity_curves: Dict[str, List[float]] = {}
    for k, name in enumerate(names):
        rows = slice(k * episodes, (k + 1) * episodes)
        returns, vel = rollout["returns"][rows], rollout["velocities"][rows]
        stats = {
            "mean_return": float(returns.mean()),
            "std_return": float(returns.std()),
            "mean_forward_velocity": float(np.nanmean(vel)),
            "mean_episode_length": float(rollout["lengths"][rows].mean()),
            "episodes": int(episodes),
            "returns": [float(r) for r in returns],
        }
        step = int(conditions[name].get("failure_step", 0))
        if step > 0:
            with np.errstate(all="ignore"):
                stats["mean_forward_velocity_before"] = float(np.nanmean(vel[:, :step]))
                stats["mean_forward_velocity_after"] = float(np.nanmean(vel[:, step:])) if np.isfinite(vel[:, step:]).any() else float("nan")
        results[name] = stats
        with np.errstate(all="ignore"):
            velocity_curves[name] = [float(v) for v in np.nanmean(vel, axis=0)]
    return {"conditions": results, "velocity": velocity_curves}


# ------------------------------------------------------------------------------------------- reporting
def format_table(conditions: Mapping[str, Mapping[str, Any]], title: str = "") -> str:
    """A plain-text table of the per-condition results."""
    lines = [title] if title else []
    intact = conditions.get("intact", {}).get("mean_return")
    header = f"{'condition':<18} {'return':>10} {'± std':>8} {'retention':>9} {'fwd vel':>8} {'length':>7} {'eps':>4}"
    lines += [header, "-" * len(header)]
    for name, s in conditions.items():
        retention = f"{s['mean_return'] / intact:.2f}" if intact and name != "intact" else "-"
        lines.append(
            f"{name:<18} {s['mean_return']:>10.1f} {s['std_return']:>8.1f} "
            f"{retention:>9} {s['mean_forward_velocity']:>8.3f} {s['mean_episode_length']:>7.0f} {s['episodes']:>4d}"
        )
    return "\n".join(lines)


def _smooth(values: Sequence[float], window: int = SMOOTHING) -> np.ndarray:
    """Trailing moving average (step t averages steps t-window+1 .. t), so nothing moves before the failure."""
    y = np.asarray(values, dtype=float)
    valid = np.isfinite(y)
    if not valid.any():
        return y
    end = int(np.flatnonzero(valid)[-1]) + 1  # curves are NaN only after every episode ended
    cumsum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(y[:end]))])
    t = np.arange(end)
    start = np.maximum(0, t - window + 1)
    out = np.full_like(y, np.nan)
    out[:end] = (cumsum[t + 1] - cumsum[start]) / (t + 1 - start)
    return out


def plot_velocity(path: str | Path, curves: Mapping[str, Sequence[float]], failure_step: Optional[int], title: str = "") -> None:
    """PNG of forward velocity over time (moving average), with the failure step marked.

    :param path: output file.
    :param curves: label -> mean forward velocity per step.
    :param failure_step: draws a vertical line there (None: no line).
    :param title: plot title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, ys in curves.items():
        ax.plot(np.arange(len(ys)), _smooth(ys), label=label, linestyle="--" if "static" in label else "-")
    if failure_step:
        ax.axvline(failure_step, color="k", linestyle=":", label=f"failure (step {failure_step})")
    ax.set_xlabel("step")
    ax.set_ylabel(f"forward velocity (x, trailing {SMOOTHING}-step mean)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------- run folders
def load_quadruped_run(run_dir: str | Path, policy_key: str = "policy") -> Dict[str, Any]:
    """The policy, obs statistics and env of a quadruped run folder.

    :param run_dir: a folder written by ``plastic-rl train``.
    :param policy_key: ``"policy"`` (the best solution) or ``"center_policy"`` (the ES center).
    :raises RunDirError: if the folder has no checkpoint or its checkpoint holds no quadruped policy.
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise RunDirError(f"run folder {str(run_dir)!r} has no {CHECKPOINT_FILE}; give a folder made by 'plastic-rl train'.")
    checkpoint = load_checkpoint(path)
    env = checkpoint.get("env")
    env_id = env.get("id") if isinstance(env, dict) else None
    if policy_key not in checkpoint or not isinstance(env_id, str) or not env_id.startswith(QUADRUPED_ENV_PREFIX):
        raise RunDirError(
            f"run folder {str(run_dir)!r} holds no policy for {QUADRUPED_ENV_PREFIX}-v0 (env: {env_id!r}); "
            "the limb-failure evaluation needs a quadruped run (e.g. 'plastic-rl train --preset ant-es')."
        )
    try:
        policy = load_policy(checkpoint[policy_key])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise RunDirError(f"the {policy_key!r} record of {str(path)!r} could not be rebuilt ({err}).") from None
    obs_norm = checkpoint.get("obs_norm")
    if obs_norm is not None:
        obs_norm = {"mean": obs_norm["mean"].float(), "stdev": obs_norm["stdev"].float()}
    return {
        "policy": policy,
        "obs_norm": obs_norm,
        "env_id": env_id,
        "env_kwargs": dict(env.get("kwargs", {})),
        "episode_length": int(env.get("episode_length", 1000)),
        "generation": checkpoint.get("generation"),
    }


def evaluate_run(
    run_dir: str | Path,
    failures: str | Sequence[str] = "all",
    episodes: int = 5,
    failure_step: Optional[int] = None,
    json_out: Optional[str | Path] = None,
    seed: int = 0,
    policy_key: str = "policy",
    plot: bool = True,
    quiet: bool = False,
    compare: Optional[str | Path] = None,
) -> Dict[str, Any]:
    """Evaluate a run folder's policy intact, with each leg failed from the start, and failing at ``failure_step``.

    :param run_dir: the run folder.
    :param failures: ``"all"``, ``"none"`` or comma-separated leg names.
    :param episodes: episodes per condition.
    :param failure_step: step of the mid-episode failures (default: half the episode length; 0 skips them).
    :param json_out: also write the results to this JSON file.
    :param seed: base seed of the episodes.
    :param policy_key: which policy of the checkpoint (``"policy"`` or ``"center_policy"``).
    :param plot: write ``velocity_failure.png`` into the run folder (or next to ``json_out``).
    :param quiet: do not print the table.
    :param compare: a second run folder (e.g. the static twin) evaluated on the same conditions and
        episode seeds; its results go under ``"compare"`` and its curves into the same PNG.
    :returns: ``{"run_dir", "env", ..., "conditions": {name: stats}, "velocity": {name: mean velocity per step}}``
        (plus ``"compare": {"run_dir", "conditions", "velocity"}`` with ``compare``).
    """
    legs = parse_failures(failures)  # argument errors before any loading
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"--episodes must be a positive integer; got {episodes!r}.")
    run = load_quadruped_run(run_dir, policy_key)
    other = load_quadruped_run(compare, policy_key) if compare is not None else None
    length = run["episode_length"]
    if other is not None and other["episode_length"] != length:
        raise ValueError(
            f"--compare needs a run with the same episode length: {str(run_dir)!r} has {length}, "
            f"{str(compare)!r} has {other['episode_length']}."
        )
    if failure_step is None:
        failure_step = length // 2
    if isinstance(failure_step, bool) or not isinstance(failure_step, int) or not 0 <= failure_step < length:
        raise ValueError(f"--failure-step must be an integer from 0 to {length - 1} (the episode length is {length}); got {failure_step!r}.")
    conditions = failure_conditions(legs, failure_step)
    result = evaluate_policy(
        run["policy"], run["obs_norm"], run["env_id"], run["env_kwargs"], conditions, episodes, seed, length
    )
    compared = None
    if other is not None:
        compared = evaluate_policy(
            other["policy"], other["obs_norm"], other["env_id"], other["env_kwargs"], conditions, episodes, seed, length
        )
    report = {
        "run_dir": str(run_dir),
        "policy_key": policy_key,
        "generation": run["generation"],
        "env": {"id": run["env_id"], "kwargs": run["env_kwargs"], "episode_length": length},
        "episodes": episodes,
        "seed": seed,
        "failure_step": failure_step,
        "conditions": result["conditions"],
    }
    if compared is not None:
        report["compare"] = {"run_dir": str(compare), "conditions": compared["conditions"]}
    if plot:
        png = Path(json_out).with_suffix(".png") if json_out else Path(run_dir) / VELOCITY_PNG
        if compared is None:
            curves = _failure_curves(result["velocity"])
            title = f"{Path(run_dir).name}: leg failing at step {failure_step}"
        else:  # one intact curve and one mean failure curve per run, so the two runs stay readable
            curves = {**_mean_failure_curves(result["velocity"], _run_label(run, run_dir)),
                      **_mean_failure_curves(compared["velocity"], _run_label(other, compare))}
            title = f"a leg failing at step {failure_step} (mean over the failed legs)"
        plot_velocity(png, curves, failure_step if legs else None, title=title)
        report["velocity_png"] = str(png)
    if json_out:
        atomic_write_json(json_out, report)
    report["velocity"] = result["velocity"]  # per-step curves: returned, not written to the JSON
    if compared is not None:
        report["compare"]["velocity"] = compared["velocity"]
    if not quiet:
        print(format_table(result["conditions"], title=f"{run_dir} ({policy_key}, {episodes} episodes per condition)"))
        if compared is not None:
            print()
            print(format_table(compared["conditions"], title=f"{compare} ({policy_key}, the same episodes)"))
        if json_out:
            print(f"results: {json_out}")
    return report


def _failure_curves(velocity: Mapping[str, Sequence[float]]) -> Dict[str, Sequence[float]]:
    """The intact curve and every mid-episode failure curve of one evaluation."""
    curves = {"intact": velocity["intact"]}
    curves.update({name: v for name, v in velocity.items() if "@" in name})
    return curves


def mean_failure_curve(velocity: Mapping[str, Sequence[float]]) -> Optional[np.ndarray]:
    """Mean forward velocity per step over the mid-episode failure conditions ("leg@K"); None if there are none."""
    failed = [np.asarray(v, dtype=float) for name, v in velocity.items() if "@" in name]
    if not failed:
        return None
    with np.errstate(all="ignore"):  # steps where every episode had ended are NaN
        return np.nanmean(failed, axis=0)


def _mean_failure_curves(velocity: Mapping[str, Sequence[float]], label: str) -> Dict[str, Sequence[float]]:
    """The intact curve and the mean of the mid-episode failure curves of one evaluation."""
    curves: Dict[str, Sequence[float]] = {f"{label}, intact": velocity["intact"]}
    failed = mean_failure_curve(velocity)
    if failed is not None:
        curves[f"{label}, one leg fails"] = failed
    return curves


def _run_label(run: Mapping[str, Any], run_dir: str | Path) -> str:
    """'<folder> (plastic)' or '<folder> (static)'; the plot draws static curves dashed."""
    plastic = bool(getattr(run["policy"], "config", {}).get("plastic", True))
    return f"{Path(run_dir).name} ({'plastic' if plastic else 'static'})"
