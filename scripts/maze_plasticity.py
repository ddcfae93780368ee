"""Backpropamine's maze figure: neuromodulated vs non-modulated plastic vs non-plastic RNNs.

Trains each variant over several seeds with the full-episode A2C trainer
(``plastic_rl.agents.a2c``, Backpropamine's settings unless overridden), then
plots the median and interquartile range over seeds of the reward per episode
against the number of episodes, and writes:

- ``OUT/maze_plasticity.png`` — the figure;
- ``OUT/maze_plasticity_curves.csv`` — episodes, variant, median, q25, q75 (smoothed);
- ``OUT/maze_plasticity_final.csv`` and ``.json`` — final reward per variant
  (median and IQR over seeds of each run's mean over its last 10% of iterations),
  seeds, episodes, wall time, and a plasticity ablation: the final policy's
  reward on 300 fresh mazes as trained and with alpha set to 0 (if the two are
  equal, the network does not use its plasticity yet).

Every run has its own run folder under ``OUT/runs``; running the script again
resumes unfinished runs from their checkpoints and skips finished ones, so it
survives being killed.

Example (the figure in the README)::

    python scripts/maze_plasticity.py --seeds 0 1 --iterations 600 --out results/maze
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from plastic_rl import load_policy
from plastic_rl.agents.a2c import Config, rolling_mean, run_episodes, train
from plastic_rl.envs.maze import MazeVectorEnv
from plastic_rl.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    SUMMARY_FILE,
    atomic_write_json,
    atomic_write_text,
    load_checkpoint,
    read_metrics,
)

# name -> Config overrides
VARIANTS = {
    "simple": dict(plastic=True, modulation="simple"),
    "retroactive": dict(plastic=True, modulation="retroactive"),
    "plastic-none": dict(plastic=True, modulation="none"),
    "non-plastic": dict(plastic=False, match_parameters=True),
}


def quantiles(values):
    """(median, q25, q75) of a list of numbers (q's by linear interpolation)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[1], q[0], q[2]


def evaluate_with_and_without_plasticity(run_dir: Path, episodes: int = 300, seed: int = 10**7):
    """Mean episode reward of the run's final policy on fresh mazes, as trained and with alpha set to 0.

    If zeroing alpha does not lower the reward, the network has not (yet) learned
    to use its plasticity. Returns (reward, reward_without_plasticity or None).
    """
    policy = load_policy(load_checkpoint(run_dir / CHECKPOINT_FILE)["policy"])
    env = MazeVectorEnv(episodes, as_tensor=True)
    with torch.no_grad():
        reward = float(run_episodes(policy, env, seed).rewards.sum(0).mean())
        plasticity = getattr(policy.cell, "plasticity", None)
        if plasticity is None:
            return reward, None
        plasticity.alpha.zero_()
        return reward, float(run_episodes(policy, env, seed).rewards.sum(0).mean())


def run_one(variant: str, seed: int, args, run_dir: Path) -> dict:
    """Train (or resume, or skip if finished) one run; return its summary."""
    config = Config(seed=seed, iterations=args.iterations, learning_rate=args.learning_rate, adam_eps=args.adam_eps,
                    hidden_size=args.hidden_size, progress=not args.quiet, **VARIANTS[variant])
    summary_path = run_dir / SUMMARY_FILE
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary["iterations"] >= args.iterations:
            return summary
    # A run killed before its first checkpoint is started over by train() itself.
    resuming = (run_dir / CHECKPOINT_FILE).is_file()
    print(f"[maze_plasticity] {variant} seed {seed}: {'resuming' if resuming else 'training'} to {args.iterations} iterations", file=sys.stderr)
    return train(config, run_dir, resume=(run_dir / CONFIG_FILE).is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=1000, help="A2C iterations per run (30 episodes each)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--adam-eps", type=float, default=Config.adam_eps,
                        help="Adam epsilon (Backpropamine's own code used 1e-4)")
    parser.add_argument("--hidden-size", type=int, default=100, help="hidden size of the plastic networks (the non-plastic one is matched)")
    parser.add_argument("--smooth", type=int, default=20, help="rolling-mean window (iterations) for the figure")
    parser.add_argument("--out", default="results/maze")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be a positive integer.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # Seed-major order: if the script is stopped early, every variant has the same seeds done.
    summaries = {}
    for seed in args.seeds:
        for variant in args.variants:
            summaries[variant, seed] = run_one(variant, seed, args, out / "runs" / f"{variant}-seed{seed}")

    curves, finals = {}, []
    for variant in args.variants:
        per_seed, final_rewards, walls, params, evals, ablated = [], [], [], None, [], []
        for seed in args.seeds:
            run_dir = out / "runs" / f"{variant}-seed{seed}"
            summary = summaries[variant, seed]
            rows = read_metrics(run_dir / "metrics.csv")[: args.iterations]
            rewards = [float(r["mean_reward"]) for r in rows]
            per_seed.append(rolling_mean(rewards, args.smooth))
            tail = rewards[-max(1, len(rewards) // 10):]
            final_rewards.append(sum(tail) / len(tail))
            walls.append(float(rows[-1]["wall_time"]))
            params = summary["parameters"]
            reward, without = evaluate_with_and_without_plasticity(run_dir)
            evals.append(reward)
            if without is not None:
                ablated.append(without)
        length = min(len(c) for c in per_seed)
        curves[variant] = [quantiles([c[i] for c in per_seed]) for i in range(length)]
        med, q25, q75 = quantiles(final_rewards)
        finals.append({
            "variant": variant, "final_reward_median": med, "final_reward_q25": q25, "final_reward_q75": q75,
            "final_rewards": final_rewards, "seeds": args.seeds, "iterations": args.iterations,
            "episodes": args.iterations * 30, "parameters": params,
            "wall_time_per_run_s": statistics.mean(walls),
            "eval_reward_median": quantiles(evals)[0],
            "eval_reward_alpha0_median": quantiles(ablated)[0] if ablated else None,
        })
        print(f"{variant:13s} final reward median {med:6.2f}  IQR [{q25:6.2f}, {q75:6.2f}]  seeds {args.seeds}  "
              f"params {params}  wall/run {statistics.mean(walls):.0f} s  eval {quantiles(evals)[0]:.2f}"
              + (f"  eval with alpha=0 {quantiles(ablated)[0]:.2f}" if ablated else ""))

    # CSV of the curves and of the final figures.
    lines = ["episodes,variant,median,q25,q75"]
    for variant, points in curves.items():
        for i, (med, q25, q75) in enumerate(points):
            lines.append(f"{(i + 1) * 30},{variant},{med:.4f},{q25:.4f},{q75:.4f}")
    atomic_write_text(out / "maze_plasticity_curves.csv", "\n".join(lines) + "\n")
    fields = ["variant", "final_reward_median", "final_reward_q25", "final_reward_q75", "seeds", "iterations",
              "episodes", "parameters", "wall_time_per_run_s", "eval_reward_median", "eval_reward_alpha0_median"]
    lines = [",".join(fields)] + [",".join(str(f[k]).replace(",", " ") for k in fields) for f in finals]
    atomic_write_text(out / "maze_plasticity_final.csv", "\n".join(lines) + "\n")
    atomic_write_json(out / "maze_plasticity_final.json", finals)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant, points in curves.items():
        x = [(i + 1) * 30 for i in range(len(points))]
        ax.plot(x, [p[0] for p in points], label=variant)
        ax.fill_between(x, [p[1] for p in points], [p[2] for p in points], alpha=0.2)
    ax.set_xlabel("episodes")
    ax.set_ylabel(f"reward per episode (rolling mean over {args.smooth} iterations)")
    ax.set_title(f"Maze: median and IQR over seeds {args.seeds}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "maze_plasticity.png.tmp", format="png", dpi=100)
    Path(out / "maze_plasticity.png.tmp").replace(out / "maze_plasticity.png")
    print(f"figure: {out / 'maze_plasticity.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
