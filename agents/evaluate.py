"""Limb-failure evaluation: how a trained quadruped policy copes when a leg stops working.

``plastic-rl evaluate RUN_DIR --failures all`` loads the policy of a run folder
(any trainer that saves the keys ``policy``, ``obs_norm`` and ``env`` in its
``checkpoint.pt``: the ES trainer here, a gradient trainer later) and runs it,
deterministically, under a set of *conditions* (see :func:`parse_conditions`):

- ``intact``: no leg fails;
- ``front_left`` …: that leg has no control from the first step;
- ``front_left@K`` …: that leg stops at step K (default: half the episode);
- ``front_left@random``: that leg stops at a step drawn per episode from the middle half;
- ``front_left+back_right``: two legs (or more) at once;
- ``front_left:0.5``: a weak leg that keeps half of its control.

All conditions × episodes run as one gymnasium ``SyncVectorEnv`` with one
batched policy forward per step; episode *i* of every condition starts from the
same seed, so conditions are compared on the same initial states (and a
``@random`` condition draws the same step for episode *i* in every run). The
plastic traces start from zero in every episode (``state=None``).

Adaptation is measured on forward motion over a fixed horizon, never on the
return (whose alive bonus pays for standing still):

- ``mean_distance``: x displacement of the torso over the episode, up to the end
  of the horizon or the fall; ``mean_forward_velocity`` = distance / horizon time
  (a fallen robot stands still for the rest of the horizon);
- ``falls``: episodes that terminated (Ant left its healthy height) before the horizon;
- ``velocity_retention``: the distance covered after the failure, as a share of
  what the same policy covered intact over the same steps of the same episodes
  (for ``@K`` and ``@random`` conditions: from the failure step on);
- ``return_ratio``: return / intact return, reported only.

A ratio is None (JSON null) where the intact reference is not positive; ``velocity_retention``
is also None where the intact policy moved slower than ``min_reference_velocity`` (default
0.05 m/s) over the compared steps: the share of a near-zero distance is noise (a robot that
stands and twitches "keeps" 300% or -200% of it).

Outputs: a dict (and optionally a JSON file) ``{"conditions": {name: stats}, ...}``,
a table on the terminal, and a PNG of the forward velocity over time around the
failure step. Maze runs are handed to :mod:`plastic_rl.agents.evaluate_maze`.
"""

from __future__ import annotations

import itertools
import re
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from plastic_rl.policies import load_policy
from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, atomic_write_json, load_checkpoint

from plastic_rl.envs.quadruped import LEG_NAMES

QUADRUPED_ENV_PREFIX = "plastic_rl/AntLegFailure"
MAZE_ENV_PREFIX = "plastic_rl/Maze"
VELOCITY_PNG = "velocity_failure.png"
MIN_REFERENCE_VELOCITY = 0.05  # m/s: below this the intact robot is not going anywhere, and "kept" means nothing
SMOOTHING = 20  # steps of the moving average in the velocity plot (Ant's velocity is very jerky)
# The env's failure settings: a condition sets its own, the training run's (e.g. failed_legs="random") never leak
# in, and returns are Ant's own reward (pre_failure_reward_weight is a training fitness, not a measure).
FAILURE_KWARGS = ("failed_legs", "failure_probs", "failure_step", "failure_step_range", "leg_strength",
                  "pre_failure_reward_weight")
GROUPS = ("all", "none", "pairs", "random", "full")
WEAK_DEFAULT = 0.5  # the strength of the weak legs in the "full" matrix
_CONDITION = re.compile(r"^(?P<legs>[a-z_]+(?:\+[a-z_]+)*)(?::(?P<strength>[0-9.eE+-]+))?(?:@(?P<step>\d+|random))?$")
_FAILURES_RULE = (
    "--failures must be comma-separated items from 'all', 'none', 'pairs', 'random', 'full', 'weak:S' (S in [0, 1]) "
    f"or conditions LEG[+LEG...][:S][@K|@random] with legs from {', '.join(LEG_NAMES)}"
)


# ------------------------------------------------------------------------------------------- conditions
def random_step_range(episode_length: int) -> tuple:
    """``failure_step_range`` of the ``@random`` conditions: the middle half of the episode, ``L//4 .. 3L//4 - 1``.

    :param episode_length: steps per episode.
    """
    low = episode_length // 4
    return (low, max(3 * episode_length // 4, low + 1))


def condition_name(legs: Sequence[str], strength: Optional[float] = None, step: Any = 0) -> str:
    """The canonical name of a condition: ``front_left+back_right:0.5@250`` (strength and step only when set).

    :param legs: failed legs (any order).
    :param strength: the share of control the legs keep (None: limp).
    :param step: the failure step (0: from the start; an int or ``"random"``).
    """
    name = "+".join(leg for leg in LEG_NAMES if leg in legs) or "intact"
    if strength is not None:
        name += f":{strength:g}"
    if step:
        name += f"@{step}"
    return name


def _condition(legs: Sequence[str], strength: Optional[float], step: Any, episode_length: int) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"failed_legs": [leg for leg in LEG_NAMES if leg in legs], "failure_step": step}
    if strength is not None:
        kwargs["leg_strength"] = strength
    if step == "random":
        kwargs["failure_step_range"] = random_step_range(episode_length)
    return kwargs


def _strength(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{_FAILURES_RULE}; the strength in {item!r} must be a number in [0, 1].")
    return value


def parse_conditions(
    failures: str | Sequence[str], failure_step: Optional[int], episode_length: int
) -> Dict[str, Dict[str, Any]]:
    """The conditions named by ``--failures``: condition name -> env keyword overrides, ``intact`` first.

    Items (comma-separated, combined in order, duplicates dropped):

    - ``all``: each leg from the start and at ``failure_step``; ``none``: intact only;
    - ``pairs``: every two legs together, from the start;
    - ``random``: each leg at a step drawn per episode from the middle half (:func:`random_step_range`);
    - ``weak:S``: each leg keeping a share S of its control, from the start;
    - ``full``: ``all``, ``pairs``, ``weak:0.5`` and ``random``: the limb-failure study's matrix;
    - a leg name: that leg from the start and at ``failure_step`` (as ``all`` does);
    - ``LEG[+LEG...][:S][@K|@random]``: one condition, e.g. ``front_left+back_right``, ``back_left:0.3@250``.

    :param failures: the user's value (a string or a list of items).
    :param failure_step: step of the ``all``/leg-name mid-episode failures (None or 0 leaves them out).
    :param episode_length: steps per episode (bounds ``@K``; sets the random range).
    :raises ValueError: in one sentence naming the allowed forms.
    """
    items = [i.strip() for i in failures.split(",")] if isinstance(failures, str) else [str(i).strip() for i in failures]
    items = [i for i in items if i]
    if not items:
        raise ValueError(f"{_FAILURES_RULE}; got {failures!r}.")
    conditions: Dict[str, Dict[str, Any]] = {"intact": {"failed_legs": [], "failure_step": 0}}

    def add(legs: Sequence[str], strength: Optional[float] = None, step: Any = 0) -> None:
        conditions.setdefault(condition_name(legs, strength, step), _condition(legs, strength, step, episode_length))

    for item in items:
        if item in ("all", "full") or item in LEG_NAMES:
            for leg in (LEG_NAMES if item in ("all", "full") else (item,)):
                add([leg])
            if failure_step:
                for leg in (LEG_NAMES if item in ("all", "full") else (item,)):
                    add([leg], step=int(failure_step))
        if item in ("pairs", "full"):
            for pair in itertools.combinations(LEG_NAMES, 2):
                add(pair)
        if item == "full" or item.startswith("weak:"):
            strength = WEAK_DEFAULT if item == "full" else _strength(item[len("weak:"):], item)
            for leg in LEG_NAMES:
                add([leg], strength)
        if item in ("random", "full"):
            for leg in LEG_NAMES:
                add([leg], step="random")
        if item in GROUPS or item in LEG_NAMES or item.startswith("weak:"):
            continue
        match = _CONDITION.match(item)
        legs = match["legs"].split("+") if match else []
        if not match or any(leg not in LEG_NAMES for leg in legs) or len(set(legs)) != len(legs):
            raise ValueError(f"{_FAILURES_RULE}; got {item!r}.")
        strength = _strength(match["strength"], item) if match["strength"] is not None else None
        step: Any = match["step"] or 0
        if step not in (0, "random"):
            step = int(step)
            if not 0 <= step < episode_length:
                raise ValueError(f"{_FAILURES_RULE}; the step in {item!r} must be from 0 to {episode_length - 1} (the episode length is {episode_length}).")
        add(legs, strength, step)
    return conditions


# ------------------------------------------------------------------------------------------- rollouts
def normalize_obs(obs: np.ndarray, obs_norm: Optional[Mapping[str, torch.Tensor]], device: torch.device) -> torch.Tensor:
    """``(obs - mean) / stdev`` with the training run's statistics (or the raw obs if there are none).

    A ``"clip"`` entry (PPO runs: SB3's VecNormalize clips normalized observations to ±10) is applied too.
    """
    x = torch.as_tensor(obs, dtype=torch.float32, device=device)
    if obs_norm is None:
        return x
    x = (x - obs_norm["mean"].to(device)) / obs_norm["stdev"].to(device)
    return x.clamp(-obs_norm["clip"], obs_norm["clip"]) if obs_norm.get("clip") is not None else x


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
    :param record_velocity: also return, when the env reports them, ``info["x_velocity"]`` per step
        (``velocities``, NaN after an episode ended), ``info["x_position"]`` from the reset on
        (``positions``, ``(n, episode_length + 1)``, NaN after the end), each episode's
        ``failure_step`` and the env's time step ``dt``.
    :returns: ``returns`` (n,), ``lengths`` (n,), ``terminated`` (n,) (ended before the time limit),
        plus the recorded arrays.
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
    terminated_early = np.zeros(n, dtype=bool)
    velocities = np.full((n, episode_length), np.nan) if record_velocity else None
    positions = np.full((n, episode_length + 1), np.nan) if record_velocity else None
    failure_steps = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    try:
        obs, info = env.reset(seed=seeds)
        if "failure_step" in info:
            failure_steps[:] = np.asarray(info["failure_step"])
        if positions is not None and "x_position" in info:
            positions[:, 0] = np.asarray(info["x_position"])
        state = episode_start_state(policy, seeds)  # zero traces (rules-only: each seed's random weights)
        for t in range(episode_length):
            action, state = policy.act(normalize_obs(obs, obs_norm, device), state, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(np.clip(action.cpu().numpy(), low, high))
            returns[alive] += reward[alive]
            lengths[alive] += 1
            terminated_early |= alive & terminated
            if velocities is not None and "x_velocity" in info:
                velocities[alive, t] = np.asarray(info["x_velocity"])[alive]
            if positions is not None and "x_position" in info:
                positions[alive, t + 1] = np.asarray(info["x_position"])[alive]
            alive &= ~(terminated | truncated)  # the vector env auto-resets later; we only count the first episode
            if not alive.any():
                break
        dt = float(getattr(env.envs[0].unwrapped, "dt", 1.0))
    finally:
        env.close()
    result = {"returns": returns, "lengths": lengths, "terminated": terminated_early}
    if velocities is not None:
        result.update(velocities=velocities, positions=positions, failure_steps=failure_steps, dt=dt)
    return result


def episode_start_state(policy: nn.Module, seeds: Sequence[int]) -> Any:
    """The state episodes start from: None (zero traces) or, for a rules-only policy, each episode's random weights.

    A rules-only policy (``random_weights``) draws its weights at every episode start; here row ``i`` draws
    them from a generator seeded with ``seeds[i]``, so episode ``i`` of every condition runs the same
    network, and a repeated evaluation repeats it.

    :param policy: a plastic-core policy.
    :param seeds: the reset seed of each episode.
    """
    if not getattr(policy, "config", {}).get("random_weights"):
        return None
    from plastic_rl.state import flatten_state, unflatten_state

    device = next(policy.parameters()).device
    rows = [policy.initial_state(1, generator=torch.Generator(device).manual_seed(int(s))) for s in seeds]
    return unflatten_state(torch.cat([flatten_state(r) for r in rows]), rows[0])


def _distances(positions: np.ndarray, lengths: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per episode, the x displacement from step ``starts[i]`` to the episode's end (horizon or fall); 0 if it ended before."""
    rows = np.arange(len(lengths))
    end = positions[rows, lengths]
    begin = positions[rows, np.minimum(starts, lengths)]
    return np.where(starts < lengths, end - begin, 0.0)


def evaluate_policy(
    policy: nn.Module,
    obs_norm: Optional[Mapping[str, torch.Tensor]],
    env_id: str,
    env_kwargs: Mapping[str, Any],
    conditions: Mapping[str, Mapping[str, Any]],
    episodes: int = 5,
    seed: int = 0,
    episode_length: int = 1000,
    min_reference_velocity: float = MIN_REFERENCE_VELOCITY,
) -> Dict[str, Any]:
    """Forward motion, falls and returns of ``policy`` under each condition.

    :param policy: a plastic-core policy.
    :param obs_norm: observation statistics of its training run, or None.
    :param env_id: gymnasium env id (the quadruped).
    :param env_kwargs: the training env's keyword arguments; its failure settings (:data:`FAILURE_KWARGS`)
        are dropped and each condition sets its own.
    :param conditions: condition name -> env keyword overrides (see :func:`parse_conditions`).
    :param episodes: episodes per condition (episode ``i`` of every condition uses seed ``seed + i``).
    :param seed: base seed.
    :param episode_length: steps per episode (the fixed horizon of the distance and velocity).
    :param min_reference_velocity: ``velocity_retention`` is None where the intact policy's mean forward
        velocity over the compared steps is below this (m/s).
    :returns: ``{"conditions": {name: stats}, "velocity": {name: mean velocity per step}}``; the stats are
        described in the module docstring. The ratios to ``intact`` need an ``intact`` condition.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be a positive integer; got {episodes}.")
    if not min_reference_velocity >= 0:
        raise ValueError(f"min_reference_velocity must be a number >= 0 (m/s); got {min_reference_velocity!r}.")
    names = list(conditions)
    base = {k: v for k, v in env_kwargs.items() if k not in FAILURE_KWARGS}
    kwargs = [{**base, **conditions[name]} for name in names for _ in range(episodes)]
    seeds = [seed + i for _ in names for i in range(episodes)]
    was_training = policy.training
    policy.eval()
    rollout = run_episodes(policy, obs_norm, env_id, kwargs, episode_length, seeds=seeds, record_velocity=True)
    policy.train(was_training)
    if not np.isfinite(rollout["positions"][:, 0]).all():
        raise ValueError(f"{env_id!r} reports no info['x_position']; the limb-failure evaluation needs the quadruped.")
    horizon_time = episode_length * rollout["dt"]
    rows_of = {name: slice(k * episodes, (k + 1) * episodes) for k, name in enumerate(names)}
    results: Dict[str, Any] = {}
    velocity_curves: Dict[str, List[float]] = {}
    for name in names:
        rows = rows_of[name]
        returns, vel = rollout["returns"][rows], rollout["velocities"][rows]
        lengths, positions = rollout["lengths"][rows], rollout["positions"][rows]
        distance = _distances(positions, lengths, np.zeros(episodes, dtype=np.int64))
        stats: Dict[str, Any] = {
            "mean_forward_velocity": float(distance.mean() / horizon_time),
            "mean_distance": float(distance.mean()),
            "falls": int(rollout["terminated"][rows].sum()),
            "fall_rate": float(rollout["terminated"][rows].mean()),
            "mean_return": float(returns.mean()),
            "std_return": float(returns.std()),
            "mean_episode_length": float(lengths.mean()),
            "episodes": int(episodes),
            "returns": [float(r) for r in returns],
            "distances": [float(d) for d in distance],
        }
        step = conditions[name].get("failure_step", 0)
        if step:
            starts = rollout["failure_steps"][rows]
            after = _distances(positions, lengths, starts)
            stats["failure_steps"] = [int(k) for k in starts]
            stats["distances_after"] = [float(d) for d in after]
            stats["mean_distance_after"] = float(after.mean())
            stats["mean_forward_velocity_after"] = float(np.mean(after / ((episode_length - starts) * rollout["dt"])))
            stats["mean_forward_velocity_before"] = float(np.mean((distance - after) / np.maximum(starts, 1) / rollout["dt"]))
        results[name] = stats
        with warnings.catch_warnings():  # steps after every episode ended are NaN ("mean of empty slice")
            warnings.simplefilter("ignore", RuntimeWarning)
            velocity_curves[name] = [float(v) for v in np.nanmean(vel, axis=0)]
    if "intact" in rows_of:
        intact = rows_of["intact"]
        for name in names:
            if name == "intact":
                continue
            # Same seeds, so episode i of the condition and of intact start alike; compare the same steps.
            starts = rollout["failure_steps"][rows_of[name]] if conditions[name].get("failure_step", 0) else np.zeros(episodes, dtype=np.int64)
            kept = _distances(rollout["positions"][rows_of[name]], rollout["lengths"][rows_of[name]], starts).sum()
            reference = _distances(rollout["positions"][intact], rollout["lengths"][intact], starts).sum()
            # None (JSON null) where the intact policy does not move forward: a ratio would mean nothing.
            compared_time = np.maximum(episode_length - starts, 0).sum() * rollout["dt"]
            moves = reference > 0 and reference / compared_time >= min_reference_velocity
            results[name]["velocity_retention"] = float(kept / reference) if moves else None
            intact_return = results["intact"]["mean_return"]
            results[name]["return_ratio"] = float(results[name]["mean_return"] / intact_return) if intact_return > 0 else None
    return {"conditions": results, "velocity": velocity_curves}


# ------------------------------------------------------------------------------------------- reporting
def _ratio(value: Optional[float]) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.2f}"


def format_table(conditions: Mapping[str, Mapping[str, Any]], title: str = "") -> str:
    """A plain-text table of the per-condition results: forward motion first, the return last."""
    lines = [title] if title else []
    header = (
        f"{'condition':<26} {'fwd vel':>8} {'kept':>5} {'after':>7} {'distance':>9} {'falls':>6} "
        f"{'return':>8} {'ret/int':>7} {'length':>7} {'eps':>4}"
    )
    lines += [header, "-" * len(header)]
    for name, s in conditions.items():
        after = f"{s['mean_forward_velocity_after']:.3f}" if "mean_forward_velocity_after" in s else "-"
        lines.append(
            f"{name:<26} {s['mean_forward_velocity']:>8.3f} {_ratio(s.get('velocity_retention')):>5} {after:>7} "
            f"{s['mean_distance']:>9.2f} {s['falls']:>3d}/{s['episodes']:<2d} {s['mean_return']:>8.1f} "
            f"{_ratio(s.get('return_ratio')):>7} {s['mean_episode_length']:>7.0f} {s['episodes']:>4d}"
        )
    lines.append(
        "fwd vel = distance / horizon (m/s; a fall stops the robot for the rest of the horizon); kept = distance after "
        "the failure / intact distance over the same steps of the same episodes; after = velocity from the failure step "
        "on; ret/int = return / intact return (includes the alive bonus: not a measure of adaptation)."
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
def run_env_id(run_dir: str | Path) -> tuple:
    """``(checkpoint, env id)`` of a run folder.

    :param run_dir: a folder written by ``plastic-rl train``.
    :raises RunDirError: if the folder has no checkpoint.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise RunDirError(f"run folder {str(run_dir)!r} has no {CHECKPOINT_FILE}; give a folder made by 'plastic-rl train'.")
    checkpoint = load_checkpoint(path)
    env = checkpoint.get("env")
    return checkpoint, (env.get("id") if isinstance(env, dict) else None)


def load_quadruped_run(run_dir: str | Path, policy_key: str = "policy") -> Dict[str, Any]:
    """The policy, obs statistics and env of a quadruped run folder.

    :param run_dir: a folder written by ``plastic-rl train``.
    :param policy_key: ``"policy"`` (the best solution) or ``"center_policy"`` (the ES center).
    :raises RunDirError: if the folder has no checkpoint or its checkpoint holds no quadruped policy.
    """
    checkpoint, env_id = run_env_id(run_dir)
    env = checkpoint["env"] if isinstance(env_id, str) else {}
    if policy_key not in checkpoint or not isinstance(env_id, str) or not env_id.startswith(QUADRUPED_ENV_PREFIX):
        raise RunDirError(
            f"run folder {str(run_dir)!r} holds no policy for {QUADRUPED_ENV_PREFIX}-v0 (env: {env_id!r}); "
            "the limb-failure evaluation needs a quadruped run (e.g. 'plastic-rl train --preset ant-es')."
        )
    try:
        policy = load_policy(checkpoint[policy_key])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise RunDirError(f"the {policy_key!r} record of {str(Path(run_dir) / CHECKPOINT_FILE)!r} could not be rebuilt ({err}).") from None
    obs_norm = checkpoint.get("obs_norm")
    if obs_norm is not None:
        obs_norm = {"mean": obs_norm["mean"].float(), "stdev": obs_norm["stdev"].float(), "clip": obs_norm.get("clip")}
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
    failures: Optional[str | Sequence[str]] = None,
    episodes: Optional[int] = None,
    failure_step: Optional[int] = None,
    json_out: Optional[str | Path] = None,
    seed: int = 0,
    policy_key: str = "policy",
    plot: bool = True,
    quiet: bool = False,
    compare: Optional[str | Path] = None,
    maze_sizes: Optional[Sequence[int]] = None,
    min_reference_velocity: Optional[float] = None,
) -> Dict[str, Any]:
    """Evaluate a run folder's policy: the limb-failure matrix for a quadruped run, new mazes for a maze run.

    :param run_dir: the run folder.
    :param failures: quadruped: the conditions (:func:`parse_conditions`; default ``"all"``).
    :param episodes: episodes per condition (quadruped, default 5) or mazes per size (maze, default 100).
    :param failure_step: quadruped: step of the mid-episode failures of ``all``/leg names
        (default: half the episode length; 0 skips them).
    :param json_out: also write the results to this JSON file.
    :param seed: base seed of the episodes.
    :param policy_key: which policy of the checkpoint (``"policy"`` or ``"center_policy"``).
    :param plot: quadruped: write ``velocity_failure.png`` into the run folder (or next to ``json_out``).
    :param quiet: do not print the table.
    :param compare: quadruped: a second run folder (e.g. the static twin) evaluated on the same conditions
        and episode seeds; its results go under ``"compare"`` and its curves into the same PNG.
    :param maze_sizes: maze: the maze sizes to test besides the trained one (default 9 and 13).
    :param min_reference_velocity: quadruped: "kept" is left out (None) where the intact policy moved slower
        than this over the compared steps (m/s; default :data:`MIN_REFERENCE_VELOCITY`).
    :returns: ``{"run_dir", "env", ..., "conditions": {name: stats}, "velocity": {name: mean velocity per step}}``
        (plus ``"compare": {"run_dir", "conditions", "velocity"}`` with ``compare``); for a maze run, see
        :func:`plastic_rl.agents.evaluate_maze.evaluate_maze_run`.
    """
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1):
        raise ValueError(f"--episodes must be a positive integer; got {episodes!r}.")
    _, env_id = run_env_id(run_dir)
    if isinstance(env_id, str) and env_id.startswith(MAZE_ENV_PREFIX):
        quadruped_only = {
            "--failures": failures, "--failure-step": failure_step, "--compare": compare,
            "--min-reference-velocity": min_reference_velocity,
        }
        given = [flag for flag, value in quadruped_only.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to quadruped runs; {str(run_dir)!r} is a maze run (use --maze-sizes and --episodes).")
        from plastic_rl.agents.evaluate_maze import evaluate_maze_run

        return evaluate_maze_run(run_dir, episodes=episodes or 100, sizes=maze_sizes, seed=seed, json_out=json_out, quiet=quiet)
    if min_reference_velocity is None:
        min_reference_velocity = MIN_REFERENCE_VELOCITY
    if isinstance(min_reference_velocity, bool) or not isinstance(min_reference_velocity, (int, float)) or not min_reference_velocity >= 0:
        raise ValueError(f"--min-reference-velocity must be a number >= 0 (m/s); got {min_reference_velocity!r}.")
    if maze_sizes is not None:
        raise ValueError(f"--maze-sizes applies to maze runs; {str(run_dir)!r} is not one (env: {env_id!r}).")
    episodes = episodes or 5
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
    conditions = parse_conditions("all" if failures is None else failures, failure_step, length)
    result = evaluate_policy(
        run["policy"], run["obs_norm"], run["env_id"], run["env_kwargs"], conditions, episodes, seed, length, min_reference_velocity
    )
    compared = None
    if other is not None:
        compared = evaluate_policy(
            other["policy"], other["obs_norm"], other["env_id"], other["env_kwargs"], conditions, episodes, seed, length,
            min_reference_velocity,
        )
    report = {
        "run_dir": str(run_dir),
        "policy_key": policy_key,
        "generation": run["generation"],
        "env": {"id": run["env_id"], "kwargs": run["env_kwargs"], "episode_length": length},
        "episodes": episodes,
        "seed": seed,
        "failure_step": failure_step,
        "random_step_range": list(random_step_range(length)),
        "min_reference_velocity": min_reference_velocity,
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
        marked = failure_step if any(_fixed_step(name) for name in conditions) else None
        plot_velocity(png, curves, marked, title=title)
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


def _fixed_step(name: str) -> Optional[int]:
    """The failure step of a condition named ``...@K``; None for other conditions (``@random`` included)."""
    _, at, step = name.rpartition("@")
    return int(step) if at and step.isdigit() else None


def _failure_curves(velocity: Mapping[str, Sequence[float]]) -> Dict[str, Sequence[float]]:
    """The intact curve and every fixed-step mid-episode failure curve of one evaluation."""
    curves = {"intact": velocity["intact"]}
    curves.update({name: v for name, v in velocity.items() if _fixed_step(name)})
    return curves


def mean_failure_curve(velocity: Mapping[str, Sequence[float]]) -> Optional[np.ndarray]:
    """Mean forward velocity per step over the fixed-step mid-episode failure conditions ("leg@K"); None if there are none."""
    failed = [np.asarray(v, dtype=float) for name, v in velocity.items() if _fixed_step(name)]
    if not failed:
        return None
    with warnings.catch_warnings():  # steps where every episode had ended are NaN
        warnings.simplefilter("ignore", RuntimeWarning)
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
