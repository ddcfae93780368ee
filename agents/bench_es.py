"""``plastic-rl bench es``: env steps per second of an ES generation on the quadruped.

Measures, on this machine and now (other load on the machine shows in the figures):

- the ES generation (EvoTorch ``VecGymNE`` + PGPE, one batched forward per step)
  with a plastic MLP and with the static MLP of the same shape (target: plastic ≥ 0.8 × static);
- the plastic MLP with ``num_actors`` = 1 vs 2 Ray actors (target ≥ 1.6 ×);
- the ceilings: raw MuJoCo ``mj_step`` on the Ant model (divided by Ant's frame
  skip of 5 to give env steps/s) and gymnasium's ``Ant-v5.step`` alone;
- EvoTorch's plain ``GymNE`` with a static 64-64 MLP on ``Ant-v5`` (the issue's reference baseline).

Every ES figure is the mean over timed generations after one warm-up
generation (env construction, first vmap trace, Ray actor start-up excluded).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from plastic_rl.agents import es
from plastic_rl.runs import platform_record


def _timed_generations(searcher, problem, generations: int) -> Dict[str, float]:
    """Run ``1 + generations`` generations; steps/s over the timed ones."""
    searcher.step()  # warm-up
    steps0, t0 = problem.interaction_count, time.perf_counter()
    for _ in range(generations):
        searcher.step()
    seconds = time.perf_counter() - t0
    steps = problem.interaction_count - steps0
    return {"env_steps": int(steps), "seconds": round(seconds, 3), "steps_per_second": round(steps / seconds, 1)}


def bench_es_generation(plastic: bool, num_actors: int, popsize: int, episode_length: int, generations: int) -> Dict[str, Any]:
    """Steps/s of PGPE generations on the quadruped (random leg failures) with a plastic or static 64-64 MLP.

    :param plastic: plastic or static MLP.
    :param num_actors: Ray actors (0/1: this process).
    :param popsize: population size.
    :param episode_length: steps per episode.
    :param generations: timed generations (after one warm-up).
    """
    config = es.Config(plastic=plastic, num_actors=num_actors, popsize=popsize, episode_length=episode_length, center_eval_episodes=0)
    obs_size, action_size = es.env_spaces(config.env_id, config.env_kwargs)
    policy = es.build_policy(config, obs_size, action_size)
    started_ray = es.init_ray(config)
    problem = es.make_problem(config, policy)
    try:
        searcher = es.make_searcher(config, problem, nn.utils.parameters_to_vector(policy.parameters()).detach())
        result = _timed_generations(searcher, problem, generations)
    finally:
        if num_actors > 1:
            problem.kill_actors()
        if started_ray:
            import ray

            ray.shutdown()
    result["parameters"] = sum(p.numel() for p in policy.parameters())
    return result


def bench_gymne_baseline(popsize: int, episode_length: int, generations: int) -> Dict[str, Any]:
    """EvoTorch's plain ``GymNE`` on ``Ant-v5``, static 64-64 tanh MLP, PGPE (one forward per env per step)."""
    from evotorch.algorithms import PGPE
    from evotorch.neuroevolution import GymNE

    problem = GymNE(
        "Ant-v5", "Linear(obs_length, 64) >> Tanh() >> Linear(64, 64) >> Tanh() >> Linear(64, act_length)",
        env_config={"max_episode_steps": episode_length}, observation_normalization=True,
    )
    searcher = PGPE(problem, popsize=popsize, center_learning_rate=0.01, stdev_learning_rate=0.1, stdev_init=0.02,
                    optimizer="clipup", optimizer_config={"max_speed": 0.02})
    return _timed_generations(searcher, problem, generations)


def bench_raw_step(steps: int) -> Dict[str, Any]:
    """Raw ``mujoco.mj_step`` on Ant-v5's model, and gymnasium's ``Ant-v5.step`` with random actions."""
    import gymnasium as gym
    import mujoco

    env = gym.make("Ant-v5")
    env.reset(seed=0)
    model, data = env.unwrapped.model, env.unwrapped.data
    frame_skip = int(env.unwrapped.frame_skip)
    data.ctrl[:] = 0.1
    t0 = time.perf_counter()
    for _ in range(steps * frame_skip):
        mujoco.mj_step(model, data)
    mj_seconds = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, env.action_space.shape[0]))
    env.reset(seed=0)
    t0 = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    env_seconds = time.perf_counter() - t0
    env.close()
    return {
        "frame_skip": frame_skip,
        "mj_step_per_second": round(steps * frame_skip / mj_seconds, 1),
        "mj_step_env_steps_per_second": round(steps / mj_seconds, 1),
        "gym_ant_step_per_second": round(steps / env_seconds, 1),
    }


def main(quick: bool = False, output: Optional[str] = None, popsize: Optional[int] = None,
         episode_length: Optional[int] = None) -> Dict[str, Any]:
    """Run the ES benchmark, print a table and optionally write JSON.

    :param quick: short episodes, small population, one timed generation, no Ray (seconds, not minutes).
    :param output: also write the figures to this JSON file.
    :param popsize: population size (default 20, or 8 with ``quick``). The per-step cost of the
        forward and of EvoTorch's bookkeeping is shared by the whole population (one batched
        forward per step), so larger populations get closer to the mj_step ceiling.
    :param episode_length: steps per episode (default 1000, or 50 with ``quick``).
    """
    torch.set_num_threads(1)
    for name in ("evotorch", "evotorch.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    default_popsize, default_length, gens = (8, 50, 1) if quick else (20, 1000, 2)
    popsize = default_popsize if popsize is None else int(popsize)
    length = default_length if episode_length is None else int(episode_length)
    setup = {"popsize": popsize, "episode_length": length, "timed_generations": gens, "algorithm": "pgpe",
             "policy": "MLP 64-64 tanh", "env": "plastic_rl/AntLegFailure-v0 (random leg failures)",
             "platform": platform_record(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "quick": quick}
    results: Dict[str, Any] = {"setup": setup}
    print(f"ES benchmark: PGPE popsize {popsize}, {length}-step episodes, {gens} timed generation(s) after a warm-up")
    results["raw"] = bench_raw_step(2000 if quick else 20000)
    results["static_1"] = bench_es_generation(False, 0, popsize, length, gens)
    results["plastic_1"] = bench_es_generation(True, 0, popsize, length, gens)
    results["plastic_2_actors"] = None if quick else bench_es_generation(True, 2, popsize, length, gens)
    results["gymne_static_baseline"] = bench_gymne_baseline(popsize, length, gens)

    ceiling = results["raw"]["mj_step_env_steps_per_second"]
    plastic, static = results["plastic_1"]["steps_per_second"], results["static_1"]["steps_per_second"]
    two = results["plastic_2_actors"]["steps_per_second"] if results["plastic_2_actors"] else None
    results["ratios"] = {
        "plastic_over_static": round(plastic / static, 3),
        "two_actors_over_one": round(two / plastic, 3) if two else None,
        "plastic_over_gymne_baseline": round(plastic / results["gymne_static_baseline"]["steps_per_second"], 3),
        "plastic_fraction_of_mj_step_ceiling": round(plastic / ceiling, 3),
        "two_actors_fraction_of_2x_ceiling": round(two / (2 * ceiling), 3) if two else None,
    }
    rows = [
        ("raw mj_step (Ant, /frame_skip)", ceiling, "ceiling, 1 core"),
        ("gymnasium Ant-v5.step alone", results["raw"]["gym_ant_step_per_second"], ""),
        ("EvoTorch GymNE, static MLP", results["gymne_static_baseline"]["steps_per_second"], "reference baseline"),
        ("VecGymNE, static MLP", static, ""),
        ("VecGymNE, plastic MLP", plastic, f"{results['ratios']['plastic_over_static']:.2f}x static (target >= 0.8)"),
        ("VecGymNE, plastic MLP, 2 actors", two, f"{results['ratios']['two_actors_over_one']:.2f}x 1 actor (target >= 1.6)" if two else "skipped (--quick)"),
    ]
    print(f"{'setup':<36} {'env steps/s':>12}  note")
    for name, value, note in rows:
        print(f"{name:<36} {'-' if value is None else f'{value:,.0f}':>12}  {note}")
    print(f"plastic MLP reaches {results['ratios']['plastic_fraction_of_mj_step_ceiling']:.0%} of the mj_step ceiling on one core")
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(results, indent=2) + "\n")
        print(f"written: {output}")
    return results
