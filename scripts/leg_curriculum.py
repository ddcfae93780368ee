"""Leg curriculum: fine-tune a quadruped ES policy in rounds, each round drawing the legs it survives worst more often.

The limb-failure fine-tunes (README, "An ES search that walks") draw each failing leg with
probability 0.25, and each policy is left with one leg it barely walks without: a one-leg
specialist learns that leg in some 4-8 M steps of its own episodes, but forgets the others.
This script spends the search where the policy is weakest and keeps the others in the draw:

1. evaluate the current policy (its ES center) intact and with each leg failing from the start,
   on episodes of their own (``--eval-seed``, not the study's evaluation seeds);
2. weigh each leg by what it loses, ``max(0, 1 - kept) + floor`` (kept = the distance covered without the
   leg as a share of the intact distance on the same episodes), and normalise into ``failure_probs``;
3. fine-tune ``--generations-per-round`` generations from that policy with those probabilities
   (a fresh search from its center, as ``scripts/limb_failure.py --init-from``), and repeat.
   ``--intact-share P`` keeps intact episodes (no leg fails) in the draw with probability P.

    python scripts/leg_curriculum.py results/limb_failure_ft_legs_240/static-seed0 --rounds 2 \\
        --generations-per-round 40 --output results/limb_failure_ft_curriculum/static-seed0

Writes into ``--output``: ``round-K/`` (one ES run folder per round) and ``curriculum.json``
(per round: the policy evaluated, the velocity kept per leg, the failure probabilities drawn
from it, the run's env steps and wall time; and the last round's policy evaluated the same way).
Running the command again continues where it stopped: finished rounds and evaluations are reused,
a killed round resumes from its checkpoint; ``--rounds`` may grow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from plastic_rl.agents import es
from plastic_rl.agents.evaluate import FAILURE_KWARGS, evaluate_run
from plastic_rl.config import ConfigError, config_from_dict, load_yaml
from plastic_rl.envs.quadruped import LEG_NAMES
from plastic_rl.runs import CHECKPOINT_FILE, CONFIG_FILE, atomic_write_json

CURRICULUM_FILE = "curriculum.json"


def leg_weights(kept: Mapping[str, Optional[float]], floor: float, intact_share: float = 0.0) -> Dict[str, float]:
    """Failure probabilities from the velocity kept per leg: ``max(0, 1 - kept) + floor``, normalised.

    :param kept: leg name -> distance covered without that leg / intact distance on the same episodes
        (None where the intact policy does not move: every leg then weighs as a total loss).
    :param floor: weight every leg gets besides its loss, so that a leg the policy survives stays in the
        draw (and is not forgotten); 0 draws only the legs it loses speed on.
    :param intact_share: probability of an intact episode (outcome ``none``), so that the search keeps paying
        for the intact gait; the legs share the rest.
    :returns: leg name (and ``none`` if ``intact_share`` > 0) -> probability, summing to 1, legs in :data:`LEG_NAMES` order.
    """
    loss = {leg: 1.0 if kept[leg] is None else max(0.0, 1.0 - float(kept[leg])) for leg in LEG_NAMES}
    weights = {leg: loss[leg] + floor for leg in LEG_NAMES}
    total = sum(weights.values())
    if total <= 0:  # the policy keeps all its speed on every leg, and floor is 0: draw the legs alike
        weights, total = dict.fromkeys(LEG_NAMES, 1.0), float(len(LEG_NAMES))
    probs = {leg: (1.0 - intact_share) * w / total for leg, w in weights.items()}
    if intact_share > 0:
        probs["none"] = float(intact_share)
    return probs


def measure_legs(run_dir: Path, episodes: int, seed: int) -> Dict[str, Any]:
    """Intact and each leg failing from the start: mean forward velocity (m/s), kept share and falls.

    :param run_dir: an ES run folder on the quadruped (its center policy is evaluated).
    :param episodes: episodes per condition.
    :param seed: base seed of the episodes.
    """
    report = evaluate_run(run_dir, failures=",".join(LEG_NAMES), episodes=episodes, failure_step=0, seed=seed,
                          policy_key="center_policy", plot=False, quiet=True)
    conditions = report["conditions"]
    return {
        "policy": str(run_dir),
        "generation": report["generation"],
        "episodes": episodes,
        "seed": seed,
        "velocity": {name: round(stats["mean_forward_velocity"], 4) for name, stats in conditions.items()},
        "kept": {leg: conditions[leg]["velocity_retention"] for leg in LEG_NAMES},
        "falls": {name: stats["falls"] for name, stats in conditions.items()},
    }


def round_config(start: es.Config, source: Path, probs: Mapping[str, float], generations: int, seed: int) -> es.Config:
    """The ES config of one round: ``start``'s network and search, from ``source``'s center, legs drawn by ``probs``.

    :param start: the config of the run the curriculum starts from.
    :param source: the run folder this round starts from (the start run, or the previous round).
    :param probs: leg name -> probability that the leg fails (from the start of the episode).
    :param generations: generations of this round.
    :param seed: the round's ES seed (a new one each round, so rounds do not repeat their noise).
    """
    env_kwargs = {k: v for k, v in start.env_kwargs.items() if k not in FAILURE_KWARGS}  # the start run's failures go
    env_kwargs.update(failed_legs="random", failure_probs=dict(probs))
    return dataclasses.replace(start, env_kwargs=env_kwargs, generations=generations, seed=seed, init_from=str(source))


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("start", help="the ES run folder to start from (a quadruped policy, e.g. a four-leg fine-tune)")
    parser.add_argument("--output", required=True, help="folder of the rounds and curriculum.json")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of fine-tuning (default 2)")
    parser.add_argument("--generations-per-round", type=int, default=40, help="ES generations per round (default 40)")
    parser.add_argument("--floor", type=float, default=0.1,
                        help="weight every leg gets besides its loss, so the legs a policy survives stay in the draw (default 0.1)")
    parser.add_argument("--intact-share", type=float, default=0.0,
                        help="probability of an intact training episode (no leg fails), so the intact gait is not traded "
                             "for three-leg ones (default 0: every episode loses a leg)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per condition of each round's evaluation (default 5)")
    parser.add_argument("--eval-seed", type=int, default=20000,
                        help="base seed of the rounds' evaluation episodes; round K uses eval-seed + 100 K (default 20000, "
                             "apart from the study's 10000s)")
    parser.add_argument("--popsize", type=int, default=None, help="ES population (default: the start run's)")
    parser.add_argument("--center-learning-rate", type=float, default=None, help="ClipUp step (default: the start run's)")
    parser.add_argument("--stdev-init", type=float, default=None, help="search σ (default: the start run's)")
    args = parser.parse_args(argv)
    for name in ("rounds", "generations_per_round", "eval_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer; got {getattr(args, name)}.")
    if not 0 <= args.floor <= 10:
        parser.error(f"--floor must be a number from 0 to 10; got {args.floor}.")
    if not 0 <= args.intact_share < 1:
        parser.error(f"--intact-share must be a probability from 0 to below 1; got {args.intact_share}.")
    start_dir = Path(args.start)
    if not (start_dir / CONFIG_FILE).is_file() or not (start_dir / CHECKPOINT_FILE).is_file():
        parser.error(f"the start run must be an ES run folder with {CONFIG_FILE} and {CHECKPOINT_FILE}; {str(start_dir)!r} is not.")
    saved = load_yaml(start_dir / CONFIG_FILE)
    if saved.pop("trainer", "es") != "es":
        parser.error(f"the start run must be an ES run (trainer: es); {str(start_dir)!r} is not.")
    try:
        start = config_from_dict(es.Config, saved, source=str(start_dir / CONFIG_FILE))
        overrides = {k: v for k, v in (("popsize", args.popsize), ("center_learning_rate", args.center_learning_rate),
                                       ("stdev_init", args.stdev_init)) if v is not None}
        start = dataclasses.replace(start, **overrides)  # the Config checks the new values
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))

    out = Path(args.output)
    path = out / CURRICULUM_FILE
    record: Dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if record and record.get("start") != str(start_dir):
        parser.error(f"{str(path)!r} belongs to a curriculum started from {record.get('start')!r}; give another --output.")
    settings = {"start": str(start_dir), "generations_per_round": args.generations_per_round, "floor": args.floor,
                "intact_share": args.intact_share,
                "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed, **{k: getattr(start, k) for k in
                ("popsize", "center_learning_rate", "stdev_init", "seed")}}
    recorded = {"intact_share": 0.0, **record.get("settings", {})}  # records made before --intact-share had none
    changed = [k for k, v in settings.items() if k in recorded and recorded[k] != v] if record else []
    if changed:
        parser.error(f"{str(path)!r} was made with other settings ({', '.join(changed)}); give another --output or the same values.")
    out.mkdir(parents=True, exist_ok=True)
    record.update(start=str(start_dir), settings=settings)
    rounds: List[Dict[str, Any]] = record.setdefault("rounds", [])

    def save() -> None:
        atomic_write_json(path, record)

    source = start_dir
    for k in range(args.rounds):
        if k < len(rounds) and "measure" in rounds[k]:
            entry = rounds[k]
        else:
            print(f"round {k}: evaluating {source} ({args.eval_episodes} episodes per leg)", flush=True)
            measure = measure_legs(source, args.eval_episodes, args.eval_seed + 100 * k)
            entry = {"round": k, "measure": measure, "failure_probs": leg_weights(measure["kept"], args.floor, args.intact_share)}
            rounds[k:] = [entry]  # a new measurement makes any later round of an older record void
            save()
        run_dir = out / f"round-{k}"
        print(f"round {k}: kept {json.dumps(entry['measure']['kept'])} -> failure_probs {json.dumps(entry['failure_probs'])}", flush=True)
        config = round_config(start, source, entry["failure_probs"], args.generations_per_round, start.seed + k)
        summary = es.train_or_resume(config, run_dir)  # a finished round only gets its summary rewritten
        print(f"round {k}: {summary['generations']} generations, {summary['env_steps']:,} env steps, "
              f"{summary['wall_time']:.0f} s", flush=True)
        entry.update(run_dir=str(run_dir), env_steps=summary["env_steps"], wall_time=summary["wall_time"])
        save()
        source = run_dir

    final_seed = args.eval_seed + 100 * args.rounds
    final = record.get("final")
    if not final or final.get("policy") != str(source) or final.get("seed") != final_seed:
        print(f"final: evaluating {source}", flush=True)
        record["final"] = measure_legs(source, args.eval_episodes, final_seed)
    record["env_steps"] = sum(r.get("env_steps", 0) for r in rounds[: args.rounds])
    save()
    print(f"final: kept {json.dumps(record['final']['kept'])}; {record['env_steps']:,} env steps in {args.rounds} rounds", flush=True)
    return record


if __name__ == "__main__":
    main()
