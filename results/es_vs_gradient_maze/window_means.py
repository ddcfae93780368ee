"""Mean training return over env-step windows (every rollout in the window), per run and median over seeds.

    python results/es_vs_gradient_maze/window_means.py results/es_vs_gradient_maze_long/runs \
        --windows 400000:500000 500000:750000 750000:1000000 900000:1000000

A window of 100k steps holds about 62 rollouts (500 episodes), against the 12 rollouts (96 episodes) of
table.py's point values, so it is the steadier measure of where a run stands.
"""
import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs")
    p.add_argument("--windows", nargs="+", default=["400000:500000", "500000:750000", "750000:1000000", "900000:1000000"])
    a = p.parse_args()
    windows = [tuple(int(x) for x in w.split(":")) for w in a.windows]
    by_method = defaultdict(dict)
    for path in sorted(Path(a.runs).glob("*-seed*/metrics.csv")):
        method, seed = path.parent.name.rsplit("-seed", 1)
        rows = [(int(r["env_steps"]), float(r["mean_return"])) for r in csv.DictReader(open(path))]
        by_method[method][int(seed)] = rows
    print("| method | seeds | " + " | ".join(f"{lo // 1000}k–{hi // 1000}k, median (per seed)" for lo, hi in windows) + " |")
    print("|---|---|" + "---:|" * len(windows))
    for method, runs in sorted(by_method.items()):
        seeds = sorted(runs)
        cells = []
        for lo, hi in windows:
            values = [np.mean([r for s, r in runs[seed] if lo < s <= hi]) if runs[seed][-1][0] >= hi else np.nan for seed in seeds]
            finite = [v for v in values if np.isfinite(v)]
            cells.append(f"{np.median(finite):.1f} ({', '.join(f'{v:.1f}' for v in values)})" if finite else "–")
        print(f"| {method} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
