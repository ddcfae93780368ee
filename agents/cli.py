"""The ``plastic-rl`` command line: train, evaluate, bench, demo, continual.

Each trainer module (``plastic_rl.agents.a2c``, ``plastic_rl.agents.es``) exposes
``Config`` (a dataclass) and ``train(config, run_dir, resume=False) -> dict``.
A config comes from a preset (``--preset``) or a YAML file (``--config``), then
the flags override its fields; ``--resume RUN_DIR`` reloads the run's own
config. Every user error ends with one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from plastic_rl.config import ConfigError, config_from_dict, load_yaml
from plastic_rl.runs import CONFIG_FILE, NonFiniteError, RunDirError, read_metrics

from plastic_rl.agents.compare import add_compare_parser
from plastic_rl.agents.continual_cli import add_continual_parser
from plastic_rl.agents.presets import PRESETS, TRAINERS

# CLI flag (argparse dest) -> config field. A flag the chosen trainer's Config lacks is an error.
OVERRIDE_FLAGS = {
    "modulation": "modulation",
    "seed": "seed",
    "iterations": "iterations",
    "generations": "generations",
    "algorithm": "algorithm",
    "popsize": "popsize",
    "num_actors": "num_actors",
    "episode_length": "episode_length",
    "center_learning_rate": "center_learning_rate",
    "learning_rate": "learning_rate",
    "total_timesteps": "total_timesteps",
    "ray_address": "ray_address",
    "device": "device",
    "progress": "progress",
}


class UsageError(ValueError):
    """Bad command-line input; the message is one sentence for the user."""


def trainer_module(name: str):
    """Import the module of trainer ``name`` (``a2c`` or ``es``)."""
    if name not in TRAINERS:
        raise UsageError(f"trainer must be one of {', '.join(sorted(TRAINERS))}; got {name!r}.")
    return importlib.import_module(TRAINERS[name])


def _base_config(args) -> Dict[str, Any]:
    if args.resume:
        if args.preset or args.config:
            raise UsageError("--resume reloads the run's own config; do not combine it with --preset or --config.")
        return load_yaml(Path(args.resume) / CONFIG_FILE) if (Path(args.resume) / CONFIG_FILE).is_file() else {}
    if args.preset and args.config:
        raise UsageError("give either --preset or --config, not both.")
    if args.config:
        return load_yaml(args.config)
    name = args.preset or "maze-a2c"
    if name not in PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(sorted(PRESETS))}; got {name!r}.")
    return dict(PRESETS[name])


def resolve_train_config(args) -> tuple:
    """(trainer module, Config instance, run_dir, resume) from parsed ``train`` arguments."""
    data = _base_config(args)
    if args.resume and not data:
        raise RunDirError(f"cannot resume {args.resume!r}: it has no {CONFIG_FILE}; give a folder made by 'plastic-rl train'.")
    trainer_name = data.pop("trainer", None)
    if trainer_name is None:
        raise UsageError(f"the config must name a 'trainer' ({', '.join(sorted(TRAINERS))}).")
    module = trainer_module(trainer_name)
    fields = set(module.Config.__dataclass_fields__)
    for flag, field in OVERRIDE_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if field not in fields:
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to the {trainer_name!r} trainer; its fields are: {', '.join(sorted(fields))}.")
        # Each trainer lists what a resume may change; plastic_rl.runs.Run checks the whole config against the checkpoint.
        resumable = set(getattr(module, "RESUMABLE_FIELDS", ()))
        if args.resume and field not in resumable and data.get(field) != value:
            raise UsageError(f"--{flag.replace('_', '-')} cannot change when resuming; only {', '.join(sorted(resumable & fields))} may.")
        data[field] = value
    source = f"{args.resume}/{CONFIG_FILE}" if args.resume else (args.config or f"preset {args.preset or 'maze-a2c'!r}")
    config = config_from_dict(module.Config, data, source=source)
    run_dir = Path(args.resume or args.run_dir or default_run_dir(trainer_name))
    return module, config, run_dir, bool(args.resume)


def default_run_dir(trainer_name: str) -> Path:
    """``runs/<trainer>-<n>``: the first free numbered folder."""
    n = 0
    while Path("runs", f"{trainer_name}-{n}").exists():
        n += 1
    return Path("runs", f"{trainer_name}-{n}")


def cmd_train(args) -> int:
    module, config, run_dir, resume = resolve_train_config(args)
    summary = module.train(config, run_dir, resume=resume)
    print(f"run folder: {run_dir}")
    for key in ("final_reward", "final_fitness", "curve_png"):
        if key in summary:
            print(f"{key}: {summary[key]}")
    return 0


def cmd_evaluate(args) -> int:
    from plastic_rl.agents.evaluate import evaluate_run

    try:
        evaluate_run(
            args.run_dir,
            failures=args.failures,
            episodes=args.episodes,
            failure_step=args.failure_step,
            json_out=args.json,
            seed=args.seed,
            policy_key="center_policy" if args.policy == "center" else "policy",
            compare=args.compare,
            maze_sizes=_maze_sizes(args.maze_sizes),
            min_reference_velocity=args.min_reference_velocity,
        )
    except RunDirError:
        raise
    except ValueError as err:  # bad --failures / --episodes / --failure-step / --maze-sizes
        raise UsageError(str(err)) from None
    return 0


def cmd_inspect(args) -> int:
    from plastic_rl.agents.inspect import inspect_run

    try:
        inspect_run(args.run_dir, failure=args.failure, episodes=args.episodes, out=args.out, seed=args.seed,
                    policy_key="center_policy" if args.policy == "center" else "policy")
    except RunDirError:
        raise
    except ValueError as err:  # bad --failure / --episodes
        raise UsageError(str(err)) from None
    return 0


def _maze_sizes(text: Optional[str]) -> Optional[List[int]]:
    """``--maze-sizes 9,13`` as a list of ints (None when not given)."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--maze-sizes must be comma-separated odd integers >= 5 (e.g. 9,13); got {text!r}.") from None


def cmd_bench(args) -> int:
    module = importlib.import_module(f"plastic_rl.agents.bench_{args.target}")
    sizes = {name: getattr(args, name) for name in ("popsize", "episode_length") if getattr(args, name) is not None}
    if sizes and args.target != "es":
        flags = " and ".join("--" + name.replace("_", "-") for name in sizes)
        raise UsageError(f"{flags} only apply to 'bench es'; got 'bench {args.target}'.")
    for name, value in sizes.items():
        if value < 2:
            raise UsageError(f"--{name.replace('_', '-')} must be an integer >= 2; got {value}.")
    module.main(quick=args.quick, output=args.output, **sizes)
    return 0


def cmd_demo(args) -> int:
    from plastic_rl.agents.presets import DEMO

    demo = dict(DEMO)
    module = trainer_module(demo.pop("trainer"))
    config = config_from_dict(module.Config, demo, source="the demo preset")
    run_dir = Path(args.run_dir)
    resume = (run_dir / CONFIG_FILE).is_file()
    summary = module.train(config, run_dir, resume=resume)
    rewards = [float(row["mean_reward"]) for row in read_metrics(run_dir / "metrics.csv")]
    window = max(1, min(25, len(rewards) // 4))
    first, last = sum(rewards[:window]) / window, sum(rewards[-window:]) / window
    print(f"demo finished: reward per episode {first:.1f} over the first {window} iterations, "
          f"{last:.1f} over the last {window}; learning curve at {summary.get('curve_png', run_dir)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plastic-rl", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of one sentence")
    sub = parser.add_subparsers(dest="command", required=True)
    # --debug is accepted after the command too (plastic-rl train --debug ...).
    _add_parser = sub.add_parser

    def add_parser(name, **kwargs):
        command = _add_parser(name, **kwargs)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error instead of one sentence")
        return command

    sub.add_parser = add_parser

    train = sub.add_parser("train", help="train a policy (gradient RL or evolution strategies)")
    train.add_argument("--preset", help=f"a built-in config: {', '.join(sorted(PRESETS))}")
    train.add_argument("--config", help="a YAML config file (fields of the trainer's Config plus 'trainer')")
    train.add_argument("--run-dir", help="output folder (default: runs/<trainer>-<n>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="torch device, e.g. cpu or cuda")
    train.add_argument("--modulation", choices=["none", "simple", "retroactive"])
    train.add_argument("--iterations", type=int, help="A2C: training iterations (batches of episodes)")
    train.add_argument("--total-timesteps", type=int, help="PPO: env steps to train for (on --resume: the new total)")
    train.add_argument("--generations", type=int, help="ES: generations (on --resume: the new total)")
    train.add_argument("--algorithm", help="ES: pgpe, cmaes, snes, cem or openai-es")
    train.add_argument("--popsize", type=int, help="ES: population size")
    train.add_argument("--num-actors", type=int, help="ES: Ray actors (0 = run in this process)")
    train.add_argument("--center-learning-rate", type=float,
                       help="ES: the center's step (pgpe: ClipUp step, max speed 2x); may change on --resume, e.g. to lower it late in a run")
    train.add_argument("--learning-rate", type=float,
                       help="gradient trainers: the optimizer's step; may change on --resume (e.g. smaller after a NaN stop)")
    train.add_argument("--episode-length", type=int, help="steps per episode")
    train.add_argument("--ray-address", help="ES: join this Ray cluster instead of starting a local one")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="A2C, PPO: progress bar on stderr (ES prints one line per generation)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="limb-failure evaluation of a quadruped run; new mazes for a maze run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--failures", default=None,
                          help="quadruped: comma-separated 'all' (default: each leg from the start and at --failure-step), "
                               "'none', 'pairs', 'random' (each leg at a random step in the middle half), 'weak:S' "
                               "(each leg keeping a share S of its control), 'full' (all, pairs, weak:0.5, random) "
                               "or conditions LEG[+LEG...][:S][@K|@random], e.g. front_left+back_right,back_left:0.3@250")
    evaluate.add_argument("--episodes", type=int, default=None, help="episodes per condition (quadruped, default 5) or mazes per size (maze, default 100)")
    evaluate.add_argument("--maze-sizes", default=None, help="maze: other maze sizes to test besides the trained one (default 9,13)")
    evaluate.add_argument("--failure-step", type=int, default=None, help="step at which legs fail mid-episode (default: half the episode length)")
    evaluate.add_argument("--min-reference-velocity", type=float, default=None, metavar="M_PER_S",
                          help="quadruped: leave 'kept' out where the intact policy moved slower than this "
                               "(m/s; default evaluate.MIN_REFERENCE_VELOCITY, 0.05)")
    evaluate.add_argument("--json", default=None, help="write the results to this JSON file")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--compare", metavar="RUN_DIR", default=None,
                          help="a second run (e.g. the static twin) run on the same episodes; its table is printed, "
                               "its results go under 'compare' in the JSON and its curves into the same PNG")
    evaluate.add_argument("--policy", choices=["best", "center"], default="best",
                          help="ES runs: the best sampled solution (default) or the final search center")
    evaluate.set_defaults(func=cmd_evaluate)

    inspect = sub.add_parser("inspect", help="plot M(t), Hebbian trace norms and velocity (or reward) over an episode")
    inspect.add_argument("run_dir")
    inspect.add_argument("--failure", default=None, metavar="LEG@STEP",
                         help="quadruped: one condition, e.g. front_left@250, back_left:0.3@random, front_left+back_right (default: intact)")
    inspect.add_argument("--episodes", type=int, default=1, help="episodes to record (the plot draws the first bold)")
    inspect.add_argument("--out", default=None, help="output folder of inspect.png and inspect.csv (default: RUN_DIR/inspect)")
    inspect.add_argument("--seed", type=int, default=0)
    inspect.add_argument("--policy", choices=["best", "center"], default="best",
                         help="ES runs: the best sampled solution (default) or the final search center")
    inspect.set_defaults(func=cmd_inspect)

    bench = sub.add_parser("bench", help="speed benchmarks")
    bench.add_argument("target", choices=["maze", "es", "core", "ppo"],
                       help="maze: env + A2C; es: ES throughput; core: spiking vs rate plastic cell; ppo: PlasticPPO vs RecurrentPPO/PPO")
    bench.add_argument("--quick", action="store_true", help="a short run (seconds) instead of the full benchmark")
    bench.add_argument("--output", default=None, help="also write the figures to this JSON file")
    bench.add_argument("--popsize", type=int, default=None,
                       help="bench es: population size (default 20; the Ray figure splits it over 2 actors)")
    bench.add_argument("--episode-length", type=int, default=None, help="bench es: steps per episode (default 1000)")
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser("demo", help="train a plastic maze agent briefly and plot the learning curve")
    demo.add_argument("--run-dir", default="runs/demo")
    demo.set_defaults(func=cmd_demo)

    add_continual_parser(sub)  # plastic-rl continual (agents/continual_cli.py)
    add_compare_parser(sub)  # plastic-rl compare (agents/compare.py)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``plastic-rl`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ConfigError, RunDirError) as err:
        if getattr(args, "debug", False):
            raise
        print(f"plastic-rl: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteError as err:
        if getattr(args, "debug", False):
            raise
        print(f"plastic-rl: stopped: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("plastic-rl: interrupted; the last checkpoint is kept, continue with --resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
