"""Limb failure: does a plastic MLP keep the quadruped moving better than a static one?

Evolves, for each seed, a plastic MLP and its parameter-matched static MLP with
the same ES budget (same algorithm, population, generations, episode length)
under random leg failures (``failed_legs="random"``: none 0.4, each leg 0.15),
then evaluates both with :func:`plastic_rl.agents.evaluate.evaluate_policy`:
intact, each leg failed from the start, each leg failing mid-episode. Reports
the return per condition and the retention ratio (failure / intact), median
over seeds.

    python scripts/limb_failure.py --generations 60 --popsize 20 --episode-length 250 --seeds 0 1 \\
        --output results/limb_failure

Writes into ``--output``: one run folder per (variant, seed) (re-running the
command resumes them), ``results.csv`` (one row per variant × seed × condition),
``summary.json`` (medians and budget), ``table.md``, ``velocity.png`` and ``training.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from plastic_rl.agents import es
from plastic_rl.agents.evaluate import evaluate_run, mean_failure_curve, plot_velocity
from plastic_rl.policies import MLPActorCritic
from plastic_rl.runs import CHECKPOINT_FILE, CONFIG_FILE, atomic_write_json, atomic_write_text, load_checkpoint, read_metrics

VARIANTS = ("plastic", "static")


def variant_configs(args: argparse.Namespace, seed: int) -> Dict[str, es.Config]:
    """The plastic config and its static twin, whose hidden width matches the plastic parameter count."""
    common = dict(
        algorithm=args.algorithm, popsize=args.popsize, generations=args.generations,
        episode_length=args.episode_length, seed=seed, hidden_sizes=tuple(args.hidden_sizes), num_actors=args.num_actors,
        stdev_init=args.stdev_init, center_learning_rate=args.center_learning_rate, decrease_rewards_by=args.decrease_rewards_by,
    )
    plastic = es.Config(plastic=True, **common)
    obs_size, action_size = es.env_spaces(plastic.env_id, plastic.env_kwargs)
    reference = es.build_policy(plastic, obs_size, action_size)
    twin = MLPActorCritic.matching(reference, plastic=False)
    static = es.Config(plastic=False, width=twin.config["hidden_sizes"][0], **common)
    return {"plastic": plastic, "static": static}


def train_or_resume(config: es.Config, run_dir: Path) -> Dict[str, Any]:
    """Train ``config`` into ``run_dir``, resuming if a checkpoint is already there."""
    resume = (run_dir / CONFIG_FILE).is_file()  # es.train starts a run killed before its first checkpoint over
    if (run_dir / CHECKPOINT_FILE).is_file() and int(load_checkpoint(run_dir / CHECKPOINT_FILE)["generation"]) >= config.generations:
        return es.write_summary(run_dir, config)
    return es.train(config, run_dir, resume=resume)


def median(values: List[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=60)
    parser.add_argument("--popsize", type=int, default=20)
    parser.add_argument("--episode-length", type=int, default=250)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--algorithm", default="pgpe", choices=es.ALGORITHMS)
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--num-actors", type=int, default=0)
    parser.add_argument("--stdev-init", type=float, default=es.Config.stdev_init, help="initial search standard deviation per parameter")
    parser.add_argument("--center-learning-rate", type=float, default=None, help="PGPE/ClipUp step (max speed = 2x); default: the Config default")
    parser.add_argument("--decrease-rewards-by", type=float, default=1.0,
                        help="subtracted from every step's reward during the search (Ant-v5's alive bonus is 1.0, so standing still earns nothing); evaluation reports the env's own return")
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes per condition")
    parser.add_argument("--policy", choices=["center", "best"], default="center",
                        help="which policy to evaluate: the final ES center (default; the best sample is a lucky draw) or the best sample")
    parser.add_argument("--output", default="results/limb_failure")
    args = parser.parse_args(argv)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    policy_key = "center_policy" if args.policy == "center" else "policy"
    failure_step = args.episode_length // 2
    rows: List[Dict[str, Any]] = []
    velocity: Dict[str, List[np.ndarray]] = {v: [] for v in VARIANTS}
    budget: Dict[str, Any] = {}
    start = time.perf_counter()
    for seed in args.seeds:
        configs = variant_configs(args, seed)
        for variant, config in configs.items():
            run_dir = out / f"{variant}-seed{seed}"
            summary = train_or_resume(config, run_dir)
            budget[f"{variant}-seed{seed}"] = {
                "parameters": summary["parameters"], "env_steps": summary["env_steps"], "wall_time": summary["wall_time"],
                "final_center_fitness": summary["final_center_fitness"],
            }
            report = evaluate_run(
                run_dir, failures="all", episodes=args.episodes, failure_step=failure_step,
                json_out=run_dir / "evaluation.json", seed=10_000 + seed, policy_key=policy_key, quiet=True,
            )
            intact = report["conditions"]["intact"]["mean_return"]
            for name, stats in report["conditions"].items():
                rows.append({
                    "variant": variant, "seed": seed, "condition": name, "mean_return": stats["mean_return"],
                    "std_return": stats["std_return"], "mean_forward_velocity": stats["mean_forward_velocity"],
                    "retention": stats["mean_return"] / intact if name != "intact" else 1.0,
                    # The return includes Ant's alive bonus (1 per step), so also the share of forward speed kept
                    # (undefined when the intact policy does not move forward).
                    "velocity_retention": velocity_kept(report, name, failure_step),
                    "mean_episode_length": stats["mean_episode_length"],
                })
            velocity[variant].append(report_velocity(report))

    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    table: Dict[str, Dict[str, Dict[str, float]]] = {}
    for variant in VARIANTS:
        table[variant] = {}
        for name in conditions:
            sel = [r for r in rows if r["variant"] == variant and r["condition"] == name]
            table[variant][name] = {
                "median_return": median([r["mean_return"] for r in sel]),
                "median_retention": median([r["retention"] for r in sel]),
                "median_velocity_retention": median([r["velocity_retention"] for r in sel]),
                "median_episode_length": median([r["mean_episode_length"] for r in sel]),
                "median_forward_velocity": median([r["mean_forward_velocity"] for r in sel]),
            }
    wall = time.perf_counter() - start
    lines = [
        f"Limb failure, {args.algorithm} popsize {args.popsize}, {args.generations} generations, "
        f"{args.episode_length}-step episodes, seeds {args.seeds}, {args.episodes} evaluation episodes per condition "
        f"({args.policy} policy), failure mid-episode at step {failure_step}. Median over seeds. Return = the env's own "
        f"(with the alive bonus); retention = return / intact return; velocity kept = forward velocity / intact forward "
        f"velocity on the same episode seeds (for leg@K: from step K on); length = steps before the episode ended.",
        "",
        "| condition | plastic return | static return | plastic retention | static retention | plastic velocity | static velocity "
        "| plastic velocity kept | static velocity kept | plastic length | static length |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in conditions:
        p, s = table["plastic"][name], table["static"][name]
        lines.append(
            f"| {name} | {p['median_return']:.1f} | {s['median_return']:.1f} | {p['median_retention']:.2f} | {s['median_retention']:.2f} "
            f"| {p['median_forward_velocity']:.3f} | {s['median_forward_velocity']:.3f} | {p['median_velocity_retention']:.2f} | {s['median_velocity_retention']:.2f} "
            f"| {p['median_episode_length']:.0f} | {s['median_episode_length']:.0f} |"
        )
    failure_names = [n for n in conditions if n != "intact"]

    def per_seed_mean_over_failures(variant: str, key: str) -> List[float]:
        return [
            float(np.mean([r[key] for r in rows if r["variant"] == variant and r["seed"] == seed and r["condition"] in failure_names]))
            for seed in args.seeds
        ]

    for variant in VARIANTS:
        per_seed = per_seed_mean_over_failures(variant, "retention")
        per_seed_velocity = per_seed_mean_over_failures(variant, "velocity_retention")
        table[variant]["mean_retention_over_failures"] = {"median_over_seeds": median(per_seed), "per_seed": per_seed}
        table[variant]["mean_velocity_retention_over_failures"] = {"median_over_seeds": median(per_seed_velocity), "per_seed": per_seed_velocity}
        lines.append(
            f"\n{variant}: averaged over the {len(failure_names)} failure conditions, median over seeds: return retention {median(per_seed):.3f} "
            f"(per seed {', '.join(f'{v:.3f}' for v in per_seed)}), velocity kept {median(per_seed_velocity):.3f} "
            f"(per seed {', '.join(f'{v:.3f}' for v in per_seed_velocity)})"
        )
    lines.append(f"\nwall time {wall:.0f} s in this invocation; per run: " + ", ".join(f"{k} {v['wall_time']:.0f} s / {v['env_steps']} steps / {v['parameters']} params" for k, v in budget.items()))
    text = "\n".join(lines)
    print(text)

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buffer.getvalue())
    atomic_write_text(out / "table.md", text + "\n")
    result = {"args": vars(args), "failure_step": failure_step, "budget": budget, "medians": table, "wall_time": wall}
    atomic_write_json(out / "summary.json", result)
    curves = {}
    for variant in VARIANTS:
        if velocity[variant]:
            curves[f"{variant}, intact"] = np.nanmean([v["intact"] for v in velocity[variant]], axis=0)
            curves[f"{variant}, one leg fails"] = np.nanmean([v["failed"] for v in velocity[variant]], axis=0)
    plot_velocity(out / "velocity.png", curves, failure_step, title="forward velocity, a leg failing mid-episode (mean over legs and seeds)")
    plot_training(out / "training.png", {f"{v}-seed{seed}": out / f"{v}-seed{seed}" for seed in args.seeds for v in VARIANTS})
    return result


def plot_training(path: Path, runs: Dict[str, Path]) -> None:
    """PNG of each run's population-mean and center fitness per generation (10-generation moving mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, run_dir in runs.items():
        rows = read_metrics(run_dir / "metrics.csv")
        generation = [int(r["generation"]) for r in rows]
        for ax, key in zip(axes, ("mean_fitness", "center_fitness")):
            values = np.array([float(r[key]) for r in rows])
            smooth = np.convolve(values, np.ones(10) / 10, mode="valid") if len(values) >= 10 else values
            ax.plot(generation[len(generation) - len(smooth):], smooth, label=label, linestyle="--" if label.startswith("static") else "-")
    for ax, title in zip(axes, ("population mean fitness", "center fitness (1 episode)")):
        ax.set_title(title)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fitness (return minus the alive bonus), 10-gen mean")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def velocity_kept(report: Dict[str, Any], name: str, failure_step: int) -> float:
    """Forward velocity under condition ``name`` as a share of the intact policy's, on the same episodes.

    Every condition replays the same episode seeds, so a mid-episode failure ("leg@K") is the intact
    episode up to step K; only the steps from K on are compared. NaN when the intact policy does not
    move forward there (a ratio would mean nothing).
    """
    start = failure_step if "@" in name else 0
    with np.errstate(all="ignore"):
        intact = float(np.nanmean(np.asarray(report["velocity"]["intact"], dtype=float)[start:]))
        failed = float(np.nanmean(np.asarray(report["velocity"][name], dtype=float)[start:]))
    return failed / intact if intact > 0 else float("nan")


def report_velocity(report: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Mean velocity curves of one evaluation: intact, and the mean over the mid-episode failure conditions."""
    curves = report["velocity"]
    return {"intact": np.asarray(curves["intact"], dtype=float), "failed": mean_failure_curve(curves)}


if __name__ == "__main__":
    main()
