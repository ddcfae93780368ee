"""How much of an ES step is episode noise? Redraw the episodes under the same perturbations and compare.

PGPE's step at a center c comes from the ranks of c ± ε_k over one episode each. Two things make it
noisy: which perturbations ε were drawn, and which episodes (Ant's start noise, the leg that fails)
each member ran. This script holds the first fixed and redraws the second: for each repeat it samples
one symmetric population around c (σ from the run, or ``--stdev``), evaluates it twice on independent
episodes, turns each evaluation into PGPE's direction Σ_k (u(f⁺_k) − u(f⁻_k)) ε_k (u: EvoTorch's centered
ranks, as PGPE ranks), and reports the cosine between the two directions. 1 means the episodes do not
matter; near 0 means the step is mostly the episodes drawn. This cosine hardly changes with the popsize
(signal and episode noise both add up over the members); the cosine between directions of different
repeats (new ε, new episodes: two independent steps from c) should, and is reported too. It does so for each ``shared_episodes`` mode
(``none``: every member its own episode; ``pairs``: common random numbers for each ± pair), so one can
see whether common random numbers make the step repeatable; ``--popsize`` and ``--num-episodes`` show
what more members or more episodes per member buy.

Also reported per mode: the correlation of f⁺ and f⁻ over the pairs, the share of a member's fitness
variance that comes from its episode (var(f₁ − f₂) / 2 / var(f)), and the mean fitness.

    python scripts/es_gradient_noise.py results/es_walk/p1_pop100 --stdev 0.02 --popsize 100 \\
        --env-kwargs '{failed_legs: random, failure_probs: {front_left: 0.25, front_right: 0.25, back_left: 0.25,
        back_right: 0.25}, include_cfrc_ext_in_observation: false}' --episode-length 500 \\
        --output results/limb_failure_ft_legs_pairs/gradient_noise_static_seed0.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from evotorch import SolutionBatch
from evotorch.tools import rank

from plastic_rl.agents import es
from plastic_rl.agents.es_policy import build_policy, env_spaces, make_problem
from plastic_rl.agents.evotorch_internals import restore_obs_norm
from plastic_rl.config import ConfigError, config_from_dict, load_yaml, yaml_mapping
from plastic_rl.runs import CHECKPOINT_FILE, CONFIG_FILE, RunDirError, atomic_write_json, load_checkpoint

MODES = ("none", "pairs")


def load_search_point(run_dir: str, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """The run's config (with ``overrides``), its policy network, center, σ and observation statistics."""
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(config_path) or not os.path.isfile(os.path.join(run_dir, CHECKPOINT_FILE)):
        raise RunDirError(f"run folder {run_dir!r} must hold an ES run's {CONFIG_FILE} and {CHECKPOINT_FILE}.")
    fields = {k: v for k, v in load_yaml(config_path).items() if k != "trainer"}
    if "algorithm" in fields and fields["algorithm"] not in ("pgpe", "openai-es"):
        raise ConfigError(f"run {run_dir!r} searched with {fields['algorithm']!r}; this script measures pgpe/openai-es steps.")
    config = config_from_dict(es.Config, {**fields, **overrides, "init_from": run_dir, "num_actors": 0}, source=run_dir)
    obs_size, action_size = env_spaces(config.env_id, config.env_kwargs)
    policy = build_policy(config, obs_size, action_size)
    center, obs_norm = es.load_init_policy(config, policy)
    sigma = load_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE))["searcher"]["distribution"]["sigma"].float()
    return {"config": config, "policy": policy, "center": center, "sigma": sigma, "obs_norm": obs_norm}


def pgpe_direction(values: torch.Tensor, fitness: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Σ_k (u(f⁺_k) − u(f⁻_k)) ε_k for a symmetric population (rows 2k = c + ε_k, 2k + 1 = c − ε_k)."""
    utility = rank(fitness, ranking_method="centered", higher_is_better=True)
    epsilon = values[0::2] - center
    return ((utility[0::2] - utility[1::2]).unsqueeze(1) * epsilon).sum(0)


def evaluate(problem, values: torch.Tensor, obs_norm: Optional[Dict[str, Any]], episode_seed: int) -> torch.Tensor:
    """One episode per member, episodes drawn from ``episode_seed``; obs statistics reset first (an evaluation updates them)."""
    restore_obs_norm(problem, obs_norm)
    batch = SolutionBatch(problem, popsize=values.shape[0], empty=True)
    batch.access_values()[:] = values
    es._seed_everything(episode_seed)
    problem.evaluate(batch)
    return batch.evals[:, 0].detach().clone()


def measure(point: Dict[str, Any], mode: str, popsize: int, repeats: int, seed: int, stdev: Optional[float]) -> Dict[str, Any]:
    """The cosine between two directions per repeat, and the fitness statistics, for one ``shared_episodes`` mode."""
    config = dataclasses.replace(point["config"], shared_episodes=mode, popsize=popsize)
    problem = make_problem(config, point["policy"])
    center = point["center"]
    sigma = torch.full_like(center, stdev) if stdev is not None else point["sigma"]
    cosines, correlations, episode_shares, means, directions = [], [], [], [], []
    for r in range(repeats):
        generator = torch.Generator().manual_seed(seed * 1_000 + r)  # the same ε for every mode
        epsilon = torch.randn(popsize // 2, center.numel(), generator=generator) * sigma
        values = torch.stack([center + epsilon, center - epsilon], dim=1).reshape(popsize, -1)
        f1 = evaluate(problem, values, point["obs_norm"], episode_seed=seed * 1_000 + 2 * r)
        f2 = evaluate(problem, values, point["obs_norm"], episode_seed=seed * 1_000 + 2 * r + 1)
        g1, g2 = pgpe_direction(values, f1, center), pgpe_direction(values, f2, center)
        cosines.append(float(torch.nn.functional.cosine_similarity(g1, g2, dim=0)))
        directions.append((g1, g2))
        for f in (f1, f2):
            correlations.append(float(np.corrcoef(f[0::2].numpy(), f[1::2].numpy())[0, 1]))
        episode_shares.append(float((f1 - f2).var() / 2 / torch.cat([f1, f2]).var()))
        means.append(float(torch.cat([f1, f2]).mean()))
        print(f"  {mode}: repeat {r + 1}/{repeats}  cos {cosines[-1]:+.2f}  corr(f+, f-) {correlations[-1]:+.2f}  "
              f"episode share {episode_shares[-1]:.2f}  mean fitness {means[-1]:.1f}", flush=True)
    # Directions from different repeats share neither ε nor episodes: their cosine is what two independent
    # steps from c have in common (near |s|² / (|s|² + |noise|²) for a true direction s, which in theory grows with popsize).
    independent = [float(torch.nn.functional.cosine_similarity(a, b, dim=0))
                   for r in range(len(directions)) for q in range(r + 1, len(directions))
                   for a in directions[r] for b in directions[q]]
    return {"cosine": cosines, "cosine_mean": float(np.mean(cosines)),
            "cosine_independent": independent, "cosine_independent_mean": float(np.mean(independent)) if independent else None,
            "pair_correlation": correlations,
            "pair_correlation_mean": float(np.mean(correlations)), "episode_variance_share": episode_shares,
            "episode_variance_share_mean": float(np.mean(episode_shares)), "mean_fitness": float(np.mean(means))}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="an ES run folder (pgpe or openai-es): its center, σ, network and obs statistics")
    parser.add_argument("--env-kwargs", default=None, metavar="YAML",
                        help="the episodes to measure on, as the config's env_kwargs (default: the run's own)")
    parser.add_argument("--episode-length", type=int, default=None, help="default: the run's")
    parser.add_argument("--popsize", type=int, default=100, help="members per population, even (default 100)")
    parser.add_argument("--num-episodes", type=int, default=1, help="episodes per member, fitness = their mean (default 1)")
    parser.add_argument("--stdev", type=float, default=None, help="σ per parameter (default: the run's current σ)")
    parser.add_argument("--repeats", type=int, default=3, help="populations per mode (default 3)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON file for the measurements")
    args = parser.parse_args(argv)
    try:
        if args.popsize < 2 or args.popsize % 2:
            raise ValueError(f"--popsize must be an even number >= 2; got {args.popsize}.")
        if args.repeats < 1:
            raise ValueError(f"--repeats must be a positive integer; got {args.repeats}.")
        if args.stdev is not None and not args.stdev > 0:
            raise ValueError(f"--stdev must be a positive number; got {args.stdev}.")
        overrides: Dict[str, Any] = {}
        if args.env_kwargs is not None:
            env_kwargs = yaml_mapping(args.env_kwargs)
            if env_kwargs is None:
                raise ValueError(f"--env-kwargs must be a YAML mapping such as '{{failed_legs: random}}'; got {args.env_kwargs!r}.")
            overrides["env_kwargs"] = env_kwargs
        if args.episode_length is not None:
            overrides["episode_length"] = args.episode_length
        overrides["num_episodes"] = args.num_episodes
        point = load_search_point(args.run, overrides)
    except (ConfigError, RunDirError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    result: Dict[str, Any] = {"run": args.run, "args": vars(args), "parameters": int(point["center"].numel()),
                              "stdev_mean": float(args.stdev if args.stdev is not None else point["sigma"].mean())}
    for mode in args.modes:
        result[mode] = measure(point, mode, args.popsize, args.repeats, args.seed, args.stdev)
        independent = result[mode]["cosine_independent_mean"]
        print(f"{mode}: cos {result[mode]['cosine_mean']:+.2f}  independent steps "
              f"{'n/a (one repeat)' if independent is None else f'{independent:+.3f}'}  corr(f+, f-) {result[mode]['pair_correlation_mean']:+.2f}  "
              f"episode share of fitness variance {result[mode]['episode_variance_share_mean']:.2f}", flush=True)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        atomic_write_json(args.output, result)
        print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
