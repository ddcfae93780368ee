"""Throughput of the batched maze (:class:`MazeVectorEnv`) against gymnasium's SyncVectorEnv.

``python -m plastic_rl.envs.maze_bench`` prints the table; the CLI's
``plastic-rl bench maze`` can call :func:`bench_maze_env` directly.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch

from plastic_rl.envs.maze import MazeVectorEnv

__all__ = ["bench_maze_env", "format_bench_table"]


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously; the clock must wait for them.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_vector(env: MazeVectorEnv, actions: torch.Tensor | np.ndarray, device: torch.device) -> float:
    """Seconds to step ``env`` once per row of ``actions`` (after one warm-up step)."""
    env.reset(seed=0)
    env.step(actions[0])
    _sync(device)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    _sync(device)
    return time.perf_counter() - start


def bench_maze_env(
    num_envs_list: Sequence[int] = (1, 64, 1024, 4096),
    steps: int = 200,
    device: str | torch.device = "cpu",
    num_threads: int | None = 1,
    sync_env_steps: int = 20_000,
    env_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Measure env steps per second of the batched maze and of a SyncVectorEnv.

    :param num_envs_list: the batch sizes N to measure.
    :param steps: batched steps timed per N for :class:`MazeVectorEnv`.
    :param device: torch device of the batched env.
    :param num_threads: torch intra-op threads during the benchmark (restored
        afterwards); ``None`` leaves the current setting.
    :param sync_env_steps: about how many single-env steps to time for the
        SyncVectorEnv reference at each N (it is slow at large N); at least
        3 batched steps are always timed.
    :param env_kwargs: maze keyword arguments (size, episode_length, ...).
    :return: one dict per N with ``num_envs``, ``device``, ``steps``,
        ``ms_per_step`` and ``steps_per_s`` (tensor mode: what a torch trainer
        sees), ``numpy_steps_per_s`` (numpy in and out), ``sync_steps_per_s``
        and ``speedup_vs_sync`` (tensor mode over sync). Steps per second
        count single-env steps, i.e. N per batched step.
    """
    dev = torch.device(device)
    kwargs = dict(env_kwargs or {})
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    results = []
    try:
        for n in num_envs_list:
            gen = torch.Generator().manual_seed(n)
            actions = torch.randint(0, 4, (steps + 1, n), generator=gen)

            env = MazeVectorEnv(n, device=dev, as_tensor=True, **kwargs)
            tensor_s = _time_vector(env, actions.to(dev), dev)
            env = MazeVectorEnv(n, device=dev, as_tensor=False, **kwargs)
            numpy_s = _time_vector(env, actions.numpy(), dev)

            sync_steps = max(3, min(steps, sync_env_steps // n))
            sync = gym.make_vec("plastic_rl/Maze-v0", num_envs=n, vectorization_mode="sync", **kwargs)
            sync.reset(seed=0)
            sync_actions = actions[: sync_steps + 1].numpy()
            sync.step(sync_actions[0])
            start = time.perf_counter()
            for a in sync_actions[1:]:
                sync.step(a)
            sync_s = time.perf_counter() - start
            sync.close()

            sps = n * steps / tensor_s
            sync_sps = n * sync_steps / sync_s
            results.append(
                {
                    "num_envs": n,
                    "device": str(dev),
                    "steps": steps,
                    "ms_per_step": 1e3 * tensor_s / steps,
                    "steps_per_s": sps,
                    "numpy_steps_per_s": n * steps / numpy_s,
                    "sync_steps_per_s": sync_sps,
                    "speedup_vs_sync": sps / sync_sps,
                }
            )
    finally:
        torch.set_num_threads(old_threads)
    return results


def format_bench_table(results: Sequence[dict[str, Any]]) -> str:
    """Render :func:`bench_maze_env` results as a plain-text table."""
    lines = [
        f"{'N':>6} {'ms/step':>9} {'steps/s (tensor)':>17} {'steps/s (numpy)':>16} "
        f"{'steps/s (sync)':>15} {'speed-up':>9}"
    ]
    for r in results:
        lines.append(
            f"{r['num_envs']:>6} {r['ms_per_step']:>9.3f} {r['steps_per_s']:>17,.0f} "
            f"{r['numpy_steps_per_s']:>16,.0f} {r['sync_steps_per_s']:>15,.0f} "
            f"{r['speedup_vs_sync']:>8.1f}x"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m plastic_rl.envs.maze_bench [--device cuda]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    results = bench_maze_env(args.num_envs, args.steps, args.device, args.threads)
    print(f"device={args.device} threads={args.threads} steps={args.steps}")
    print(format_bench_table(results))


if __name__ == "__main__":
    main()
