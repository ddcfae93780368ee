"""Forgetting in continual RL: binarized policies under MetaplasticAdam against Adam, full precision and EWC.

For every variant, seed and policy kind (plastic / non-plastic) this runs one
continual run (``plastic_rl.agents.continual``) over the chosen sequence, each in
its own run folder under ``OUT/runs``; running the script again resumes
unfinished runs from their checkpoints and skips finished ones, so it survives
being killed (and a small budget can be extended by a later call). It then
writes ``OUT/continual_metaplasticity.csv`` (one row per run) and ``.json``
(an invocation replaces the rows of the runs it reports and keeps the others, so
one process per variant builds one table), and prints a Markdown table: average performance at the end, mean forgetting
and mean forward transfer (median [IQR] over seeds), and wall time per run.

Variants (``--variants``):

- ``binary-adam``: binarized hidden layers, Adam (metaplasticity m = 0);
- ``binary-meta``: binarized hidden layers, MetaplasticAdam, one run per ``--metas`` value;
- ``fp-adam``: full-precision policy, Adam (plain fine-tuning, the floor);
- ``fp-ewc``: full-precision policy, Adam with EWC (``--ewc-strength``; methods a2c);
- ``fp-l2``: full-precision policy, Adam with an L2 pull to the earlier tasks' weights
  (``--l2-strength``; the regularizer method ppo offers).

``--meta-groups`` gives the tensors some name patterns match another m than ``--metas``
(e.g. ``'{core.layers.2.weight: 30}'``: the real-valued action layer, whose weights stay
near 0.03); its runs need ``--tag``. ``--tag NAME`` is added to every run's name (``plastic-binary-meta-m3-NAME``):
use it for any change the name does not show, such as another ``--method-config``.
``--method-override`` changes some fields of ``--method-config`` without a new file
(``'{policy_kwargs: {binary_plasticity: true, alpha_scale: 0.05}}'``); its runs need ``--tag`` too.

``--env-kwargs`` adds keyword arguments to every task's env (e.g. ``'{include_cfrc_ext_in_observation:
false}'`` for the quadruped), and ``--no-reference`` skips the from-scratch runs (no forward transfer,
and no normalized forgetting, for less than 60% of the cost).

Example (the README table)::

    python scripts/continual_metaplasticity.py --sequence maze-layouts --method a2c \\
        --steps-per-task 300000 --seeds 0 1 2 --metas 10 --out results/continual_maze
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from plastic_rl.agents.continual_metrics import continual_metrics
from plastic_rl.config import yaml_mapping
from plastic_rl.runs import CONFIG_FILE, SUMMARY_FILE, atomic_write_json, atomic_write_text

VARIANTS = ("binary-adam", "binary-meta", "fp-adam", "fp-ewc", "fp-l2")
LOCK_NAME = ".continual_metaplasticity.lock"  # advisory lock of the csv/json merge (see main)


def merged(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """``base`` with ``override``'s entries put over it; where both hold a mapping, merged key by key.

    :param base: e.g. the ``--method-config`` file's fields.
    :param override: e.g. ``{"policy_kwargs": {"binary_plasticity": True}}``, which keeps the file's other policy_kwargs.
    """
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def variant_settings(variant: str, meta: float, ewc_strength: float, l2_strength: float = 1.0) -> Dict[str, Any]:
    """Continual config fields of one variant.

    :param variant: one of :data:`VARIANTS`.
    :param meta: the metaplasticity strength (binary-meta).
    :param ewc_strength: λ of EWC (fp-ewc).
    :param l2_strength: λ of the L2 pull (fp-l2).
    """
    return {
        "binary-adam": {"binary": True, "optimizer": "adam"},
        "binary-meta": {"binary": True, "optimizer": "metaplastic", "meta": meta},
        "fp-adam": {"binary": False, "optimizer": "adam"},
        "fp-ewc": {"binary": False, "optimizer": "adam", "regularizer": "ewc", "regularizer_strength": ewc_strength},
        "fp-l2": {"binary": False, "optimizer": "adam", "regularizer": "l2", "regularizer_strength": l2_strength},
    }[variant]


def run_one(base: Dict[str, Any], run_dir: Path) -> Dict[str, Any]:
    """Train (or resume, or just read) one continual run; return its summary.

    A finished run made with ``--no-reference`` gets its from-scratch references (and so its forward
    transfer) when the script is run again without that flag: the same figures as a run made with them.

    :param base: continual config fields.
    :param run_dir: its folder.
    """
    from plastic_rl.agents.continual import Config, train
    from plastic_rl.config import config_from_dict

    if (run_dir / SUMMARY_FILE).is_file():
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        if not base["reference"] or summary.get("reference_final") is not None:
            return summary
    config = config_from_dict(Config, base, source=str(run_dir))
    resume = (run_dir / CONFIG_FILE).is_file()  # a run killed before its first checkpoint starts over in place
    return train(config, run_dir, resume=resume)


def _median_iqr(values: List[Optional[float]]) -> str:
    values = sorted(v for v in values if v is not None)
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{statistics.median(values):.2f} [{q1:.2f}, {q3:.2f}]"


def merge_with_earlier_rows(json_path: Path, rows: List[Dict[str, Any]], command: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    """This call's rows merged into the ones an earlier call wrote to ``json_path``.

    One process per variant is the way to use both cores, so each invocation keeps the other runs' rows
    and replaces only those of the runs it reported (same name and seed); the commands that made the
    rows are kept in order, each once.
    """
    earlier: List[Dict[str, Any]] = []
    commands: List[str] = []
    if json_path.is_file():
        previous = json.loads(json_path.read_text())
        earlier = previous.get("runs", [])
        commands = previous.get("commands", [previous["command"]] if "command" in previous else [])
    mine = {(r["name"], r["seed"]): r for r in rows}
    merged = [mine.pop((r["name"], r["seed"]), r) for r in earlier]  # a re-reported run keeps its place
    merged += [r for r in rows if (r["name"], r["seed"]) in mine]
    return merged, [c for c in commands if c != command] + [command]


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequence", default="maze-layouts")
    parser.add_argument("--method", default="a2c", choices=["a2c", "ppo", "es"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--metas", type=float, nargs="+", default=[10.0], help="MetaplasticAdam m of binary-meta runs")
    parser.add_argument("--meta-groups", default=None, metavar="YAML",
                        help="binary-meta: another m for the tensors these name patterns match, e.g. '{core.layers.2.weight: 30}'")
    parser.add_argument("--tag", default=None, help="added to every run's name (required with --meta-groups)")
    parser.add_argument("--ewc-strength", type=float, default=100.0, help="λ of EWC (fp-ewc)")
    parser.add_argument("--l2-strength", type=float, default=1.0, help="λ of the L2 pull (fp-l2)")
    parser.add_argument("--env-kwargs", default=None,
                        help="a YAML/JSON mapping added to every task's env, e.g. '{include_cfrc_ext_in_observation: false}'")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also train each task from scratch, for forward transfer (default: yes)")
    parser.add_argument("--policies", nargs="+", default=["plastic"], choices=["plastic", "non-plastic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps-per-task", type=int, default=300_000)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--method-config", default=None, help="a YAML file of method_config fields (e.g. hidden_size)")
    parser.add_argument("--method-override", default=None,
                        help="a YAML/JSON mapping merged over --method-config, nested mappings key by key, e.g. "
                             "'{policy_kwargs: {binary_plasticity: true}}'; needs --tag")
    parser.add_argument("--keep-stages", action="store_true",
                        help="keep each run's learner as it was after every stage (stage-J.pt), e.g. for scripts/forgetting_attribution.py")
    parser.add_argument("--out", default="results/continual")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: tabulate the runs already finished under OUT/runs (and list the unfinished)")
    args = parser.parse_args(argv)
    if args.steps_per_task < 1 or args.eval_episodes < 1:
        parser.error("--steps-per-task and --eval-episodes must be positive integers.")
    if any(m < 0 for m in args.metas):
        parser.error(f"--metas must be numbers >= 0; got {args.metas}.")
    meta_groups: Dict[str, Any] = {}
    if args.meta_groups:
        meta_groups = yaml_mapping(args.meta_groups)
        if meta_groups is None:
            parser.error(f"--meta-groups must be a mapping such as '{{core.layers.2.weight: 30}}'; got {args.meta_groups!r}.")
        if not args.tag:
            parser.error("--meta-groups needs --tag, a name that keeps its runs apart from the runs of one m.")
    if args.tag is not None and not (args.tag.replace("-", "").replace("_", "").isalnum()):
        parser.error(f"--tag must be letters, digits, - and _; got {args.tag!r}.")
    env_kwargs: Optional[Dict[str, Any]] = {}
    if args.env_kwargs:
        env_kwargs = yaml_mapping(args.env_kwargs)
        if env_kwargs is None:
            parser.error(f"--env-kwargs must be a mapping such as '{{include_cfrc_ext_in_observation: false}}'; got {args.env_kwargs!r}.")
    override: Dict[str, Any] = {}
    if args.method_override:
        override = yaml_mapping(args.method_override)
        if override is None:
            parser.error(f"--method-override must be a mapping such as '{{policy_kwargs: {{binary_plasticity: true}}}}'; "
                         f"got {args.method_override!r}.")
        if not args.tag:
            parser.error("--method-override needs --tag, a name that keeps its runs apart from the runs without it.")
    method_config: Dict[str, Any] = {}
    if args.method_config:
        from plastic_rl.config import load_yaml

        method_config = load_yaml(args.method_config)
    elif args.method == "a2c":
        method_config = {"adam_eps": 1e-4}  # the demo's setting that keeps lr 1e-3 stable (agents/presets.py)
    method_config = merged(method_config, override)
    out = Path(args.out)
    rows = []
    # Seeds outermost: every variant of seed 0 finishes before seed 1 starts, so a partial run compares variants.
    runs = [(seed, policy, variant, meta) for seed in args.seeds for policy in args.policies for variant in args.variants
            for meta in (args.metas if variant == "binary-meta" else [0.0])]
    for seed, policy, variant, meta in runs:
        name = f"{policy}-{variant}" + (f"-m{meta:g}" if variant == "binary-meta" else "")
        if args.tag:
            name += f"-{args.tag}"
        base = {"sequence": args.sequence, "method": args.method, "steps_per_task": args.steps_per_task,
                "eval_episodes": args.eval_episodes, "learning_rate": args.learning_rate,
                "plastic": policy == "plastic", "seed": seed, "method_config": method_config,
                "progress": sys.stderr.isatty(), "tensorboard": False, "env_kwargs": env_kwargs,
                "reference": args.reference, "keep_stages": args.keep_stages, **variant_settings(variant, meta, args.ewc_strength, args.l2_strength)}
        if variant == "binary-meta" and meta_groups:
            base["meta_groups"] = meta_groups
        tic = time.perf_counter()
        run_dir = out / "runs" / f"{name}-seed{seed}"
        if args.report_only and not (run_dir / SUMMARY_FILE).is_file():
            print(f"{name} seed {seed}: not finished", flush=True)
            continue
        summary = run_one(base, run_dir)
        # Recomputed from the run's figures, so runs finished under older definitions report the current ones.
        metrics = continual_metrics(summary["matrix"], summary["initial"], summary["stage_auc"],
                                    summary.get("reference_auc"), summary.get("reference_final"))
        rows.append({"name": name, "seed": seed, "average_performance": metrics["average_performance"],
                     "mean_forgetting": metrics["mean_forgetting"],
                     "mean_forgetting_normalized": metrics.get("mean_forgetting_normalized"),
                     "mean_learning": metrics["mean_learning"],
                     "mean_forward_transfer": metrics.get("mean_forward_transfer"),
                     "mean_forward_transfer_raw": metrics.get("mean_forward_transfer_raw"),
                     "initial_mean": statistics.fmean(summary["initial"]),
                     "wall_time": summary["wall_time"], "env_steps": summary["env_steps"]})
        print(f"{name} seed {seed}: average {metrics['average_performance']:.2f}, forgetting "
              f"{metrics['mean_forgetting']:.2f}  ({time.perf_counter() - tic:.0f} s this call)", flush=True)
    if not rows:
        print("no finished runs.")
        return 0
    command = " ".join(["python", "scripts/continual_metaplasticity.py", *(argv if argv is not None else sys.argv[1:])])
    # Two processes that finish together must not both read the old rows and each write only its own:
    # the read-merge-write is one critical section, serialized by an advisory lock next to the table.
    with open(out / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows, commands = merge_with_earlier_rows(out / "continual_metaplasticity.json", rows, command)
        buffer = io.StringIO()
        # Rows written by an older version of this script may lack a column added since (mean_learning): blank there.
        writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "continual_metaplasticity.csv", buffer.getvalue())
        atomic_write_json(out / "continual_metaplasticity.json", {"commands": commands, "runs": rows})
    print("\n| variant | average performance | mean forgetting | mean forgetting (normalized) | mean learning (own − untrained) "
          "| mean forward transfer (raw) | wall time per run (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in dict.fromkeys(r["name"] for r in rows):
        mine = [r for r in rows if r["name"] == name]
        cells = [_median_iqr([r.get(k) for r in mine]) for k in
                 ("average_performance", "mean_forgetting", "mean_forgetting_normalized", "mean_learning",
                  "mean_forward_transfer_raw")]
        print(f"| {name} | " + " | ".join(cells) + f" | {statistics.fmean(r['wall_time'] for r in mine):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
