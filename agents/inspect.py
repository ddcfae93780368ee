"""A look inside an adaptive agent: ``plastic-rl inspect RUN_DIR [--failure LEG@STEP] [--episodes N] [--out DIR]``.

Runs a trained policy and records, at every step of every episode:

- what the agent achieves: the forward velocity (quadruped) or the reward (maze);
- for every plastic module (each plastic layer of an MLP, the plastic cell of a
  recurrent policy): the neuromodulator ``M(t)`` it emits and the Frobenius norm of
  its Hebbian trace ``||Hebb(t)||`` after the step;
- the moment of the leg failure (quadruped) or the reward hits (maze).

``M(t)`` is recomputed from the module's own read-out,
``module.plasticity.neuromodulator(signal)``, where the signal is the module's
output at that step (the post-synaptic activity a :class:`~plastic_rl.cells.PlasticLinear`
or a plastic cell feeds its modulator); a fanned-out modulator is averaged over its
units. Modules with ``modulation="none"`` have no modulator and report only their
trace. The traces come from the state each module returns; nothing is stored on
the modules (forward hooks read the outputs and are removed afterwards).

Writes ``DIR/inspect.csv`` (one row per episode and step) and ``DIR/inspect.png``
(one panel per series, episode 0 drawn bold, the others faint).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, atomic_save_figure, atomic_write_text, load_checkpoint

CSV_FILE = "inspect.csv"
PNG_FILE = "inspect.png"


# ----------------------------------------------------------------------------------------- recording
class PlasticRecorder:
    """Forward hooks that record ``M(t)`` and ``||Hebb(t)||`` of every plastic module of a policy, per step.

    Use as a context manager around the rollout; each forward call of a plastic
    module appends one ``(batch,)`` row per series. The hooks only read the
    module's output ``(activity, new_state)``; they are removed on exit.

    :param policy: a plastic-core policy.
    """

    def __init__(self, policy: nn.Module) -> None:
        self.modules = [
            (name or type(m).__name__, m) for name, m in policy.named_modules()
            if getattr(m, "plasticity", None) is not None
        ]
        self.modulator: Dict[str, List[np.ndarray]] = {n: [] for n, m in self.modules if hasattr(m.plasticity, "modulator")}
        self.trace_norm: Dict[str, List[np.ndarray]] = {n: [] for n, _ in self.modules}
        self._handles: List[Any] = []

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: Tuple, output: Tuple) -> None:
            activity, state = output
            with torch.no_grad():
                if name in self.modulator:
                    m = module.plasticity.neuromodulator(activity)
                    self.modulator[name].append(m.mean(dim=1).float().cpu().numpy())
                hebb = state.hebb
                self.trace_norm[name].append(hebb.reshape(hebb.shape[0], -1).norm(dim=1).float().cpu().numpy())
        return record

    def __enter__(self) -> "PlasticRecorder":
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def series(self, steps: int) -> Dict[str, np.ndarray]:
        """``{"M[name]": (batch, steps), "hebb_norm[name]": (batch, steps)}`` of the first ``steps`` calls."""
        out: Dict[str, np.ndarray] = {}
        for name, rows in self.modulator.items():
            out[f"M[{name}]"] = np.stack(rows[:steps], axis=1)
        for name, rows in self.trace_norm.items():
            out[f"hebb_norm[{name}]"] = np.stack(rows[:steps], axis=1)
        return out


# ----------------------------------------------------------------------------------------- the two envs
def inspect_quadruped(
    run_dir: Path, failure: Optional[str], episodes: int, seed: int, policy_key: str
) -> Dict[str, Any]:
    """Roll out a quadruped run's policy under one condition and record its series.

    :param run_dir: the run folder.
    :param failure: one condition (e.g. ``front_left@250``, ``back_left:0.3@random``) or None for intact.
    :param episodes: episodes (seeds ``seed .. seed + episodes - 1``).
    :param seed: base seed.
    :param policy_key: ``"policy"`` or ``"center_policy"``.
    :returns: ``{"kind", "condition", "lengths", "events", "series"}``; ``events`` are the failure steps.
    """
    from plastic_rl.agents.evaluate import FAILURE_KWARGS, load_quadruped_run, parse_conditions, run_episodes

    run = load_quadruped_run(run_dir, policy_key)
    length = run["episode_length"]
    if failure is None or failure == "none":
        name, condition = "intact", {"failed_legs": [], "failure_step": 0}
    else:
        conditions = parse_conditions(failure, 0, length)
        named = [n for n in conditions if n != "intact"]
        if len(named) != 1 or "," in failure:
            raise ValueError(f"--failure must name one condition, LEG[+LEG...][:S][@K|@random] (e.g. front_left@250); got {failure!r}.")
        name, condition = named[0], conditions[named[0]]
    base = {k: v for k, v in run["env_kwargs"].items() if k not in FAILURE_KWARGS}
    policy = run["policy"].eval()
    with PlasticRecorder(policy) as recorder:
        rollout = run_episodes(policy, run["obs_norm"], run["env_id"], [{**base, **condition}] * episodes, length,
                               seeds=[seed + i for i in range(episodes)], record_velocity=True)
    lengths = rollout["lengths"]
    steps = int(lengths.max())
    series = {"forward_velocity": rollout["velocities"][:, :steps], **recorder.series(steps)}
    failed = bool(condition["failed_legs"])
    # The failure step of each episode (0 for a failure from the start), if the episode lived to see it.
    events = [[int(k)] if failed and k < n else [] for k, n in zip(rollout["failure_steps"], lengths)]
    return {"kind": "quadruped", "condition": name, "lengths": lengths, "events": events, "event_label": "failure",
            "series": _mask_after_end(series, lengths)}


def inspect_maze(run_dir: Path, checkpoint: Dict[str, Any], episodes: int, seed: int) -> Dict[str, Any]:
    """Roll out a maze run's policy on new mazes and record its series; reward hits are the events.

    :param run_dir: the run folder (for messages).
    :param checkpoint: its loaded checkpoint.
    :param episodes: mazes (seeded as in :mod:`plastic_rl.agents.evaluate_maze`).
    :param seed: base seed.
    """
    from plastic_rl.agents.a2c import run_episodes
    from plastic_rl.agents.evaluate_maze import MAZE_SEED_BASE
    from plastic_rl.envs.maze import MazeVectorEnv
    from plastic_rl.policies import load_policy

    try:
        policy = load_policy(checkpoint["policy"]).eval()
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise RunDirError(f"the 'policy' record of {str(run_dir / CHECKPOINT_FILE)!r} could not be rebuilt ({err}).") from None
    env = MazeVectorEnv(episodes, as_tensor=True, **checkpoint["env"].get("kwargs", {}))
    with torch.random.fork_rng(devices=[]), torch.no_grad(), PlasticRecorder(policy) as recorder:
        torch.manual_seed(seed)
        rewards = run_episodes(policy, env, MAZE_SEED_BASE + seed).rewards.T.double().cpu().numpy()
    steps = rewards.shape[1]
    events = [[int(t) for t in np.flatnonzero(row > 0)] for row in rewards]
    return {"kind": "maze", "condition": "new mazes", "lengths": np.full(episodes, steps), "events": events,
            "event_label": "reward hit", "series": {"reward": rewards, **recorder.series(steps)}}


def _mask_after_end(series: Dict[str, np.ndarray], lengths: np.ndarray) -> Dict[str, np.ndarray]:
    """NaN in every series after an episode ended (the batched rollout keeps stepping the others)."""
    out = {}
    for key, values in series.items():
        values = np.array(values, dtype=float)
        for i, n in enumerate(lengths):
            values[i, int(n):] = np.nan
        out[key] = values
    return out


# ----------------------------------------------------------------------------------------- outputs
def write_csv(path: Path, result: Dict[str, Any]) -> None:
    """One row per episode and step: the series, and whether a failure/reward hit happens at that step."""
    keys = list(result["series"])
    event = "failure_active" if result["kind"] == "quadruped" else "reward_hit"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["episode", "step", *keys, event])
    for i, n in enumerate(result["lengths"]):
        events = result["events"][i]
        for t in range(int(n)):
            flag = (bool(events) and t >= events[0]) if result["kind"] == "quadruped" else (t in events)
            writer.writerow([i, t, *(f"{result['series'][k][i, t]:.6g}" for k in keys), int(flag)])
    atomic_write_text(path, buffer.getvalue())


def plot_series(path: Path, result: Dict[str, Any], title: str) -> None:
    """One panel per kind of series (performance, M(t), trace norms), events marked as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plastic_rl.agents.evaluate import _smooth

    series = result["series"]
    first = "forward_velocity" if result["kind"] == "quadruped" else "reward"
    groups = [(first, [first])]
    for prefix, label in (("M[", "neuromodulator M(t)"), ("hebb_norm[", "||Hebb(t)|| (Frobenius)")):
        keys = [k for k in series if k.startswith(prefix)]
        if keys:
            groups.append((label, keys))
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.4 * len(groups)), sharex=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (label, keys) in zip(axes[:, 0], groups):
        for j, key in enumerate(keys):
            for i in range(series[key].shape[0]):
                y = series[key][i]
                if key == "forward_velocity":
                    y = _smooth(y)
                ax.plot(np.arange(len(y)), y, color=colors[j % len(colors)], lw=1.6 if i == 0 else 0.6,
                        alpha=1.0 if i == 0 else 0.35, label=key.split("[", 1)[-1].rstrip("]") if i == 0 and len(keys) > 1 else None)
        for k, t in enumerate(result["events"][0] if result["events"] else []):
            ax.axvline(t, color="k", linestyle=":", lw=0.8, label=result["event_label"] if k == 0 and ax is axes[0, 0] else None)
        ylabel = {"forward_velocity": "forward velocity\n(20-step mean)", "reward": "reward"}.get(label, label)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("step (episode 0 bold, other episodes faint)")
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_save_figure(fig, path)


def inspect_run(
    run_dir: str | Path,
    failure: Optional[str] = None,
    episodes: int = 1,
    out: Optional[str | Path] = None,
    seed: int = 0,
    policy_key: str = "policy",
    quiet: bool = False,
) -> Dict[str, Any]:
    """Run a trained policy and write the PNG and CSV of its velocity/reward, M(t) and trace norms.

    :param run_dir: a run folder (quadruped or maze).
    :param failure: quadruped: one condition, e.g. ``front_left@250`` (None: intact).
    :param episodes: episodes to record (the plot draws episode 0 bold).
    :param out: output folder (default ``RUN_DIR/inspect``).
    :param seed: base seed of the episodes.
    :param policy_key: ES runs: ``"policy"`` (best sample) or ``"center_policy"``.
    :param quiet: print nothing.
    :returns: ``{"csv", "png", "condition", "series": [names], "plastic_modules": [names]}``.
    """
    from plastic_rl.agents.evaluate import MAZE_ENV_PREFIX, run_env_id

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"--episodes must be a positive integer; got {episodes!r}.")
    run_dir = Path(run_dir)
    checkpoint, env_id = run_env_id(run_dir)
    if isinstance(env_id, str) and env_id.startswith(MAZE_ENV_PREFIX):
        if failure is not None:
            raise ValueError(f"--failure applies to quadruped runs; {str(run_dir)!r} is a maze run.")
        result = inspect_maze(run_dir, checkpoint, episodes, seed)
    else:
        result = inspect_quadruped(run_dir, failure, episodes, seed, policy_key)
    out_dir = Path(out) if out is not None else run_dir / "inspect"
    csv_path, png_path = out_dir / CSV_FILE, out_dir / PNG_FILE
    write_csv(csv_path, result)
    plastic = sorted({k.split("[", 1)[1].rstrip("]") for k in result["series"] if "[" in k})
    title = f"{run_dir.name}: {result['condition']}" + ("" if plastic else " (no plastic module)")
    plot_series(png_path, result, title)
    if not quiet:
        print(f"{result['condition']}, {episodes} episode(s); plastic modules: {', '.join(plastic) or 'none'}")
        print(f"series: {csv_path}\nplot:   {png_path}")
    return {"csv": str(csv_path), "png": str(png_path), "condition": result["condition"],
            "series": list(result["series"]), "plastic_modules": plastic}
