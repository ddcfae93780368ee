"""How much does a σ-sized perturbation hurt an ES run's final center?

A diagnostic for the limb-failure runs: PGPE's population-mean fitness is the
center's fitness under perturbations of standard deviation σ. This script
measures both directly on the same episodes (common seeds): the center, and
``--samples`` perturbed copies, perturbing all parameters, only the ordinary
weights, or only the plasticity parameters (alpha, modulator).

    python scripts/es_sensitivity.py results/limb_failure_long/plastic-seed0 results/limb_failure_long/static-seed0

Fitness = return minus the alive bonus per step (``--decrease-rewards-by``), as in the search.
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any, Callable, Dict, List

import numpy as np
import torch

from plastic_rl.agents.evaluate import load_quadruped_run, run_episodes


def fitness(policy: torch.nn.Module, run: Dict[str, Any], seeds: List[int], decrease: float) -> float:
    result = run_episodes(policy, run["obs_norm"], run["env_id"], [dict(run["env_kwargs"])] * len(seeds), run["episode_length"], seeds=seeds)
    return float(np.mean(np.asarray(result["returns"]) - decrease * np.asarray(result["lengths"])))


def perturbed_fitness(base: torch.nn.Module, run, seeds, decrease, sigma, samples, keep: Callable[[str], bool]) -> List[float]:
    values = []
    for _ in range(samples):
        policy = copy.deepcopy(base)
        with torch.no_grad():
            for name, tensor in policy.named_parameters():
                if keep(name):
                    tensor.add_(sigma * torch.randn_like(tensor))
        values.append(fitness(policy, run, seeds, decrease))
    return values


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--sigma", type=float, default=0.02)
    parser.add_argument("--samples", type=int, default=10, help="perturbed copies per group")
    parser.add_argument("--episodes", type=int, default=6, help="episodes per fitness (the same seeds for every copy)")
    parser.add_argument("--decrease-rewards-by", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("samples", "episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer; got {getattr(args, name)}.")
    if not args.sigma > 0:
        parser.error(f"--sigma must be a positive number; got {args.sigma}.")

    torch.manual_seed(args.seed)
    seeds = list(range(500, 500 + args.episodes))
    report: Dict[str, Any] = {}
    for run_dir in args.run_dirs:
        run = load_quadruped_run(run_dir, "center_policy")
        base = run["policy"]
        groups = {"all": lambda n: True}
        if any("plasticity" in n for n, _ in base.named_parameters()):
            groups.update({"weights only": lambda n: "plasticity" not in n, "plasticity only": lambda n: "plasticity" in n})
        result = {"center": fitness(base, run, seeds, args.decrease_rewards_by)}
        for group, keep in groups.items():
            values = perturbed_fitness(base, run, seeds, args.decrease_rewards_by, args.sigma, args.samples, keep)
            result[group] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        report[run_dir] = result
        print(run_dir, json.dumps(result), flush=True)
    return report


if __name__ == "__main__":
    main()
