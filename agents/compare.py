"""``plastic-rl compare``: evolution strategies against gradient RL, same policy, same env-step budget.

::

    plastic-rl compare --env plastic_rl/AntLegFailure-v0 --budget-steps 2000000 --seeds 0 1 2 \\
        --methods es,ppo --policy plastic-mlp --out results/compare_ant

trains every method × seed for ``--budget-steps`` environment steps (one run folder each
under ``OUT/runs/``, each resumable: run the same command again to continue), then writes

- ``OUT/compare.csv``: one row per logged point, columns ``method, variant, seed, env_steps,
  wall_time, return, measure``;
- ``OUT/compare.png``: return against env steps and against wall-clock seconds, median and
  interquartile range over seeds;
- ``OUT/limb_failure.json`` (the quadruped only): the limb-failure evaluation of every final
  policy (``plastic-rl evaluate``: intact, each leg failed from the start, each leg failing
  mid-episode, the same episodes for every policy);
- ``OUT/compare.json``: the table below as data; and prints the table.

Methods: ``es`` (the ES trainer, ant-es settings on the quadruped), ``ppo`` (PlasticPPO,
ant-ppo / maze-ppo settings), ``a2c`` (the maze's full-episode A2C) and ``rppo``
(sb3-contrib's RecurrentPPO with an LSTM: the gradient anchor a user would pick; its
network is not the plastic one). ``--static-twin`` also trains each method's
parameter-matched static network.

What "return" is differs by method, and the CSV says so in ``measure``: ES logs the
search center's env return (one deterministic episode per generation); the PPO trainers
the mean return of the training episodes of each rollout (sampled actions); A2C the mean
reward of its batch of episodes. The limb-failure table compares all final policies on
the same deterministic episodes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from plastic_rl.config import ConfigError
from plastic_rl.runs import CONFIG_FILE, METRICS_FILE, atomic_save_figure, atomic_write_json, atomic_write_text, read_metrics

METHODS = ("es", "ppo", "a2c", "rppo")
POLICIES = ("plastic-mlp", "plastic-lstm", "plastic-rnn")
MAZE_PREFIX = "plastic_rl/Maze"
QUADRUPED_PREFIX = "plastic_rl/AntLegFailure"
CSV_FILE, PNG_FILE, JSON_FILE, LIMB_FILE = "compare.csv", "compare.png", "compare.json", "limb_failure.json"
MEASURES = {
    "es": "ES search center, env return of 1 deterministic episode per generation",
    "ppo": "PlasticPPO, mean env return of the training episodes of each rollout (sampled actions)",
    "rppo": "RecurrentPPO, mean env return of the training episodes of each rollout (sampled actions)",
    "a2c": "A2C, mean reward of the iteration's batch of episodes (sampled actions)",
}


@dataclass
class Spec:
    """What ``plastic-rl compare`` was asked for."""

    env_id: str  #: gymnasium env id
    budget_steps: int  #: env steps per run
    out: str  #: output folder
    seeds: Tuple[int, ...] = (0, 1, 2)  #: one run per method and seed
    methods: Tuple[str, ...] = ("es", "ppo")  #: es, ppo, a2c, rppo
    policy: Optional[str] = None  #: plastic-mlp, plastic-lstm or plastic-rnn (default: mlp on the quadruped, lstm on the maze)
    static_twin: bool = False  #: also train each method's parameter-matched static network
    episodes: int = 5  #: limb-failure evaluation: episodes per condition
    overrides: Dict[str, Dict[str, Any]] = field(default_factory=dict)  #: method -> config fields (tests, small budgets)

    def __post_init__(self) -> None:
        if isinstance(self.budget_steps, bool) or not isinstance(self.budget_steps, int) or self.budget_steps < 1:
            raise ConfigError(f"--budget-steps must be a positive integer; got {self.budget_steps!r}.")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"--methods must be a comma-separated list of {', '.join(METHODS)}; got {','.join(self.methods)!r}.")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"--methods names a method twice: {','.join(self.methods)!r}.")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ConfigError(f"--seeds must be distinct non-negative integers; got {list(self.seeds)!r}.")
        if self.policy is None:
            self.policy = "plastic-lstm" if self.maze else "plastic-mlp"
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}; got {self.policy!r}.")
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be a positive integer; got {self.episodes!r}.")
        if "a2c" in self.methods and not self.maze:
            raise ConfigError(f"--methods a2c trains on the maze only (plastic_rl/Maze-v0); --env is {self.env_id!r}.")
        if "a2c" in self.methods and self.policy == "plastic-mlp":
            raise ConfigError("--policy plastic-mlp cannot be trained by a2c (a recurrent maze trainer); use plastic-rnn or plastic-lstm.")
        if "es" in self.methods and self.maze:
            raise ConfigError("--methods es needs a continuous-action env; the maze's actions are discrete (use ppo, a2c, rppo).")

    @property
    def maze(self) -> bool:
        return self.env_id.startswith(MAZE_PREFIX)

    @property
    def quadruped(self) -> bool:
        return self.env_id.startswith(QUADRUPED_PREFIX)


# -------------------------------------------------------------------------------------------- configs
def _preset(name: str) -> Dict[str, Any]:
    from plastic_rl.agents.presets import PRESETS

    data = dict(PRESETS[name])
    data.pop("trainer")
    return data


def es_config(spec: Spec, seed: int, plastic: bool, generations: int):
    """The ES trainer's config: ant-es's search settings on the quadruped, the policy ``spec.policy`` asks for."""
    from plastic_rl.agents import es
    from plastic_rl.agents.es_policy import build_policy
    from plastic_rl.policies import MLPActorCritic, RecurrentActorCritic

    data: Dict[str, Any] = _preset("ant-es") if spec.quadruped else {"env_kwargs": {}, "episode_length": _episode_length(spec.env_id)}
    data.update(env_id=spec.env_id, seed=seed, plastic=True, generations=generations)
    if spec.policy == "plastic-mlp":
        data.update(policy="mlp", hidden_sizes=(64, 64))
    else:
        data.update(policy="recurrent", cell=spec.policy.split("-")[1], hidden_size=64)
    data.update(spec.overrides.get("es", {}))
    config = es.Config(**data)
    if plastic:
        return config
    # The static twin, widened to the plastic network's parameter count (ES has no automatic matching).
    obs_size, action_size = es.env_spaces(config.env_id, config.env_kwargs)
    reference = build_policy(config, obs_size, action_size)
    if config.policy == "mlp":
        twin = MLPActorCritic.matching(reference, plastic=False)
        return replace(config, plastic=False, width=twin.config["hidden_sizes"][0])
    twin = RecurrentActorCritic.matching(reference, plastic=False)
    return replace(config, plastic=False, hidden_size=twin.config["hidden_size"])


def ppo_config(spec: Spec, seed: int, plastic: bool, recurrent_ppo: bool = False):
    """The ppo trainer's config: ant-ppo / maze-ppo settings, the policy ``spec.policy`` asks for."""
    from plastic_rl.agents.ppo_train import Config

    data: Dict[str, Any] = _preset("ant-ppo") if spec.quadruped else _preset("maze-ppo") if spec.maze else {}
    data.update(env_id=spec.env_id, seed=seed, plastic=plastic, total_timesteps=spec.budget_steps, progress=False)
    kind = spec.policy.split("-")[1]
    if kind == "mlp":
        data.update(policy="mlp", hidden_sizes=(64, 64), output_activation="tanh")
    else:
        data.update(policy=kind, hidden_size=100 if spec.maze else 64)
    if recurrent_ppo:  # the sb3-contrib anchor: its own LSTM policy, SB3's default minibatch and learning rate
        data.update(algorithm="recurrent-ppo", policy="lstm", plastic=True, batch_size=128, learning_rate=3e-4)
    data.update(spec.overrides.get("rppo" if recurrent_ppo else "ppo", {}))
    return Config(**data)


def a2c_config(spec: Spec, seed: int, plastic: bool):
    """The maze A2C's config (Backpropamine's settings), enough iterations for the budget."""
    from plastic_rl.agents.a2c import Config

    data: Dict[str, Any] = dict(seed=seed, plastic=plastic, cell=spec.policy.split("-")[1], progress=False)
    data.update(spec.overrides.get("a2c", {}))
    probe = Config(**data)
    steps_per_iteration = probe.batch_size * probe.episode_length
    return replace(probe, iterations=max(1, math.ceil(spec.budget_steps / steps_per_iteration)))


def _episode_length(env_id: str) -> int:
    import gymnasium as gym

    import plastic_rl.envs  # noqa: F401

    try:
        return int(gym.spec(env_id).max_episode_steps or 1000)
    except gym.error.Error as err:
        raise ConfigError(f"--env must name a registered gymnasium env; {env_id!r} failed ({err}).") from None


# ---------------------------------------------------------------------------------------------- runs
def run_name(method: str, seed: int, plastic: bool) -> str:
    """``ppo-seed0``, ``es-static-seed1``, ..."""
    return f"{method}{'' if plastic else '-static'}-seed{seed}"


def variants(spec: Spec) -> List[Tuple[str, bool]]:
    """(method, plastic) pairs to train; RecurrentPPO runs once (it has no plastic form)."""
    out = []
    for method in spec.methods:
        out.append((method, True))
        if spec.static_twin and method != "rppo":
            out.append((method, False))
    return out


def build_config(spec: Spec, method: str, seed: int, plastic: bool):
    """The trainer config of one run (ES: with its first estimate of the generations)."""
    if method in ("ppo", "rppo"):
        return ppo_config(spec, seed, plastic, recurrent_ppo=method == "rppo")
    if method == "a2c":
        return a2c_config(spec, seed, plastic)
    probe = es_config(spec, seed, plastic, generations=1)
    return replace(probe, generations=max(1, math.ceil(spec.budget_steps / (probe.popsize * probe.episode_length * probe.num_episodes))))


def train_run(spec: Spec, method: str, seed: int, plastic: bool, run_dir: Path) -> Dict[str, Any]:
    """Train (or continue) one run to the budget; return its summary."""
    resume = (run_dir / CONFIG_FILE).is_file()
    config = build_config(spec, method, seed, plastic)
    if method in ("ppo", "rppo"):
        from plastic_rl.agents import ppo_train

        return ppo_train.train(config, run_dir, resume=resume)
    if method == "a2c":
        from plastic_rl.agents import a2c

        return a2c.train(config, run_dir, resume=resume)
    return _train_es(spec, config, run_dir, resume)


def _train_es(spec: Spec, config, run_dir: Path, resume: bool) -> Dict[str, Any]:
    """ES to the budget: generations are estimated from full-length episodes, then added until the budget is spent."""
    from plastic_rl.agents import es

    if resume and (run_dir / CONFIG_FILE).is_file():  # never ask a resumed run for fewer generations than it has
        from plastic_rl.config import load_yaml

        config = replace(config, generations=max(config.generations, int(load_yaml(run_dir / CONFIG_FILE).get("generations", 0))))
    while True:
        summary = es.train(config, run_dir, resume=resume)
        resume = True
        done = int(summary["env_steps"])
        if done >= spec.budget_steps:
            return summary
        per_generation = done / max(1, int(summary["generations"]))  # episodes end early when the robot falls
        more = max(1, math.ceil((spec.budget_steps - done) / max(per_generation, 1.0)))
        config = replace(config, generations=int(summary["generations"]) + more)


# -------------------------------------------------------------------------------------------- curves
def run_curve(method: str, run_dir: Path) -> List[Tuple[int, float, float]]:
    """(env steps, wall seconds, return) per logged point of a run, NaN returns left out."""
    rows = read_metrics(run_dir / METRICS_FILE)
    column = {"es": "center_return", "a2c": "mean_reward"}.get(method, "mean_return")
    points = []
    for row in rows:
        value = row.get(column) or (row.get("center_fitness") if method == "es" else None)
        try:
            ret = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(ret):
            points.append((int(float(row["env_steps"])), float(row["wall_time"]), ret))
    return points


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < 2:
        return values
    kernel = np.ones(min(window, len(values)))
    return np.convolve(values, kernel, mode="full")[: len(values)] / np.convolve(np.ones_like(values), kernel, mode="full")[: len(values)]


def band(curves: Sequence[Tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and IQR over seeds on ``grid``; each curve is interpolated inside its own x range only."""
    stacked = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        if len(x) == 0:
            continue
        inside = (grid >= x[0]) & (grid <= x[-1])
        stacked[i, inside] = np.interp(grid[inside], x, y)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return tuple(np.nanpercentile(stacked, q, axis=0) for q in (50, 25, 75))  # type: ignore[return-value]


def plot(path: Path, curves: Dict[str, List[List[Tuple[int, float, float]]]], title: str) -> None:
    """PNG with two panels: return vs env steps and vs wall seconds (median, IQR over seeds; smoothed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, runs in curves.items():
        for axis, column, name in ((axes[0], 0, "env steps"), (axes[1], 1, "wall-clock seconds")):
            series = []
            for points in runs:
                if not points:
                    continue
                arr = np.asarray(points, dtype=float)
                order = np.argsort(arr[:, column])
                x, y = arr[order, column], arr[order, 2]
                series.append((x, _smooth(y, max(1, len(y) // 20))))
            if not series:
                continue
            grid = np.linspace(0, max(x[-1] for x, _ in series), 200)
            median, low, high = band(series, grid)
            line, = axis.plot(grid, median, label=f"{label} ({len(series)} seeds)", linestyle="--" if "static" in label else "-")
            axis.fill_between(grid, low, high, alpha=0.2, color=line.get_color())
            axis.set_xlabel(name)
    axes[0].set_ylabel("episode return (median, IQR over seeds)")
    axes[0].legend(fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_save_figure(fig, path)


# --------------------------------------------------------------------------------------- limb failure
def limb_failure(spec: Spec, method: str, run_dir: Path) -> Dict[str, Any]:
    """The limb-failure evaluation of a run's final policy (ES: the final search center), summarised."""
    from plastic_rl.agents.evaluate import evaluate_run

    report = evaluate_run(run_dir, failures="all", episodes=spec.episodes, seed=0, quiet=True, plot=False,
                          policy_key="center_policy" if method == "es" else "policy")
    conditions = report["conditions"]
    from_start = [c for name, c in conditions.items() if name != "intact" and "@" not in name]
    mid_episode = [c for name, c in conditions.items() if "@" in name]
    mean = lambda rows, key: float(np.mean([r[key] for r in rows if r.get(key) is not None])) if rows else float("nan")  # noqa: E731
    return {
        "conditions": conditions,
        "failure_step": report["failure_step"],
        "intact_return": conditions["intact"]["mean_return"],
        "intact_velocity": conditions["intact"]["mean_forward_velocity"],
        "failed_return": mean(from_start, "mean_return"),
        "failed_velocity": mean(from_start, "mean_forward_velocity"),
        "mid_episode_velocity_retention": mean(mid_episode, "velocity_retention"),
    }


# --------------------------------------------------------------------------------------------- report
def _median_iqr(values: Sequence[float]) -> Dict[str, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"median": float("nan"), "q25": float("nan"), "q75": float("nan"), "n": 0}
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "n": len(values)}


def _fmt(stat: Dict[str, float], digits: int = 1) -> str:
    if not stat["n"]:
        return "-"
    return f"{stat['median']:.{digits}f} [{stat['q25']:.{digits}f}, {stat['q75']:.{digits}f}]"


def table(rows: Dict[str, Dict[str, Any]], quadruped: bool) -> str:
    """The terminal table: one line per method (median [IQR] over seeds)."""
    header = f"{'method':<12} {'seeds':>5} {'env steps':>10} {'wall s':>8} {'final return':>24}"
    if quadruped:
        header += (f" {'intact return':>24} {'intact fwd vel':>20} {'leg failed: fwd vel':>20}"
                   f" {'fwd vel kept (mid-episode)':>27}")
    lines = [header, "-" * len(header)]
    for label, row in rows.items():
        line = (f"{label:<12} {row['seeds']:>5} {row['env_steps']['median']:>10.0f} {row['wall_time']['median']:>8.0f} "
                f"{_fmt(row['final_return']):>24}")
        if quadruped:
            line += (f" {_fmt(row['intact_return']):>24} {_fmt(row['intact_velocity'], 2):>20} "
                     f"{_fmt(row['failed_velocity'], 2):>20} {_fmt(row['velocity_retention'], 2):>27}")
        lines.append(line)
    return "\n".join(lines)


def compare(spec: Spec) -> Dict[str, Any]:
    """Train every method × seed to the budget (resuming what exists), then write the CSV, PNG, JSONs and print the table.

    :param spec: what to compare.
    :returns: the ``compare.json`` data.
    """
    for method, plastic in variants(spec):  # every config is checked before hours of training start
        for seed in spec.seeds:
            build_config(spec, method, seed, plastic)
    out = Path(spec.out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summaries: Dict[Tuple[str, bool, int], Dict[str, Any]] = {}
    for method, plastic in variants(spec):
        for seed in spec.seeds:
            name = run_name(method, seed, plastic)
            print(f"[compare] {name}: training to {spec.budget_steps} env steps in {runs_dir / name}", flush=True)
            summaries[(method, plastic, seed)] = train_run(spec, method, seed, plastic, runs_dir / name)

    csv_lines = ["method,variant,seed,env_steps,wall_time,return,measure"]
    curves: Dict[str, List[List[Tuple[int, float, float]]]] = {}
    limb: Dict[str, Any] = {}
    rows: Dict[str, Dict[str, Any]] = {}
    for method, plastic in variants(spec):
        label = method if plastic else f"{method}-static"
        variant = "plastic" if plastic and method != "rppo" else ("lstm" if method == "rppo" else "static")
        per_seed = {"final": [], "steps": [], "wall": [], "intact": [], "failed": [], "kept": [], "v_intact": [], "v_failed": []}
        curves[label] = []
        for seed in spec.seeds:
            run_dir = runs_dir / run_name(method, seed, plastic)
            points = run_curve(method, run_dir)
            curves[label].append(points)
            csv_lines += [f"{label},{variant},{seed},{s},{w:.3f},{r:.6g},\"{MEASURES[method]}\"" for s, w, r in points]
            tail = [r for _, _, r in points[-max(1, len(points) // 10):]]
            summary = summaries[(method, plastic, seed)]
            per_seed["final"].append(float(np.mean(tail)) if tail else float("nan"))
            per_seed["steps"].append(float(summary["env_steps"]))
            per_seed["wall"].append(float(summary["wall_time"]))
            if spec.quadruped and method != "rppo":
                result = limb_failure(spec, method, run_dir)
                limb.setdefault(label, {})[str(seed)] = result
                per_seed["intact"].append(result["intact_return"])
                per_seed["failed"].append(result["failed_return"])
                per_seed["kept"].append(result["mid_episode_velocity_retention"])
                per_seed["v_intact"].append(result["intact_velocity"])
                per_seed["v_failed"].append(result["failed_velocity"])
        rows[label] = {
            "seeds": len(spec.seeds), "measure": MEASURES[method],
            "env_steps": _median_iqr(per_seed["steps"]), "wall_time": _median_iqr(per_seed["wall"]),
            "final_return": _median_iqr(per_seed["final"]),
            "intact_return": _median_iqr(per_seed["intact"]), "failed_return": _median_iqr(per_seed["failed"]),
            "velocity_retention": _median_iqr(per_seed["kept"]),
            "intact_velocity": _median_iqr(per_seed["v_intact"]), "failed_velocity": _median_iqr(per_seed["v_failed"]),
        }

    atomic_write_text(out / CSV_FILE, "\n".join(csv_lines) + "\n")
    plot(out / PNG_FILE, curves, f"{spec.env_id}: {', '.join(spec.methods)} ({spec.policy}), {spec.budget_steps:,} env steps per run")
    result = {
        "env_id": spec.env_id, "budget_steps": spec.budget_steps, "seeds": list(spec.seeds), "methods": list(spec.methods),
        "policy": spec.policy, "static_twin": spec.static_twin, "episodes": spec.episodes, "rows": rows,
        "csv": str(out / CSV_FILE), "png": str(out / PNG_FILE), "seconds_this_call": round(time.perf_counter() - started, 1),
    }
    if spec.quadruped:
        atomic_write_json(out / LIMB_FILE, {"env_id": spec.env_id, "episodes_per_condition": spec.episodes,
                                            "policy_evaluated": {"es": "final search center", "ppo": "final policy"},
                                            "runs": limb})
        result["limb_failure_json"] = str(out / LIMB_FILE)
    atomic_write_json(out / JSON_FILE, result)
    print(table(rows, spec.quadruped and any(m != "rppo" for m in spec.methods)))
    print(f"written: {out / CSV_FILE}, {out / PNG_FILE}, {out / JSON_FILE}" + (f", {out / LIMB_FILE}" if spec.quadruped else ""))
    return result


# ------------------------------------------------------------------------------------------------ CLI
def add_compare_parser(sub) -> None:
    """Add the ``compare`` sub-command to ``plastic-rl``'s sub-parsers.

    :param sub: the ``add_subparsers()`` object of the main parser.
    """
    p = sub.add_parser("compare", help="ES vs gradient RL: the same policy, the same env-step budget, seeds; curves, table, limb failure")
    p.add_argument("--env", required=True, help="gymnasium env id, e.g. plastic_rl/AntLegFailure-v0 or plastic_rl/Maze-v0")
    p.add_argument("--budget-steps", type=int, required=True, help="env steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", default="es,ppo", help=f"comma-separated, from {', '.join(METHODS)} (rppo: sb3-contrib RecurrentPPO)")
    p.add_argument("--out", required=True, help="output folder (run folders under OUT/runs; run the command again to continue)")
    p.add_argument("--policy", choices=POLICIES, default=None, help="default: plastic-mlp on the quadruped, plastic-lstm on the maze (like-for-like with RecurrentPPO's LSTM)")
    p.add_argument("--static-twin", action="store_true", help="also train each method's parameter-matched static network")
    p.add_argument("--episodes", type=int, default=5, help="limb-failure evaluation: episodes per condition")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    """``plastic-rl compare``: build the :class:`Spec` from the flags and run :func:`compare`."""
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    spec = Spec(env_id=args.env, budget_steps=args.budget_steps, out=args.out, seeds=tuple(args.seeds), methods=methods,
                policy=args.policy, static_twin=args.static_twin, episodes=args.episodes)
    compare(spec)
    return 0
