"""Limb failure: does a plastic policy keep the quadruped moving better than a static one?

Evolves, for each seed and with the same ES budget (algorithm, population,
generations, episode length), three policies under random leg failures
(``failed_legs="random"``: none 0.4, each leg 0.15; from the start of the episode,
or with ``--training-failure-step random`` at a step drawn in its middle half;
``--training-failure-probs`` replaces the distribution, and ``--pre-failure-reward-weight``
weighs the motion reward before a mid-episode failure less than after it):

- ``static``: an MLP without plasticity, widened to the plastic MLP's parameter count;
- ``plastic``: the plastic MLP with simple neuromodulation of a Hebbian trace (``--plastic-rule``
  and ``--plastic-modulation`` choose others);
- ``rules``: the rules-only MLP (Najarro & Risi 2020): weights drawn at random every
  episode, only the per-synapse ABCD rule, alpha and η evolved.

Then evaluates each final policy with :func:`plastic_rl.agents.evaluate.evaluate_run`
(by default: intact, each leg from the start, each leg at a random step in the
middle half of the episode, every two legs, each leg at half strength) and reports,
median and interquartile range over seeds, what adaptation means:

- forward velocity over the fixed horizon (a fall stops the robot for the rest of it);
- velocity kept: the distance covered after the failure, as a share of what the same
  policy covered intact over the same steps of the same episodes (left out for a run
  whose policy moves slower than ``--min-walking-velocity`` intact: it does not walk);
- falls (episodes ended early), counted apart; the return (with Ant's alive bonus) only reported.

    python scripts/limb_failure.py --generations 60 --popsize 20 --episode-length 250 --seeds 0 1 2 \\
        --output results/limb_failure

Writes into ``--output``: one run folder per (variant, seed) (re-running the command
resumes them to the new total, so a long study runs in pieces), ``results.csv`` (one row
per variant × seed × condition), ``summary.json`` (medians, IQRs, budget, wall time),
``table.md`` and ``training.png``. These cover the seeds and variants of this invocation
only: to use both cores, train one (variant, seed) per process, then run the joint command
(``--seeds 0 1 2 --variants static plastic``), which finds the finished runs and their
evaluations and rewrites the table in seconds.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from plastic_rl.agents import es
from plastic_rl.agents.es import train_or_resume
from plastic_rl.agents.es_policy import build_policy, env_spaces
from plastic_rl.agents.evaluate import evaluate_run, parse_conditions, random_step_range
from plastic_rl.config import load_yaml, yaml_mapping
from plastic_rl.envs.quadruped import LEG_NAMES
from plastic_rl.policies import MLPActorCritic
from plastic_rl.runs import CONFIG_FILE, atomic_write_json, atomic_write_text, read_metrics

VARIANTS = ("static", "plastic", "rules")
DEFAULT_FAILURES = "all,random,pairs,weak:0.5"
SINGLE_LEGS = LEG_NAMES  # the conditions in which one leg fails completely are named by the leg


def variant_configs(args: argparse.Namespace, seed: int) -> Dict[str, es.Config]:
    """The three policies of one seed: plastic, its parameter-matched static twin, and the rules-only MLP.

    :param args: the parsed command line.
    :param seed: the seed of the three runs.
    """
    env_kwargs: Dict[str, Any] = {"failed_legs": "random"}
    if args.training_failure_step == "random":
        # The drawn leg fails mid-episode, in the middle half of the episode (as the evaluation's @random
        # conditions): the policy must adapt within an episode.
        env_kwargs["failure_step"] = "random"
        env_kwargs["failure_step_range"] = list(random_step_range(args.episode_length))
        if args.pre_failure_reward_weight != 1.0:
            env_kwargs["pre_failure_reward_weight"] = args.pre_failure_reward_weight
    if args.training_failure_probs is not None:
        env_kwargs["failure_probs"] = args.training_failure_probs
    if args.no_contact_forces:
        env_kwargs["include_cfrc_ext_in_observation"] = False  # Ant's 27-value observation
    common = dict(
        algorithm=args.algorithm, popsize=args.popsize, generations=args.generations, episode_length=args.episode_length,
        seed=seed, hidden_sizes=tuple(args.hidden_sizes), num_actors=args.num_actors, env_kwargs=env_kwargs,
        center_learning_rate=args.center_learning_rate, decrease_rewards_by=args.decrease_rewards_by,
        shared_episodes=getattr(args, "shared_episodes", "none"), num_episodes=getattr(args, "num_episodes", 1),
    )
    plastic = es.Config(plastic=True, modulation=args.plastic_modulation, rule=args.plastic_rule, stdev_init=args.stdev_init,
                        alpha_scale=args.alpha_scale, **common)
    obs_size, action_size = env_spaces(plastic.env_id, plastic.env_kwargs)
    twin = MLPActorCritic.matching(build_policy(plastic, obs_size, action_size), plastic=False)
    configs = {
        "static": es.Config(plastic=False, width=twin.config["hidden_sizes"][0], stdev_init=args.stdev_init, **common),
        "plastic": plastic,
        "rules": es.Config(plastic=True, random_weights=True, rule="abcd", modulation="none",
                           stdev_init=args.rules_stdev_init, **common),
    }
    for name, config in configs.items():
        source = (getattr(args, "init_from", None) or {}).get((name, seed))
        if source is not None:
            configs[name] = fine_tune_config(config, source)
    return {name: configs[name] for name in args.variants}


# The fields that make a run's network (and its input): a fine-tuned run takes them from the run it starts from.
NETWORK_FIELDS = ("policy", "hidden_sizes", "width", "hidden_size", "cell", "modulation", "rule", "plastic", "alpha_scale",
                  "random_weights", "binary", "binary_plasticity", "observation_normalization")


def fine_tune_config(config: es.Config, source: str) -> es.Config:
    """``config``'s search and failures, started from the ES run ``source`` (its network fields and its center policy).

    :param config: the study's config of this variant and seed.
    :param source: an ES run folder; its ``config.yaml`` gives the network (e.g. a 64-64 walker trained intact).
    """
    path = Path(source) / CONFIG_FILE
    if not path.is_file():
        raise ValueError(f"--init-from must name ES run folders (with a {CONFIG_FILE}); {source!r} has none.")
    saved = load_yaml(path)
    fields = {k: saved[k] for k in NETWORK_FIELDS if k in saved}
    if "hidden_sizes" in fields:
        fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    env_kwargs = dict(config.env_kwargs)
    if "include_cfrc_ext_in_observation" in saved.get("env_kwargs", {}):  # the observation size must be the source's
        env_kwargs["include_cfrc_ext_in_observation"] = saved["env_kwargs"]["include_cfrc_ext_in_observation"]
    return dataclasses.replace(config, **fields, env_kwargs=env_kwargs, init_from=str(source))


def reusable_evaluation(path: Path, expected: Dict[str, Any], conditions: List[str]) -> Optional[Dict[str, Any]]:
    """The evaluation report at ``path`` if it was made with these settings, else None (evaluate again).

    A run's ``evaluation.json`` is kept, so re-running the study (after a kill, or to add seeds)
    evaluates only the runs whose final policy or evaluation settings changed.

    :param path: the run's ``evaluation.json``.
    :param expected: the fields that must match (``generation``, ``episodes``, ``seed``, ``policy_key``, ``failure_step``).
    :param conditions: the condition names the evaluation must hold, in order.
    """
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if any(report.get(k) != v for k, v in expected.items()) or list(report.get("conditions", {})) != conditions:
        return None
    return report


def quartiles(values: List[Optional[float]]) -> Dict[str, float]:
    """Median, 25th and 75th percentile of the defined values (NaN if there are none).

    :param values: one number (or None where undefined) per seed.
    """
    defined = [v for v in values if v is not None and np.isfinite(v)]
    if not defined:
        return {"median": float("nan"), "q25": float("nan"), "q75": float("nan"), "n": 0}
    q25, median, q75 = np.percentile(defined, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "n": len(defined)}


def _fmt(q: Dict[str, float], digits: int = 2) -> str:
    if not q["n"]:
        return "–"
    return f"{q['median']:.{digits}f} [{q['q25']:.{digits}f}, {q['q75']:.{digits}f}]"


def single_leg_conditions(names: List[str]) -> List[str]:
    """The conditions in which one leg fails completely (from the start or at some step)."""
    return [n for n in names if n.split("@")[0] in SINGLE_LEGS]


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--generations", type=int, default=60)
    parser.add_argument("--popsize", type=int, default=20)
    parser.add_argument("--episode-length", type=int, default=250)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algorithm", default="pgpe", choices=es.ALGORITHMS)
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--num-actors", type=int, default=0)
    parser.add_argument("--stdev-init", type=float, default=es.Config.stdev_init, help="initial search σ per parameter (static, plastic)")
    parser.add_argument("--alpha-scale", type=float, default=1.0,
                        help="plastic MLP: alpha = alpha_scale x the searched value (es.Config.alpha_scale; the walk study's 0.1)")
    parser.add_argument("--plastic-rule", default="hebbian", choices=["hebbian", "oja", "bcm"],
                        help="learning rule of the plastic MLP (default hebbian; oja's decay term keeps a trace from "
                             "saturating, so it can still change after the failure; use another --output: the runs differ)")
    parser.add_argument("--plastic-modulation", default="simple", choices=["none", "simple", "retroactive"],
                        help="neuromodulation of the plastic MLP (default simple)")
    parser.add_argument("--rules-stdev-init", type=float, default=0.1, help="initial search σ of the rules-only MLP (Najarro & Risi: 0.1)")
    parser.add_argument("--center-learning-rate", type=float, default=None, help="PGPE/ClipUp step (max speed = 2x); default: the Config default")
    parser.add_argument("--decrease-rewards-by", type=float, default=1.0,
                        help="subtracted from every step's reward during the search (Ant-v5's alive bonus is 1.0, so standing still earns nothing)")
    parser.add_argument("--no-contact-forces", action="store_true",
                        help="Ant-v5 without the 78 contact-force observations (include_cfrc_ext_in_observation=False: 27 values)")
    parser.add_argument("--training-failure-step", choices=["0", "random"], default="0",
                        help="when the drawn leg fails in training: 0 = from the start of the episode (default), random = at a "
                             "step drawn per episode in the middle half, so that only a policy that adapts within the episode "
                             "keeps its speed (use another --output: the runs differ)")
    parser.add_argument("--pre-failure-reward-weight", type=float, default=1.0, metavar="W",
                        help="with --training-failure-step random: weight in [0, 1] of Ant's motion reward on the training "
                             "steps before the failure (the alive bonus is kept), so the fitness pays more for what the "
                             "policy does after the leg goes (AntLegFailure-v0's pre_failure_reward_weight; default 1)")
    parser.add_argument("--training-failure-probs", default=None, metavar="YAML",
                        help="the training distribution of failures, as AntLegFailure-v0's failure_probs, e.g. "
                             "'{front_left: 0.25, front_right: 0.25, back_left: 0.25, back_right: 0.25}' for no intact "
                             "episodes (default: none 0.4, each leg 0.15)")
    parser.add_argument("--num-episodes", type=int, default=1,
                        help="training episodes per sample, fitness = their mean (default 1; use another --output)")
    parser.add_argument("--shared-episodes", choices=es.SHARED_EPISODES, default="none",
                        help="which population members run the same episodes (start noise and drawn failure): none "
                             "(default), pairs (each ± pair: common random numbers) or generation (use another --output)")
    parser.add_argument("--init-from", nargs=3, action="append", metavar=("VARIANT", "SEED", "RUN"), default=None,
                        help="fine-tune: start VARIANT's run of SEED from the ES run folder RUN (its network fields, center "
                             "policy and observation statistics; e.g. a walker trained intact) instead of a random policy; "
                             "repeat for each variant and seed (use another --output: the runs differ)")
    parser.add_argument("--failures", default=DEFAULT_FAILURES, help=f"evaluation conditions, as plastic-rl evaluate --failures (default {DEFAULT_FAILURES})")
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes per condition")
    parser.add_argument("--policy", choices=["center", "best"], default="center",
                        help="which policy to evaluate: the final ES center (default; the best sample is a lucky draw) or the best sample")
    parser.add_argument("--min-walking-velocity", type=float, default=0.1,
                        help="m/s; a run whose final policy moves slower than this intact does not walk, and its "
                             "'velocity kept' ratios are left out (default 0.1)")
    parser.add_argument("--output", default="results/limb_failure")
    args = parser.parse_args(argv)
    for name in ("generations", "popsize", "episode_length", "episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer; got {getattr(args, name)}.")

    if args.pre_failure_reward_weight != 1.0 and args.training_failure_step != "random":
        parser.error("--pre-failure-reward-weight applies only with --training-failure-step random "
                     "(with failures from the start no training step comes before the failure).")
    if args.training_failure_probs is not None:
        args.training_failure_probs = yaml_mapping(args.training_failure_probs)
        if args.training_failure_probs is None:
            parser.error("--training-failure-probs must be a mapping of outcomes ('none', a leg name, or leg names "
                         "joined by '+') to probabilities, e.g. '{front_left: 0.5, back_right: 0.5}'.")
    if args.init_from is not None:
        init_from = {}
        for variant, seed, run in args.init_from:
            if variant not in VARIANTS or not seed.lstrip("-").isdigit():
                parser.error(f"--init-from takes VARIANT SEED RUN with VARIANT one of {', '.join(VARIANTS)} and SEED an "
                             f"integer; got {variant!r} {seed!r}.")
            init_from[(variant, int(seed))] = run
        args.init_from = init_from
    try:
        conditions_wanted = list(parse_conditions(args.failures, 0, args.episode_length))
        # Builds the env once (env_spaces), which checks the training failure settings before anything is written.
        for seed in args.seeds:
            variant_configs(args, seed)
    except ValueError as err:
        parser.error(str(err))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    policy_key = "center_policy" if args.policy == "center" else "policy"
    rows: List[Dict[str, Any]] = []
    budget: Dict[str, Any] = {}
    walking: Dict[str, bool] = {}
    start = time.perf_counter()
    for seed in args.seeds:  # seed-major: a study stopped early has every variant on the same seeds
        for variant, config in variant_configs(args, seed).items():
            run_dir = out / f"{variant}-seed{seed}"
            summary = train_or_resume(config, run_dir)
            budget[f"{variant}-seed{seed}"] = {
                "parameters": summary["parameters"], "env_steps": summary["env_steps"], "wall_time": summary["wall_time"],
                "final_center_fitness": summary["final_center_fitness"],
            }
            expected = {"generation": summary["generations"], "episodes": args.episodes, "seed": 10_000 + seed,
                        "policy_key": policy_key, "failure_step": 0}
            report = reusable_evaluation(run_dir / "evaluation.json", expected, conditions_wanted)
            if report is None:
                report = evaluate_run(
                    run_dir, failures=args.failures, episodes=args.episodes, failure_step=0,
                    json_out=run_dir / "evaluation.json", seed=10_000 + seed, policy_key=policy_key, quiet=True, plot=False,
                )
            intact_velocity = report["conditions"].get("intact", {}).get("mean_forward_velocity")
            walks = intact_velocity is not None and intact_velocity >= args.min_walking_velocity
            walking[f"{variant}-seed{seed}"] = walks
            for name, s in report["conditions"].items():
                rows.append({
                    "variant": variant, "seed": seed, "condition": name,
                    "forward_velocity": s["mean_forward_velocity"],
                    # A share of a near-zero intact distance means nothing: left out of every "kept" statistic.
                    "velocity_kept": s.get("velocity_retention", 1.0) if walks else None,
                    "distance": s["mean_distance"], "falls": s["falls"], "episodes": s["episodes"],
                    "return": s["mean_return"], "return_ratio": s.get("return_ratio", 1.0),
                    "episode_length": s["mean_episode_length"],
                })

    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    variants = [v for v in VARIANTS if v in args.variants]
    table: Dict[str, Any] = {}
    for variant in variants:
        table[variant] = {}
        for name in conditions:
            sel = [r for r in rows if r["variant"] == variant and r["condition"] == name]
            table[variant][name] = {
                "forward_velocity": quartiles([r["forward_velocity"] for r in sel]),
                "velocity_kept": quartiles([r["velocity_kept"] for r in sel]),
                "falls": int(sum(r["falls"] for r in sel)), "episodes": int(sum(r["episodes"] for r in sel)),
                "return": quartiles([r["return"] for r in sel]),
            }
    singles = single_leg_conditions(conditions)
    goal: Dict[str, Any] = {}
    for variant in variants:
        # Per seed: the mean and the worst share of velocity kept over the single-leg failures.
        per_seed_mean, per_seed_worst = [], []
        for seed in args.seeds:
            kept = [r["velocity_kept"] for r in rows if r["variant"] == variant and r["seed"] == seed and r["condition"] in singles]
            kept = [k for k in kept if k is not None]
            per_seed_mean.append(float(np.mean(kept)) if kept else None)
            per_seed_worst.append(float(np.min(kept)) if kept else None)
        goal[variant] = {"mean_single_leg_velocity_kept": quartiles(per_seed_mean), "worst_single_leg_velocity_kept": quartiles(per_seed_worst),
                         "per_seed_mean": per_seed_mean, "per_seed_worst": per_seed_worst}
    wall = time.perf_counter() - start

    lines = [
        f"Limb failure: {args.algorithm} popsize {args.popsize}, {args.generations} generations, {args.episode_length}-step "
        f"episodes, seeds {args.seeds}, {args.episodes} evaluation episodes per condition ({args.policy} policy)"
        + (", Ant without contact forces" if args.no_contact_forces else "") + ". Median [IQR] over seeds.",
        "Forward velocity = distance / horizon (m/s; a fall stops the robot for the rest of the horizon). Velocity kept = "
        "distance after the failure / intact distance over the same steps of the same episodes. Falls = episodes ended "
        "early, summed over seeds. '@random' = a step drawn per episode in the middle half; 'a+b' = two legs; ':0.5' = half strength.",
        f"Velocity kept is left out for a run slower than {args.min_walking_velocity:g} m/s intact (a ratio of near-zero "
        "distances); runs that walk: " + ", ".join(f"{v} {sum(walking.get(f'{v}-seed{s}', False) for s in args.seeds)}/{len(args.seeds)}"
                                                   for v in variants) + ".",
    ]
    if args.init_from:
        lines.append("Fine-tuned (the generations above come on top of these runs' own search): " + ", ".join(
            f"{v}-seed{s} from {run}" for (v, s), run in sorted(args.init_from.items()) if v in variants and s in args.seeds) + ".")
    lines += [
        "",
        "| condition | " + " | ".join(f"{v} velocity" for v in variants) + " | " + " | ".join(f"{v} kept" for v in variants)
        + " | " + " | ".join(f"{v} falls" for v in variants) + " |",
        "|---|" + "---:|" * (3 * len(variants)),
    ]
    for name in conditions:
        cells = [_fmt(table[v][name]["forward_velocity"]) for v in variants]
        cells += [("1" if table[v][name]["velocity_kept"]["n"] else "–") if name == "intact" else _fmt(table[v][name]["velocity_kept"])
                  for v in variants]
        cells += [f"{table[v][name]['falls']}/{table[v][name]['episodes']}" for v in variants]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Velocity kept over the {len(singles)} single-leg conditions (per seed: the mean and the worst), median [IQR] over seeds:")
    lines.append("")
    lines.append("| | " + " | ".join(variants) + " |")
    lines.append("|---|" + "---:|" * len(variants))
    lines.append("| mean | " + " | ".join(_fmt(goal[v]["mean_single_leg_velocity_kept"]) for v in variants) + " |")
    lines.append("| worst | " + " | ".join(_fmt(goal[v]["worst_single_leg_velocity_kept"]) for v in variants) + " |")
    lines.append("")
    lines.append(f"wall time {wall:.0f} s in this invocation; per run: " + ", ".join(
        f"{k} {v['wall_time']:.0f} s / {v['env_steps']} steps / {v['parameters']} params" for k, v in budget.items()))
    text = "\n".join(lines)
    print(text)

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buffer.getvalue())
    atomic_write_text(out / "table.md", text + "\n")
    recorded_args = {**vars(args), "init_from": {f"{v}-seed{s}": run for (v, s), run in (args.init_from or {}).items()} or None}
    result = {"args": recorded_args, "budget": budget, "walking": walking, "table": table, "goal": goal, "wall_time": wall}
    atomic_write_json(out / "summary.json", result)
    plot_training(out / "training.png", {f"{v}-seed{seed}": out / f"{v}-seed{seed}" for seed in args.seeds for v in variants})
    return result


def plot_training(path: Path, runs: Dict[str, Path]) -> None:
    """PNG of each run's population-mean and center fitness per generation (10-generation moving mean).

    :param path: the PNG.
    :param runs: label -> run folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"static": "--", "plastic": "-", "rules": ":"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, run_dir in runs.items():
        rows = read_metrics(run_dir / "metrics.csv")
        generation = [int(r["generation"]) for r in rows]
        for ax, key in zip(axes, ("mean_fitness", "center_fitness")):
            values = np.array([float(r[key]) for r in rows])
            smooth = np.convolve(values, np.ones(10) / 10, mode="valid") if len(values) >= 10 else values
            ax.plot(generation[len(generation) - len(smooth):], smooth, label=label, linestyle=styles[label.split("-")[0]])
    for ax, title in zip(axes, ("population mean fitness", "center fitness (1 episode)")):
        ax.set_title(title)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fitness (return minus the alive bonus), 10-gen mean")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
