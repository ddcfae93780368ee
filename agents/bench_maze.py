"""``plastic-rl bench maze``: batched maze throughput and A2C seconds per iteration.

Two figures, both on one CPU thread unless ``--threads`` says otherwise:

1. env steps/s of :class:`~plastic_rl.envs.maze.MazeVectorEnv` at N = 1, 64,
   1024, 4096 and the ratio to gymnasium's ``sync`` vector env of single mazes
   (from :func:`plastic_rl.envs.maze_bench.bench_maze_env`);
2. seconds per full-episode A2C iteration at Backpropamine's settings (batch 30,
   200 steps, hidden 100): rollout with graph, backward through the whole
   episode and the Adam step, for each network variant.

Targets (issue #3): >= 1,000,000 env steps/s at N = 4096; <= 0.2 s per A2C
iteration (the original Backpropamine code takes 0.59 s on the 2-core machine).
"""

from __future__ import annotations

import platform
import time
from typing import Any, Dict, List, Optional

import torch

from plastic_rl.agents.a2c import Config, a2c_update, build_policy_for, make_optimizer
from plastic_rl.envs.maze import MazeVectorEnv
from plastic_rl.envs.maze_bench import bench_maze_env, format_bench_table
from plastic_rl.policies import count_parameters
from plastic_rl.runs import atomic_write_json, platform_record

A2C_VARIANTS = {
    "plastic simple": dict(modulation="simple"),
    "plastic retroactive": dict(modulation="retroactive"),
    "plastic none": dict(modulation="none"),
    "non-plastic (matched)": dict(plastic=False),
    "plastic LSTM simple": dict(cell="lstm", modulation="simple"),
}


def time_a2c_iterations(config: Config, iterations: int, warmup: int = 2) -> Dict[str, float]:
    """Median and mean seconds of ``iterations`` A2C iterations (after ``warmup`` untimed ones)."""
    torch.manual_seed(config.seed)
    policy = build_policy_for(config)
    optimizer = make_optimizer(policy, config)
    env = MazeVectorEnv(config.batch_size, device=config.device, as_tensor=True, **config.env_kwargs)
    times = []
    for i in range(warmup + iterations):
        start = time.perf_counter()
        a2c_update(policy, optimizer, env, config, seed=i * config.batch_size)
        if config.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return {"median_s": times[len(times) // 2], "mean_s": sum(times) / len(times), "iterations": iterations}


def main(quick: bool = False, output: Optional[str] = None, threads: int = 1, device: str = "cpu") -> Dict[str, Any]:
    """Run the benchmark, print the tables, optionally write JSON to ``output``.

    :param quick: a short run (seconds): fewer steps, N up to 1024, two A2C iterations.
    :param output: a JSON file for the figures.
    :param threads: torch intra-op threads.
    :param device: torch device.
    """
    torch.set_num_threads(threads)
    sizes = (1, 64, 1024) if quick else (1, 64, 1024, 4096)
    env_results = bench_maze_env(sizes, steps=20 if quick else 200, device=device, num_threads=threads,
                                 sync_env_steps=2_000 if quick else 20_000)
    print(f"Batched maze, {threads} thread(s), device {device}")
    print(format_bench_table(env_results))

    a2c_results: List[Dict[str, Any]] = []
    variants = {"plastic simple": A2C_VARIANTS["plastic simple"]} if quick else A2C_VARIANTS
    iterations = 2 if quick else 10
    print(f"\nA2C, Backpropamine settings (batch 30, 200 steps, hidden 100), {iterations} timed iterations")
    print(f"{'variant':24s} {'params':>7} {'s/iter (median)':>16} {'s/iter (mean)':>14} {'episodes/s':>11}")
    for name, overrides in variants.items():
        config = Config(device=device, num_threads=threads, **overrides)
        timing = time_a2c_iterations(config, iterations, warmup=1 if quick else 2)
        params = count_parameters(build_policy_for(config))
        row = {"variant": name, "parameters": params, **timing, "episodes_per_s": config.batch_size / timing["median_s"]}
        a2c_results.append(row)
        print(f"{name:24s} {params:>7} {timing['median_s']:>16.3f} {timing['mean_s']:>14.3f} {row['episodes_per_s']:>11.1f}")

    result = {
        "platform": platform_record(),  # CPU model and package versions: timings compare only within one platform
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": threads, "device": device},
        "env": env_results,
        "a2c": a2c_results,
    }
    if output:
        atomic_write_json(output, result)
        print(f"\nwrote {output}")
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    main(args.quick, args.output, args.threads, args.device)
