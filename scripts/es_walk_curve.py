"""Learning curves of ES runs side by side: population-mean and center fitness against env steps.

For issue 12's walk study: reads each run folder's ``metrics.csv`` and writes

- a markdown table of block means (every ``--block`` generations: env steps at the block's end,
  population-mean fitness, center fitness), one column pair per run;
- a PNG of the same two curves (a running mean over ``--block`` generations) against env steps.

    python scripts/es_walk_curve.py results/es_walk/p1_old results/es_walk/plastic_old \\
        results/es_walk/plastic_alpha01 --block 20 --output results/es_walk/curves

Fitness is the search's own: the episode return minus Ant's alive bonus (``decrease_rewards_by``), so
standing still scores about 0; the center's is one episode per generation (noisy).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

import numpy as np

from plastic_rl.runs import METRICS_FILE, atomic_save_figure, atomic_write_text, read_metrics


def blocks(rows: List[Dict[str, float]], size: int) -> List[Dict[str, float]]:
    """Means of population-mean and center fitness over consecutive blocks of ``size`` generations.

    :param rows: the run's metrics rows, in generation order.
    :param size: generations per block; a last, partial block is kept.
    """
    out = []
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        out.append({
            "generations": f"{int(chunk[0]['generation'])}-{int(chunk[-1]['generation'])}",
            "env_steps": int(chunk[-1]["env_steps"]),
            "mean_fitness": float(np.mean([r["mean_fitness"] for r in chunk])),
            "center_fitness": float(np.mean([r["center_fitness"] for r in chunk])),
        })
    return out


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="ES run folders (each with a metrics.csv)")
    parser.add_argument("--block", type=int, default=20, help="generations per block and running-mean window")
    parser.add_argument("--output", required=True, help="path prefix: writes PREFIX.md and PREFIX.png")
    args = parser.parse_args(argv)
    if args.block < 1:
        parser.error(f"--block must be a positive integer; got {args.block}.")
    runs = {}
    for run_dir in args.run_dirs:
        path = Path(run_dir) / METRICS_FILE
        if not path.is_file():
            parser.error(f"{run_dir!r} has no {METRICS_FILE}: give ES run folders.")
        rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in read_metrics(path)]
        if not rows or "mean_fitness" not in rows[0]:
            parser.error(f"{run_dir!r}'s {METRICS_FILE} holds no ES fitness rows.")
        runs[Path(run_dir).name] = rows

    lines = [f"Block means over {args.block} generations: env steps at the block's end, population-mean fitness / "
             "center fitness (return minus the alive bonus).", ""]
    for name, rows in runs.items():
        lines += [f"**{name}**", "", "| generations | env steps | pop. mean | center |", "|---|---:|---:|---:|"]
        lines += [f"| {b['generations']} | {b['env_steps']:,} | {b['mean_fitness']:.0f} | {b['center_fitness']:.0f} |"
                  for b in blocks(rows, args.block)]
        lines.append("")
    prefix = Path(args.output)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(prefix.with_suffix(".md"), "\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    kernel = np.ones(args.block) / args.block
    for name, rows in runs.items():
        steps = np.array([r["env_steps"] for r in rows]) / 1e6
        for ax, key in zip(axes, ("mean_fitness", "center_fitness")):
            values = np.array([r[key] for r in rows])
            smooth = np.convolve(values, kernel, mode="valid") if len(values) >= args.block else values
            ax.plot(steps[len(steps) - len(smooth):], smooth, label=name)
    for ax, title in zip(axes, ("population-mean fitness", "center fitness (1 episode)")):
        ax.set_title(f"{title}, running mean of {args.block} generations")
        ax.set_xlabel("env steps (millions)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return minus alive bonus")
    axes[0].legend()
    fig.tight_layout()
    atomic_save_figure(fig, prefix.with_suffix(".png"), dpi=110)
    print(f"wrote {prefix.with_suffix('.md')} and {prefix.with_suffix('.png')}")


if __name__ == "__main__":
    main()
