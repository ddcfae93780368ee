"""scripts/fine_tune_table.py: the before/after rows of a fine-tune under leg failures."""

from __future__ import annotations

import json

import pytest


def _condition(velocity, kept=None, falls=0):
    summary = {"mean_forward_velocity": velocity, "falls": falls, "episodes": 5}
    if kept is not None:
        summary["velocity_retention"] = kept
    return summary


def _conditions(scale):
    return {
        "intact": _condition(2.0 * scale),
        "front_left": _condition(0.2 * scale, 0.1), "front_right": _condition(1.0 * scale, 0.5, falls=1),
        "back_left": _condition(0.4 * scale, 0.2), "back_right": _condition(0.6 * scale, 0.3),
        "front_left@random": _condition(1.6 * scale, 0.8),
        "front_left+back_left": _condition(0.0, 0.0),  # two legs and weak legs are not single-leg conditions
        "back_left:0.5": _condition(2.0 * scale, 1.0),
    }


def test_rows_take_the_single_leg_conditions_only(load_script, tmp_path):
    script = load_script("fine_tune_table")
    report = {"run_dir": "tuned", "conditions": _conditions(1.0), "compare": {"run_dir": "start", "conditions": _conditions(2.0)}}
    path = tmp_path / "vs_start.json"
    path.write_text(json.dumps(report))
    rows = script.main([str(path), "--output", str(tmp_path / "table.md")])
    after, before = rows[0]["after"], rows[0]["before"]
    assert after["from_start"] == [0.2, 1.0, 0.4, 0.6] and before["intact"] == 4.0
    assert after["kept_mean"] == pytest.approx((0.1 + 0.5 + 0.2 + 0.3 + 0.8) / 5) and after["kept_worst"] == 0.1
    assert after["single_leg_conditions"] == 5 and after["falls"] == 1 and after["episodes"] == 40
    text = (tmp_path / "table.md").read_text()
    assert "| `start` | before | 4.00 |" in text and "| `tuned` | after | 2.00 | 0.20, 1.00, 0.40, 0.60 | 0.38 | 0.10 | 1/40 |" in text
    assert json.loads((tmp_path / "table.json").read_text())[0]["fine_tuned"] == "tuned"


def test_a_report_without_compare_exits_2(load_script, tmp_path, capsys):
    script = load_script("fine_tune_table")
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({"run_dir": "tuned", "conditions": _conditions(1.0)}))
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(path), "--output", str(tmp_path / "table.md")])
    assert exit_info.value.code == 2 and "has no 'compare' section" in capsys.readouterr().err
    assert not (tmp_path / "table.md").exists()
