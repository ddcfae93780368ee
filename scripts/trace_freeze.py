"""Does a plastic quadruped policy learn from a leg failure? Freeze its Hebbian traces at the failure and see.

A plastic policy can keep its speed after a leg fails for two different reasons: its gait
(weights plus traces that settle early in the episode) happens to cope with three legs, or its
traces change after the failure and re-tune the gait, which is what "adapts within the episode"
means. ``plastic-rl evaluate`` cannot tell these apart. This script can: it runs the same
deterministic episodes (same seeds, same failure) three ways,

- ``plastic``: the policy as trained;
- ``frozen``: the traces stop changing at the failure step (the plastic term keeps acting with
  the traces it had then): the network can no longer learn from what the failure does;
- ``alpha0``: every plasticity coefficient alpha set to 0 (no plasticity at all),

and reports the forward velocity after the failure step (distance from that step to the end of
the horizon over the time left; a fall stops the robot for the rest of the horizon), intact and
with each leg failing at ``--failure-step``. Within-episode learning from the failure is then
``plastic − frozen`` under the failure, set against the same difference intact (what freezing
costs when nothing happened).

    python scripts/trace_freeze.py results/limb_failure_lever_pop100/plastic-seed0 --episodes 10 \\
        --output results/limb_failure_lever_pop100/trace_freeze.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from plastic_rl.agents.evaluate import FAILURE_KWARGS, LEG_NAMES, _distances, load_quadruped_run, parse_conditions, run_episodes
from plastic_rl.agents.evaluate_maze import is_plastic, without_plasticity
from plastic_rl.runs import RunDirError, atomic_write_json, atomic_write_text

MODES = ("plastic", "frozen", "alpha0")


class ClockedState(NamedTuple):
    """The state of :class:`FrozenTraces`: the step count of each episode, and the policy's own state."""

    step: int
    inner: Any


class FrozenTraces(nn.Module):
    """``policy`` whose state (for a plastic MLP: its Hebbian traces) stops changing from step ``freeze_step`` on.

    The step count travels in the state (:class:`ClockedState`), so nothing per-episode is kept in the module.

    :param policy: a plastic-core policy whose state is all plastic (the plastic MLP's traces).
    :param freeze_step: the first step whose update is dropped (the failure step).
    """

    def __init__(self, policy: nn.Module, freeze_step: int) -> None:
        super().__init__()
        self.policy = policy
        self.freeze_step = int(freeze_step)
        self.config = getattr(policy, "config", {})

    def act(self, obs: torch.Tensor, state: Any = None, deterministic: bool = False):
        clock = state if isinstance(state, ClockedState) else ClockedState(0, state)
        action, new_state = self.policy.act(obs, clock.inner, deterministic=deterministic)
        if clock.step >= self.freeze_step and clock.inner is not None:
            new_state = clock.inner  # the update of this step and every later one is dropped
        return action, ClockedState(clock.step + 1, new_state)


def velocity_after(result: Dict[str, np.ndarray], rows: slice, start: int, episode_length: int) -> Dict[str, Any]:
    """Over the episodes ``rows``: the x distance from step ``start`` to the end (a fall ends it) over the time left, and falls.

    :param result: :func:`run_episodes` output with ``record_velocity=True``.
    :param rows: the episodes of one condition.
    :param start: the first step counted.
    :param episode_length: the horizon.
    """
    lengths = result["lengths"][rows]
    distance = _distances(result["positions"][rows], lengths, np.full(len(lengths), start))
    velocity = distance / ((episode_length - start) * result["dt"])
    return {"velocity": float(np.mean(velocity)), "per_episode": [round(float(v), 4) for v in velocity],
            "falls": int(np.sum(result["terminated"][rows]))}


def measure_run(run_dir: str, failure_step: Optional[int], episodes: int, policy_key: str, legs: List[str]) -> Dict[str, Any]:
    """Velocity after ``failure_step`` in each condition (intact, each leg at ``failure_step``) and mode.

    :param run_dir: an ES run folder of a plastic quadruped policy.
    :param failure_step: the step at which the leg fails and the traces are frozen (None: half the run's episode length).
    :param episodes: episodes per condition and mode (the same seeds everywhere).
    :param policy_key: ``"center_policy"`` or ``"policy"``.
    :param legs: the legs that fail, one condition each.
    """
    run = load_quadruped_run(run_dir, policy_key)
    policy = run["policy"]
    if not is_plastic(policy):
        raise RunDirError(f"{run_dir!r} holds no plastic policy (no plasticity.alpha parameter); only a plastic policy has traces to freeze.")
    if getattr(policy, "config", {}).get("random_weights"):
        raise RunDirError(f"{run_dir!r} holds a rules-only policy, whose state carries its weights (freezing it would freeze them too); trace_freeze takes plastic MLP runs with learned weights.")
    length = run["episode_length"]
    failure_step = length // 2 if failure_step is None else failure_step
    if not 0 < failure_step < length:
        raise ValueError(f"--failure-step must be from 1 to {length - 1} (the run's episode length is {length}); got {failure_step}.")
    policies = {"plastic": policy, "frozen": FrozenTraces(policy, failure_step), "alpha0": without_plasticity(policy)}
    conditions = parse_conditions([f"{leg}@{failure_step}" for leg in legs], None, length)
    base = {k: v for k, v in run["env_kwargs"].items() if k not in FAILURE_KWARGS}
    kwargs = [{**base, **overrides} for overrides in conditions.values() for _ in range(episodes)]
    seeds = [20_000 + i for _ in conditions for i in range(episodes)]  # the same episodes in every condition and mode
    results = {}
    for mode, p in policies.items():
        with torch.no_grad():
            results[mode] = run_episodes(p, run["obs_norm"], run["env_id"], kwargs, length, seeds=seeds, record_velocity=True)
    report: Dict[str, Any] = {"generation": run["generation"], "failure_step": failure_step, "episodes": episodes,
                              "policy_key": policy_key, "conditions": {}}
    for index, name in enumerate(conditions):
        rows = slice(index * episodes, (index + 1) * episodes)
        entry = {mode: velocity_after(results[mode], rows, failure_step, length) for mode in MODES}
        entry["learning_after_step"] = entry["plastic"]["velocity"] - entry["frozen"]["velocity"]
        report["conditions"][name] = entry
    return report


def pooled(reports: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """plastic − frozen pooled over runs: median, quartiles, range and count, under failure and intact.

    :param reports: :func:`measure_run` reports by run folder.
    """
    values: Dict[str, List[float]] = {"failure": [], "intact": []}
    for report in reports.values():
        for name, entry in report["conditions"].items():
            values["intact" if name == "intact" else "failure"].append(entry["learning_after_step"])
    out = {}
    for key, v in values.items():
        q25, median, q75 = np.percentile(v, [25, 50, 75])
        out[key] = {"median": float(median), "q25": float(q25), "q75": float(q75), "min": float(np.min(v)),
                    "max": float(np.max(v)), "n": len(v)}
    return out


def format_report(reports: Dict[str, Dict[str, Any]], pooled_stats: Dict[str, Dict[str, float]]) -> str:
    """A Markdown table: velocity after the failure step per condition and mode, and plastic − frozen; then :func:`pooled`."""
    lines = ["| run | condition | plastic m/s | frozen traces m/s | alpha = 0 m/s | plastic − frozen | falls (p, f, a0) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for run_dir, report in reports.items():
        for name, e in report["conditions"].items():
            lines.append(f"| {run_dir} | {name} | {e['plastic']['velocity']:.2f} | {e['frozen']['velocity']:.2f} | "
                         f"{e['alpha0']['velocity']:.2f} | {e['learning_after_step']:+.2f} | "
                         f"{e['plastic']['falls']}, {e['frozen']['falls']}, {e['alpha0']['falls']} |")
    lines += ["", "plastic − frozen (m/s) pooled over the runs above:", "",
              "| | conditions | median [IQR] | range |", "|---|---:|---|---|"]
    for key, q in pooled_stats.items():
        label = "a leg failed at the freeze step" if key == "failure" else "intact (what freezing costs by itself)"
        lines.append(f"| {label} | {q['n']} | {q['median']:+.3f} [{q['q25']:+.3f}, {q['q75']:+.3f}] | {q['min']:+.2f} to {q['max']:+.2f} |")
    return "\n".join(lines)


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="ES run folders of plastic MLP policies on the quadruped")
    parser.add_argument("--failure-step", type=int, default=None, help="failure and freeze step (default: half the episode length)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per condition and mode (the same seeds for all)")
    parser.add_argument("--policy", choices=["center", "best"], default="center", help="the ES center (default) or the best sample")
    parser.add_argument("--legs", nargs="+", default=list(LEG_NAMES), choices=list(LEG_NAMES), help="the legs that fail, one condition each")
    parser.add_argument("--output", default=None, help="write the report as JSON here (and the table next to it as .md)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be a positive integer; got {args.episodes}.")
    torch.set_num_threads(1)
    policy_key = "center_policy" if args.policy == "center" else "policy"
    reports: Dict[str, Any] = {}
    for run_dir in args.run_dirs:
        try:
            reports[run_dir] = measure_run(run_dir, args.failure_step, args.episodes, policy_key, args.legs)
        except (RunDirError, ValueError) as err:
            parser.error(str(err))
    pooled_stats = pooled(reports)
    table = format_report(reports, pooled_stats)
    print(table)
    if args.output:
        atomic_write_json(args.output, {"runs": reports, "pooled": pooled_stats, "command": "python scripts/trace_freeze.py "
                                        + " ".join(argv if argv is not None else sys.argv[1:])})
        atomic_write_text(str(args.output).rsplit(".", 1)[0] + ".md", table + "\n")
    return reports


if __name__ == "__main__":
    main()
