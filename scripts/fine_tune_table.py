"""Before and after a fine-tune under leg failures: one table from ``plastic-rl evaluate --compare`` reports.

Each report is ``plastic-rl evaluate FINE_TUNED --compare START ... --json FILE`` of a run
fine-tuned with ``init_from`` (``scripts/limb_failure.py --init-from``) against the run it
started from, on the same episodes. Per report the table has two rows, the start ("before")
and the fine-tuned run ("after"): intact forward velocity, the velocity with each single leg
disabled from the start, and the share of velocity kept over every single-leg condition
(mean and worst), falls summed over all conditions::

    python scripts/fine_tune_table.py results/limb_failure_ft/*/vs_start.json --output results/limb_failure_ft/vs_start.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from plastic_rl.envs.quadruped import LEG_NAMES
from plastic_rl.runs import atomic_write_text


def policy_row(conditions: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The table's numbers for one policy's conditions (an evaluate report's ``conditions``).

    :param conditions: condition name -> its summary (``mean_forward_velocity``, ``velocity_retention``, ``falls``...).
    """
    if "intact" not in conditions:
        raise ValueError("the report has no 'intact' condition: evaluate with --failures including none (e.g. all or full).")
    singles = [name for name in conditions if name.split("@")[0] in LEG_NAMES]
    kept = [conditions[n].get("velocity_retention") for n in singles]
    kept = [k for k in kept if k is not None and np.isfinite(k)]
    return {
        "intact": conditions["intact"]["mean_forward_velocity"],
        "from_start": [conditions[leg]["mean_forward_velocity"] if leg in conditions else None for leg in LEG_NAMES],
        "kept_mean": float(np.mean(kept)) if kept else None,
        "kept_worst": float(np.min(kept)) if kept else None,
        "single_leg_conditions": len(singles),
        "falls": int(sum(s["falls"] for s in conditions.values())),
        "episodes": int(sum(s["episodes"] for s in conditions.values())),
    }


def _num(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def main(argv: List[str] | None = None) -> List[Dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="plastic-rl evaluate --compare JSON reports (fine-tuned run vs its start)")
    parser.add_argument("--output", default=None, help="write the markdown table here (and its rows as JSON beside it)")
    args = parser.parse_args(argv)
    rows = []
    for path in args.reports:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            parser.error(f"report {path!r} could not be read as JSON ({err.__class__.__name__}).")
        if "compare" not in report:
            parser.error(f"report {path!r} has no 'compare' section: make it with plastic-rl evaluate FINE_TUNED --compare START.")
        try:
            before, after = policy_row(report["compare"]["conditions"]), policy_row(report["conditions"])
        except ValueError as err:
            parser.error(f"report {path!r}: {err}")
        rows.append({"report": str(path), "start": report["compare"]["run_dir"], "fine_tuned": report["run_dir"],
                     "before": before, "after": after})
    lines = [
        "| run | | intact m/s | single leg from the start, m/s (FL, FR, BL, BR) | velocity kept, mean of single-leg conditions | worst | falls |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        for label, key, run in (("before", "before", row["start"]), ("after", "after", row["fine_tuned"])):
            r = row[key]
            lines.append(f"| `{run}` | {label} | {_num(r['intact'])} | {', '.join(_num(v) for v in r['from_start'])} | "
                         f"{_num(r['kept_mean'])} | {_num(r['kept_worst'])} | {r['falls']}/{r['episodes']} |")
    text = "\n".join(lines)
    print(text)
    if args.output:
        atomic_write_text(args.output, text + "\n")
        atomic_write_text(Path(args.output).with_suffix(".json"), json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
