"""The README's maze table from the run folders' metrics.csv: return at the step budget and at PlasticPPO's wall time.

    python results/es_vs_gradient_maze/table.py [results/es_vs_gradient_maze/runs] [--window 12] [--min-steps 300000]
        [--at 300000 500000 1000000]

(Run folders that have not reached --min-steps are left out.)
Return at a point = mean of the per-rollout training returns (8 episodes each) over the `window`
rollouts up to that point (12 rollouts = 96 episodes, the trainer's final_reward window).
"""
import argparse
import csv
from pathlib import Path
from collections import defaultdict

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="?", default="results/es_vs_gradient_maze/runs")
    p.add_argument("--min-steps", type=int, default=300000)
    p.add_argument("--window", type=int, default=12)
    p.add_argument("--method-at-wall", default="ppo", help="the method whose median wall time sets the equal-wall-time point")
    p.add_argument("--at", type=int, nargs="*", default=[], help="also print the return at these env steps")
    a = p.parse_args()
    runs = defaultdict(list)
    for path in sorted(Path(a.runs).glob("*-seed*/metrics.csv")):
        name = path.parent.name
        method, seed = name.rsplit("-seed", 1)
        rows = [(int(r["env_steps"]), float(r["wall_time"]), float(r["mean_return"])) for r in csv.DictReader(open(path))]
        if rows and rows[-1][0] >= a.min_steps:
            runs[(method, "lstm" if method == "rppo" else "static" if method.endswith("-static") else "plastic", int(seed))] = rows

    def window(rows, key, limit):
        vals = [ret for s, w, ret in rows if (s if key == "steps" else w) <= limit][-a.window:]
        return float(np.mean(vals)) if vals else float("nan")

    def stat(xs):
        xs = np.asarray(xs, dtype=float)
        xs = xs[np.isfinite(xs)]
        if xs.size == 0:
            return "–"
        return f"{np.median(xs):.1f} [{np.percentile(xs, 25):.1f}, {np.percentile(xs, 75):.1f}]"

    walls = [rows[-1][1] for (m, v, s), rows in runs.items() if m == a.method_at_wall]
    t_equal = float(np.median(walls))
    methods = sorted({(m, v) for m, v, s in runs})
    print(f"equal wall time = median wall time of {a.method_at_wall}: {t_equal:.0f} s")
    print("| method | variant | seeds | env steps | return at the end, median [IQR] | per seed | return at "
          f"{t_equal:.0f} s | steps reached by then | wall time per run | steps/s |")
    print("|---|---|---|---:|---:|---|---:|---:|---:|---:|")
    for m, v in methods:
        seeds = sorted(s for mm, vv, s in runs if (mm, vv) == (m, v))
        rs = [runs[(m, v, s)] for s in seeds]
        final = [window(r, "steps", r[-1][0]) for r in rs]
        at_t = [window(r, "wall", t_equal) for r in rs]
        reached = [max([s for s, w, _ in r if w <= t_equal] or [0]) for r in rs]
        wall = [r[-1][1] for r in rs]
        sps = [r[-1][0] / r[-1][1] for r in rs]
        print(f"| {m} | {v} | {','.join(map(str, seeds))} | {int(np.median([r[-1][0] for r in rs])):,} | {stat(final)} | "
              f"{', '.join(f'{x:.1f}' for x in final)} | {stat(at_t)} | {int(np.median(reached)):,} | "
              f"{', '.join(f'{x:.0f}' for x in wall)} s | {np.median(sps):.0f} |")
    if a.at:
        print()
        print("| method | seeds | " + " | ".join(f"return at {n:,} steps, median [IQR] (per seed)" for n in a.at) + " |")
        print("|---|---|" + "---:|" * len(a.at))
        for m, v in methods:
            seeds = sorted(s for mm, vv, s in runs if (mm, vv) == (m, v))
            cells = []
            for n in a.at:
                # a run that has not reached n steps yet counts as missing (nan), not as its last value
                values = [window(runs[(m, v, s)], "steps", n) if runs[(m, v, s)][-1][0] >= n else float("nan") for s in seeds]
                cells.append(f"{stat(values)} ({', '.join(f'{x:.1f}' for x in values)})")
            print(f"| {m} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
