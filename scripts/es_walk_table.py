"""The ES-walk pilot table (issue 12): intact forward velocity of each run's ES center against env steps.

For every run folder given (ES runs on the quadruped), reads the last row of its
``metrics.csv`` (generation, env steps, wall time, population mean and center fitness)
and evaluates its checkpoint's center policy intact, as
``plastic-rl evaluate RUN --failures none --episodes 5 --policy center`` does, then
writes a markdown table (and a JSON of the same rows)::

    python scripts/es_walk_table.py results/es_walk/p1_old results/es_walk/p2_evotorch \\
        --output results/es_walk/pilots.md

Per-step efficiency is the velocity divided by the env steps (in millions) it took.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

from plastic_rl.agents.evaluate import evaluate_run
from plastic_rl.runs import CONFIG_FILE, METRICS_FILE, atomic_write_json, atomic_write_text, read_metrics

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is a dependency of the package
    yaml = None


def run_row(run_dir: Path, episodes: int) -> Dict[str, Any]:
    """One table row: the run's search setting, budget and its center's intact velocity.

    :param run_dir: an ES run folder with a checkpoint.
    :param episodes: evaluation episodes (intact).
    """
    rows = read_metrics(run_dir / METRICS_FILE)
    last = rows[-1]
    config = yaml.safe_load((run_dir / CONFIG_FILE).read_text()) if yaml else {}
    t0 = time.perf_counter()
    result = evaluate_run(run_dir, failures="none", episodes=episodes, policy_key="center_policy", plot=False, quiet=True)
    intact = result["conditions"]["intact"]
    steps = int(last["env_steps"])
    return {
        "run": run_dir.name,
        "plastic": config.get("plastic"),
        "obs": "27" if config.get("env_kwargs", {}).get("include_cfrc_ext_in_observation") is False else "105",
        "popsize": config.get("popsize"),
        "stdev_init": config.get("stdev_init"),
        "center_learning_rate": config.get("center_learning_rate"),
        "episode_length": config.get("episode_length"),
        "generation": int(last["generation"]),
        "env_steps": steps,
        "wall_time_s": float(last["wall_time"]),
        "mean_fitness": float(last["mean_fitness"]),
        "center_fitness": float(last["center_fitness"]),
        "mean_stdev": float(last["mean_stdev"]),
        "intact_velocity": float(intact["mean_forward_velocity"]),
        "falls": f"{intact['falls']}/{intact['episodes']}",
        "velocity_per_million_steps": float(intact["mean_forward_velocity"]) / max(steps / 1e6, 1e-9),
        "eval_seconds": round(time.perf_counter() - t0, 1),
    }


def markdown(rows: List[Dict[str, Any]]) -> str:
    """The rows as a markdown table.

    :param rows: rows from :func:`run_row`.
    """
    head = ("| run | plastic | obs | popsize | σ₀ | step (max speed 2×) | episode | gen | env steps | wall s "
            "| pop. mean fitness | center fitness | σ now | intact fwd vel (m/s) | falls | vel per M steps |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['plastic']} | {r['obs']} | {r['popsize']} | {r['stdev_init']} | {r['center_learning_rate']} "
            f"| {r['episode_length']} | {r['generation']} | {r['env_steps']:,} | {r['wall_time_s']:.0f} | {r['mean_fitness']:.1f} "
            f"| {r['center_fitness']:.1f} | {r['mean_stdev']:.4f} | {r['intact_velocity']:.3f} | {r['falls']} "
            f"| {r['velocity_per_million_steps']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="ES run folders")
    parser.add_argument("--episodes", type=int, default=5, help="intact evaluation episodes per run")
    parser.add_argument("--output", default="results/es_walk/pilots.md", help="markdown table (a .json of the rows beside it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [run_row(Path(r), args.episodes) for r in args.runs]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, markdown(rows))
    atomic_write_json(out.with_suffix(".json"), {"rows": rows, "episodes": args.episodes, "policy": "center_policy"})
    print(markdown(rows))


if __name__ == "__main__":
    main()
