"""Where MetaplasticAdam consolidates: the size of a continual run's weights, tensor by tensor.

MetaplasticAdam damps a step that would shrink |W| by f_meta = 1 − tanh²(m·|W|), so it protects
only the weights that have grown. This reads a continual run's checkpoint (``plastic-rl continual``,
any method: PPO's policy state dict, A2C's and ES's exported policy) and prints, for every tensor of
dimension > 1 (the ones MetaplasticAdam treats; 1-D tensors get plain Adam), its mean |W|, the share
of entries with |W| > 0.5, the share of positive entries (for a binarized tensor, whose forward sees
only the sign: how many signs point one way, e.g. binary alphas that all start positive), and the
median f_meta at the given m — for several runs side by side, e.g. the same seed trained with m = 0
and m = 3::

    python scripts/metaplastic_weights.py results/continual_ant_legs/runs/plastic-binary-adam-seed2 \\
        results/continual_ant_legs/runs/plastic-binary-meta-m3-seed2 --meta 3

``--meta`` defaults to each run's own ``meta`` (from the config its checkpoint carries), or 3 where that is 0;
a run trained with ``meta_groups`` reads the tensors those patterns match at their own m (the ``m`` column).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

import torch

from plastic_rl.agents.continual_methods import policy_tensors
from plastic_rl.metaplastic import meta_for_name, metaplastic_factor
from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, load_checkpoint

DEFAULT_META = 3.0  # the m used for runs trained with m = 0, so their weights read on the same scale


def weight_statistics(state_dict: Dict[str, torch.Tensor], meta: float,
                      meta_groups: Optional[Dict[str, float]] = None) -> Dict[str, Dict[str, float]]:
    """Per tensor of dimension > 1: ``meta`` (its m), ``mean_abs``, ``share_above_half`` (|W| > 0.5),
    ``share_positive`` (W > 0) and ``median_f_meta``.

    :param state_dict: a policy's state dict.
    :param meta: the metaplasticity strength m of f_meta = 1 − tanh²(m·|W|).
    :param meta_groups: name patterns with another m (as the run's optimizer had them).
    """
    stats = {}
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dim() < 2 or not tensor.is_floating_point():
            continue
        magnitude = tensor.detach().abs().float()
        m = meta_for_name(name, meta, meta_groups)
        stats[name] = {
            "meta": m,
            "mean_abs": float(magnitude.mean()),
            "share_above_half": float((magnitude > 0.5).float().mean()),
            "share_positive": float((tensor > 0).float().mean()),
            "median_f_meta": float(metaplastic_factor(magnitude, m).median()),
        }
    return stats


def run_policy_weights(run_dir: Path) -> tuple[Dict[str, torch.Tensor], float, Dict[str, float]]:
    """The policy state dict of a continual run's checkpoint, the m it was trained with (0 for Adam), and its meta_groups."""
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    learner = checkpoint.get("learner")
    if not isinstance(learner, dict) or not isinstance(learner.get("policy"), dict):
        raise RunDirError(f"{str(run_dir)!r} is not a continual run with a policy state dict in its checkpoint.")
    config = checkpoint.get("config") or {}  # every run checkpoint carries the run's config
    # ``meta`` is kept in the config of an Adam run too; only MetaplasticAdam applies it.
    meta = float(config.get("meta") or 0.0) if config.get("optimizer") == "metaplastic" else 0.0
    meta_groups = dict(config.get("meta_groups") or {}) if meta else {}
    return policy_tensors(learner), meta, meta_groups


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="continual run folders")
    parser.add_argument("--meta", type=float, default=None,
                        help=f"m of f_meta (default: each run's own, or {DEFAULT_META:g} for a run trained with m = 0)")
    args = parser.parse_args(argv)
    if args.meta is not None and not args.meta >= 0:
        parser.error(f"--meta must be a number >= 0; got {args.meta}.")
    tables = []
    for run in args.runs:
        try:
            weights, run_meta, meta_groups = run_policy_weights(Path(run))
        except RunDirError as err:
            parser.error(str(err))
        meta = args.meta if args.meta is not None else (run_meta or DEFAULT_META)
        groups = meta_groups if args.meta is None else {}  # --meta reads every tensor at one m
        tables.append((run, run_meta, meta, weight_statistics(weights, meta, groups)))
    for run, run_meta, meta, stats in tables:
        print(f"\n{run} (trained with m = {run_meta:g}; f_meta at m = {meta:g})\n")
        print("| tensor | m | mean abs(W) | share abs(W) > 0.5 | share W > 0 | median f_meta |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, s in stats.items():
            print(f"| {name} | {s['meta']:g} | {s['mean_abs']:.3f} | {s['share_above_half']:.3f} | {s['share_positive']:.3f} | {s['median_f_meta']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
