"""Which parameters carry the forgetting of a continual run? Put one group back and see what returns.

``python scripts/forgetting_attribution.py RUN_DIR [--groups YAML] [--episodes N] [--sign-flips GROWN] [--output FILE.json]``

``RUN_DIR`` is a continual run made with ``keep_stages`` (``plastic-rl continual --keep-stages``,
``scripts/continual_metaplasticity.py --keep-stages``), so it holds ``stage-J.pt``, the learner
right after stage J. For every task j but the last, the policy at the end of the sequence
(``stage-{last}.pt``) is evaluated on task j with one group of its tensors put back to what they
were right after stage j, on the run's own evaluation episodes of task j. Two rows check the
method: nothing put back gives R[last][j] and everything put back gives R[j][j] (each the matrix's
figure when ``--episodes`` is the run's ``eval_episodes``). A group whose return alone brings task
j back near R[j][j] holds what was forgotten; one that changes nothing did not move, or does not
matter. Groups interact (biases fit the weights they were learned with), so the single-group rows
need not add up.

Groups are name patterns (shell-style, over the policy's ``state_dict`` names; a tensor joins the
first group that matches it; the critics, ``critic.*`` (ppo) and ``value_head.*`` (a2c), are skipped,
since they do not act), plus
``normalization``, the shared VecNormalize statistics (method ppo). The default groups split a
plastic policy into its weights, biases, alpha, neuromodulator and log_std. Methods ppo and a2c.

``--sign-flips GROWN`` evaluates nothing: for every tensor of dimension > 1 it counts the signs that
differ at the end from right after each earlier stage, overall and among the entries whose |value|
exceeded GROWN then (the ones MetaplasticAdam had consolidated). For a binarized tensor a flip is
what changes the policy.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plastic_rl.agents.continual_methods import policy_tensors  # noqa: E402 (after the path line above)

#: group name -> patterns; the first group that matches a tensor's name takes it.
DEFAULT_GROUPS: Dict[str, List[str]] = {
    "alpha": ["*plasticity.alpha"],
    "neuromodulator": ["*plasticity.modulator*"],
    "weights": ["*weight"],
    "biases": ["*bias"],
    "log_std": ["*log_std"],
}
NORMALIZATION = "normalization"
SKIPPED = ("critic.*", "value_head.*")  # the critics of ppo and a2c policies: they do not act


def _skipped(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SKIPPED)


def assign_groups(names: List[str], groups: Dict[str, List[str]]) -> Dict[str, List[str]]:
    """Tensor names per group (first matching group wins; the critics skipped; the rest in ``other``).

    :param names: the policy's tensor names.
    :param groups: group name -> shell-style patterns.
    """
    members: Dict[str, List[str]] = {name: [] for name in groups}
    for tensor in names:
        if _skipped(tensor):
            continue
        group = next((g for g, patterns in groups.items() if any(fnmatch.fnmatchcase(tensor, p) for p in patterns)), "other")
        members.setdefault(group, []).append(tensor)
    return {g: m for g, m in members.items() if m}


def with_group_restored(final: Dict[str, Any], earlier: Dict[str, Any], tensors: List[str],
                        normalization: bool) -> Dict[str, Any]:
    """A copy of learner state ``final`` with ``tensors`` (and the normalization statistics) taken from ``earlier``.

    :param final: the learner state at the end of the sequence.
    :param earlier: the learner state right after an earlier stage.
    :param tensors: policy tensor names to take from ``earlier``.
    :param normalization: also take ``earlier``'s VecNormalize statistics.
    """
    state = copy.deepcopy(final)
    target, source = policy_tensors(state), policy_tensors(earlier)
    for name in tensors:
        target[name] = source[name].clone()
    if normalization:
        state["normalization"] = copy.deepcopy(earlier.get("normalization"))
    return state


def _load_stage(run_dir: Path, stage: int) -> Dict[str, Any]:
    from plastic_rl.agents.continual import STAGE_FORMAT, stage_file

    path = run_dir / stage_file(stage)
    if not path.is_file():
        raise SystemExit(f"error: {run_dir} has no {path.name}; run it with --keep-stages (keep_stages: true) to keep "
                         f"the learner after every stage.")
    snapshot = torch.load(path, map_location="cpu", weights_only=False)
    if snapshot.get("format") != STAGE_FORMAT:
        raise SystemExit(f"error: {path} is not a continual stage snapshot ({STAGE_FORMAT}).")
    return snapshot["learner"]


def attribute(run_dir: Path, groups: Dict[str, List[str]], episodes: Optional[int]) -> Dict[str, Any]:
    """Evaluate every earlier task with each group put back; return the figures.

    :param run_dir: a continual run folder with stage snapshots.
    :param groups: group name -> patterns.
    :param episodes: evaluation episodes per figure (default: the run's ``eval_episodes``).
    """
    from plastic_rl.agents.continual import Config, _eval_seed, _new_learner
    from plastic_rl.config import config_from_dict, load_yaml
    from plastic_rl.envs.sequences import get_sequence
    from plastic_rl.runs import CONFIG_FILE

    data = load_yaml(run_dir / CONFIG_FILE)
    data.pop("trainer", None)
    config = config_from_dict(Config, data, source=str(run_dir / CONFIG_FILE))
    if config.method not in ("ppo", "a2c"):
        raise SystemExit(f"error: method {config.method!r} is not supported; give a run of method ppo or a2c.")
    sequence = get_sequence(config.sequence)
    n = len(sequence.tasks)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise SystemExit(f"error: {run_dir} has not finished its sequence (no summary.json).")
    matrix = json.loads(summary_path.read_text())["matrix"]
    episodes = episodes or config.eval_episodes
    final = _load_stage(run_dir, n - 1)
    members = assign_groups(list(policy_tensors(final)), groups)
    has_normalization = final.get("normalization") is not None
    # (row name, tensors put back, whether the normalization statistics are put back): the same for every task
    candidates = [("nothing", [], False), *((g, m, False) for g, m in members.items())]
    if has_normalization:
        candidates.append((NORMALIZATION, [], True))
    candidates.append(("everything", [t for m in members.values() for t in m], has_normalization))
    learner = _new_learner(config, sequence, "none")
    rows = []
    try:
        for j in range(n - 1):
            earlier = _load_stage(run_dir, j)
            row = {"task": sequence.tasks[j].name, "after_own_stage": matrix[j][j], "at_the_end": matrix[-1][j], "restored": {}}
            for name, tensors, normalization in candidates:
                learner.load_state_dict(with_group_restored(final, earlier, tensors, normalization))
                row["restored"][name] = learner.evaluate(j, episodes, _eval_seed(config, j))
                print(f"task {row['task']}: {name} put back -> {row['restored'][name]:.1f}", file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        learner.finish()
    return {"run": str(run_dir), "episodes": episodes, "groups": members, "tasks": rows}


def sign_flips(run_dir: Path, grown: float) -> Dict[str, Any]:
    """Which signs of the final policy differ from those right after each earlier stage (no evaluation).

    For every tensor of dimension > 1 (those MetaplasticAdam consolidates; the critics skipped) and every
    stage j before the last: the share of entries whose sign differs at the end, the share whose hidden
    |value| exceeded ``grown`` right after stage j, and the share of those grown entries that flipped
    (for a binarized tensor the forward pass sees only the sign, so a flip is what changes the policy).

    :param run_dir: a continual run folder with stage snapshots.
    :param grown: the |value| above which an entry counts as grown (consolidated, for m * grown >~ 1).
    """
    from plastic_rl.config import load_yaml
    from plastic_rl.envs.sequences import get_sequence
    from plastic_rl.runs import CONFIG_FILE

    last = len(get_sequence(load_yaml(run_dir / CONFIG_FILE)["sequence"]).tasks) - 1
    final = policy_tensors(_load_stage(run_dir, last))
    rows = []
    for stage in range(last):
        earlier = policy_tensors(_load_stage(run_dir, stage))
        for name, tensor in earlier.items():
            if not isinstance(tensor, torch.Tensor) or tensor.dim() < 2 or _skipped(name):
                continue
            flipped = (tensor >= 0) != (final[name] >= 0)  # as binarize reads a sign: 0 counts as +
            big = tensor.abs() > grown
            rows.append({"stage": stage, "tensor": name, "flipped": float(flipped.float().mean()),
                         "grown": float(big.float().mean()),
                         "grown_flipped": float(flipped[big].float().mean()) if bool(big.any()) else None})
    return {"run": str(run_dir), "grown_threshold": grown, "rows": rows}


def sign_flips_markdown(result: Dict[str, Any]) -> str:
    """The sign flips as a markdown table, one row per (stage, tensor)."""
    grown = result["grown_threshold"]
    lines = [f"| since the end of stage | tensor | share flipped by the end | share with abs > {grown:g} then | "
             f"share of those flipped |", "|---:|---|---:|---:|---:|"]
    for row in result["rows"]:
        share = "–" if row["grown_flipped"] is None else f"{row['grown_flipped']:.3f}"
        lines.append(f"| {row['stage']} | {row['tensor']} | {row['flipped']:.3f} | {row['grown']:.2f} | {share} |")
    return "\n".join(lines)


def markdown(result: Dict[str, Any]) -> str:
    """The figures as a markdown table, one row per earlier task."""
    names = list(result["tasks"][0]["restored"])
    lines = ["| task | R[j][j] | R[last][j] | " + " | ".join(f"{n} put back" for n in names) + " |",
             "|---|---:|---:|" + "---:|" * len(names)]
    for row in result["tasks"]:
        cells = [f"{row['after_own_stage']:.0f}", f"{row['at_the_end']:.0f}"] + [f"{row['restored'][n]:.0f}" for n in names]
        lines.append(f"| {row['task']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    from plastic_rl.config import yaml_mapping

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a continual run folder made with keep_stages")
    parser.add_argument("--groups", default=None, metavar="YAML",
                        help="group name -> name patterns, first match wins, e.g. '{signs: [\"*weight\", \"*alpha\"]}' "
                             "(default: alpha, neuromodulator, weights, biases, log_std)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per figure (default: the run's eval_episodes)")
    parser.add_argument("--output", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--sign-flips", type=float, default=None, metavar="GROWN",
                        help="instead of evaluating, count the signs of each tensor of dimension > 1 that differ at the end "
                             "from right after each earlier stage, overall and among entries whose |value| exceeded GROWN then")
    args = parser.parse_args(argv)
    groups = DEFAULT_GROUPS
    if args.groups is not None:
        groups = yaml_mapping(args.groups)
        if not groups or not all(isinstance(p, list) and p and all(isinstance(x, str) for x in p) for p in groups.values()):
            parser.error(f"--groups must map group names to lists of name patterns, e.g. '{{signs: [\"*weight\"]}}'; "
                         f"got {args.groups!r}.")
        if NORMALIZATION in groups or "nothing" in groups or "everything" in groups:
            parser.error("--groups must not name a group normalization, nothing or everything (those rows are built in).")
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be a positive integer; got {args.episodes}.")
    if not args.run_dir.is_dir():
        parser.error(f"run_dir {str(args.run_dir)!r} is not a folder.")
    if args.sign_flips is not None:
        if not args.sign_flips >= 0:
            parser.error(f"--sign-flips must be a number >= 0; got {args.sign_flips}.")
        if args.groups is not None or args.episodes is not None:
            parser.error("--sign-flips evaluates nothing; do not combine it with --groups or --episodes.")
        result = sign_flips(args.run_dir, args.sign_flips)
        print(sign_flips_markdown(result))
    else:
        result = attribute(args.run_dir, groups, args.episodes)
        print(markdown(result))
    if args.output is not None:
        from plastic_rl.runs import atomic_write_json

        atomic_write_json(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
