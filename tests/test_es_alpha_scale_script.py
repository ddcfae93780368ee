"""scripts/es_alpha_scale.py: a plastic ES center with alpha scaled, and how far its parameters moved."""

from __future__ import annotations

import json

import pytest

def test_drift_is_measured_from_the_runs_own_initial_policy(tmp_path, load_script, tiny_es_run):
    script = load_script("es_alpha_scale")
    still = tiny_es_run("still", center_learning_rate=0.0)  # the center never moves
    # EvoTorch's Gaussian searchers apply a generation's gradient at the start of the next step: 2 generations
    moved = tiny_es_run("moved", center_learning_rate=0.5, alpha_scale=0.1, generations=2)
    report = script.main([str(still), str(moved), "--episodes", "1", "--scales", "1", "0",
                          "--output", str(tmp_path / "report.json")])
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report))
    assert set(report[str(still)]["drift_from_start"]) == {"weight", "bias", "alpha", "modulator"}
    assert all(d["rms_drift"] == 0.0 for d in report[str(still)]["drift_from_start"].values())
    assert all(d["rms_drift"] > 0.0 for d in report[str(moved)]["drift_from_start"].values())
    # mean |alpha| is the effective alpha: alpha_scale 0.1 with the same alpha_init starts at the same size
    assert report[str(moved)]["mean_abs_alpha"] == pytest.approx(report[str(still)]["mean_abs_alpha"], rel=0.5)
    assert {"alpha x 1", "alpha x 0"} <= set(report[str(moved)])


def test_a_static_run_is_refused(load_script, tiny_es_run):
    with pytest.raises(SystemExit):
        load_script("es_alpha_scale").main([str(tiny_es_run("static", plastic=False)), "--episodes", "1"])
