"""Does a plastic ES center walk better with its plasticity coefficients scaled down?

A diagnostic for issue 12's question "why does the plastic search degrade and the static one not?".
PGPE perturbs every parameter with the same σ (0.02 per parameter in the walk and limb-failure runs),
while the plastic MLP's alpha (the weight of each synapse's Hebbian trace) starts near 0.005: the
search noise is 4x alpha's own scale, and a dimension without a consistent gradient random-walks.
This script loads a run's ES center, multiplies every ``plasticity.alpha`` by each ``--scales``
value (0 switches the plasticity off, the network then acts as its static weights), and runs the
same deterministic episodes on the run's own env: fitness (return minus the alive bonus, as in the
search), forward velocity, and episode length.

    python scripts/es_alpha_scale.py results/es_walk/plastic_old results/limb_failure_long/plastic-seed0 \
        --output results/es_walk/alpha_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List

import numpy as np
import torch

from plastic_rl.agents import es
from plastic_rl.agents.es_policy import build_policy, env_spaces
from plastic_rl.agents.evaluate import load_quadruped_run, run_episodes
from plastic_rl.agents.evaluate_maze import scale_plasticity
from plastic_rl.config import config_from_dict, load_yaml
from plastic_rl.runs import CONFIG_FILE, atomic_write_json


def measure(policy: torch.nn.Module, run: Dict[str, Any], seeds: List[int], decrease: float) -> Dict[str, float]:
    """Fitness, mean forward velocity over the steps lived, and mean length on ``seeds`` (one episode each)."""
    result = run_episodes(policy, run["obs_norm"], run["env_id"], [dict(run["env_kwargs"])] * len(seeds),
                          run["episode_length"], seeds=seeds, record_velocity=True)
    return {
        "fitness": float(np.mean(result["returns"] - decrease * result["lengths"])),
        "velocity": float(np.nanmean(result["velocities"])),
        "length": float(np.mean(result["lengths"])),
        "falls": int(np.sum(result["terminated"])),
    }


def drift(run_dir: str, policy: torch.nn.Module) -> Dict[str, Dict[str, float]]:
    """How far each kind of parameter moved from the run's initial policy (rebuilt as es.train seeds it).

    Kinds: ``weight``, ``bias``, ``alpha``, ``modulator`` (weights and biases of the neuromodulator), pooled
    over layers: root-mean-square distance from the start, and mean |value| at the start and now, in the
    searched parameters' units (with ``alpha_scale`` != 1 the stored alpha parameter, alpha / alpha_scale;
    the report's ``mean_abs_alpha`` is the effective alpha).

    :param run_dir: the ES run folder (its config.yaml gives the network and the seed).
    :param policy: the run's current center policy.
    """
    fields = {k: v for k, v in load_yaml(os.path.join(run_dir, CONFIG_FILE)).items() if k != "trainer"}
    config = config_from_dict(es.Config, fields, source=run_dir)
    torch.manual_seed(config.seed)  # es.train seeds torch this way right before building the policy
    obs_size, action_size = env_spaces(config.env_id, config.env_kwargs)
    start = dict(build_policy(config, obs_size, action_size).named_parameters())
    pooled: Dict[str, List[torch.Tensor]] = {}
    for name, now in policy.named_parameters():
        kind = "alpha" if name.endswith("alpha") else "modulator" if ".modulator" in name else name.rsplit(".", 1)[-1]
        pooled.setdefault(kind, []).append(torch.stack([now.detach().flatten(), start[name].detach().flatten()]))
    out = {}
    for kind, parts in pooled.items():
        now, init = torch.cat(parts, dim=1)
        out[kind] = {"rms_drift": float((now - init).pow(2).mean().sqrt()), "mean_abs_start": float(init.abs().mean()),
                     "mean_abs_now": float(now.abs().mean())}
    return out


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="ES run folders of plastic policies on the quadruped")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.0])
    parser.add_argument("--episodes", type=int, default=6, help="episodes per measurement (the same seeds for every scale)")
    parser.add_argument("--decrease-rewards-by", type=float, default=1.0)
    parser.add_argument("--output", default=None, help="write the report as JSON here")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be a positive integer; got {args.episodes}.")
    if any(s < 0 for s in args.scales):
        parser.error(f"--scales must be non-negative numbers; got {args.scales}.")
    torch.set_num_threads(1)
    seeds = list(range(500, 500 + args.episodes))
    report: Dict[str, Any] = {}
    for run_dir in args.run_dirs:
        run = load_quadruped_run(run_dir, "center_policy")
        # effective alpha (the parameter times the run's alpha_scale); scaling the parameter scales it alike
        alphas = [m.effective_alpha() for m in run["policy"].modules() if hasattr(m, "effective_alpha")]
        if not alphas:
            parser.error(f"{run_dir!r} holds no plastic policy (no plasticity.alpha parameter).")
        entry: Dict[str, Any] = {"generation": run["generation"], "mean_abs_alpha": float(torch.cat([a.detach().abs().flatten() for a in alphas]).mean()),
                                 "drift_from_start": drift(run_dir, run["policy"])}
        for scale in args.scales:
            entry[f"alpha x {scale:g}"] = measure(scale_plasticity(run["policy"], scale), run, seeds, args.decrease_rewards_by)
        report[run_dir] = entry
        print(run_dir, json.dumps(entry), flush=True)
    if args.output:
        atomic_write_json(args.output, report)
    return report


if __name__ == "__main__":
    main()
