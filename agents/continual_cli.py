"""``plastic-rl continual``: the command line of :mod:`plastic_rl.agents.continual`.

A config comes from ``--config`` (a YAML file of continual fields, ``trainer:
continual`` optional) or the defaults, then the flags override its fields;
``--resume RUN_DIR`` reloads the run's own config, and a flag may then change
only the fields a resume may change. Bad input is one sentence and exit code 2
(the errors are :class:`~plastic_rl.config.ConfigError` / ``RunDirError``, which
``plastic-rl`` turns into that).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from plastic_rl.config import ConfigError, config_from_dict, load_yaml
from plastic_rl.runs import CONFIG_FILE, RunDirError

# flag (argparse dest) -> config field
FLAGS = {
    "sequence": "sequence", "method": "method", "optimizer": "optimizer", "meta": "meta",
    "meta_groups": "meta_groups",
    "regularizer": "regularizer", "regularizer_strength": "regularizer_strength", "regularizer_params": "regularizer_params",
    "steps_per_task": "steps_per_task",
    "eval_episodes": "eval_episodes", "reference": "reference", "plastic": "plastic", "binary": "binary",
    "learning_rate": "learning_rate", "seed": "seed", "device": "device", "progress": "progress",
    "keep_stages": "keep_stages",
}


def add_continual_parser(sub) -> None:
    """Add the ``continual`` sub-command to ``plastic-rl``'s sub-parsers.

    :param sub: the ``add_subparsers()`` object of the main parser.
    """
    from plastic_rl.agents.continual import METHODS, OPTIMIZERS
    from plastic_rl.agents.regularizers import REGULARIZERS
    from plastic_rl.envs.sequences import SEQUENCES

    p = sub.add_parser("continual", help="learn a sequence of tasks; write the R matrix, forgetting and forward transfer")
    p.add_argument("--sequence", help=f"a built-in sequence ({', '.join(sorted(SEQUENCES))}) or a YAML sequence file")
    p.add_argument("--method", choices=METHODS, help="a2c: maze tasks (full-episode A2C); es: continuous-action tasks (EvoTorch)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="adam, or metaplastic (MetaplasticAdam with --meta)")
    p.add_argument("--meta", type=float, help="metaplasticity m (optimizer metaplastic)")
    p.add_argument("--meta-groups", type=_yaml_mapping_flag("--meta-groups"), metavar="YAML",
                   help="another m for the tensors these name patterns match, e.g. '{core.layers.2.weight: 30}' "
                        "(optimizer metaplastic; first match wins; other tensors get --meta)")
    p.add_argument("--regularizer", choices=REGULARIZERS, help="none, ewc or l2 (gradient methods)")
    p.add_argument("--regularizer-strength", type=float, help="λ of the EWC/L2 penalty")
    p.add_argument("--regularizer-params", nargs="+", metavar="PATTERN",
                   help="only the tensors whose names match these patterns are pulled back, e.g. '*.bias' (default: all)")
    p.add_argument("--steps-per-task", type=int, help="training env steps per task")
    p.add_argument("--eval-episodes", type=int, help="episodes per task in each evaluation")
    p.add_argument("--reference", action=argparse.BooleanOptionalAction, default=None,
                   help="also train each task from scratch, for forward transfer (default: yes; "
                        "with --resume, adds them to a run made without them)")
    p.add_argument("--plastic", action=argparse.BooleanOptionalAction, default=None, help="plastic policy (default: yes)")
    p.add_argument("--binary", action=argparse.BooleanOptionalAction, default=None, help="binarized hidden layers")
    p.add_argument("--learning-rate", type=float, help="a2c: Adam step; es: the center's step")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="torch device, e.g. cpu or cuda")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar on stderr")
    p.add_argument("--keep-stages", action=argparse.BooleanOptionalAction, default=None,
                   help="also keep the learner as it was after each stage (stage-J.pt in the run folder)")
    p.add_argument("--config", help="a YAML file of continual config fields (see plastic_rl.agents.continual.Config)")
    p.add_argument("--run-dir", help="output folder (default: runs/continual-<n>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the continual run in RUN_DIR from its last checkpoint")
    p.set_defaults(func=cmd_continual)


def _yaml_mapping_flag(flag: str):
    """An argparse type: a YAML mapping given inline, or one sentence naming the flag."""
    from plastic_rl.config import yaml_mapping

    def parse(text: str) -> Dict[str, Any]:
        value = yaml_mapping(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"{flag} must be a YAML mapping such as '{{core.layers.2.weight: 30}}'; got {text!r}")
        return value

    return parse


def resolve_config(args) -> tuple:
    """(Config, run_dir, resume) from parsed ``continual`` arguments.

    :param args: the parsed arguments.
    """
    from plastic_rl.agents.continual import RESUMABLE_FIELDS, Config

    if args.resume and args.config:
        raise ConfigError("--resume reloads the run's own config; do not combine it with --config.")
    source = args.config or "the defaults"
    data: Dict[str, Any] = {}
    if args.resume:
        path = Path(args.resume) / CONFIG_FILE
        if not path.is_file():
            raise RunDirError(f"cannot resume {args.resume!r}: it has no {CONFIG_FILE}; give a folder made by 'plastic-rl continual'.")
        data, source = load_yaml(path), str(path)
    elif args.config:
        data = load_yaml(args.config)
    trainer = data.pop("trainer", "continual")
    if trainer != "continual":
        raise ConfigError(f"{source} is a config of the {trainer!r} trainer; 'plastic-rl continual' needs trainer: continual.")
    for flag, name in FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if args.resume and name not in RESUMABLE_FIELDS and data.get(name) != value:
            raise ConfigError(f"--{flag.replace('_', '-')} cannot change when resuming; only {', '.join(RESUMABLE_FIELDS)} may.")
        data[name] = value
    config = config_from_dict(Config, data, source=source)
    run_dir = Path(args.resume or args.run_dir or _default_run_dir())
    return config, run_dir, bool(args.resume)


def _default_run_dir() -> Path:
    n = 0
    while Path("runs", f"continual-{n}").exists():
        n += 1
    return Path("runs", f"continual-{n}")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cmd_continual(args) -> int:
    """Run (or resume) a continual run and print its headline figures."""
    from plastic_rl.agents.continual import train

    config, run_dir, resume = resolve_config(args)
    summary = train(config, run_dir, resume=resume)
    print(f"run folder: {run_dir}")
    print(f"average performance {_fmt(summary['average_performance'])}, mean forgetting {_fmt(summary['mean_forgetting'])}, "
          f"mean learning {_fmt(summary.get('mean_learning'))}, mean forward transfer {_fmt(summary.get('mean_forward_transfer'))}")
    print(f"R matrix: {summary['matrix_csv']} (heat map {summary['matrix_png']})")
    return 0
