"""scripts/spiking_plasticity.py: the cue–reward task's semantics, a tiny run, resume, the table."""

from __future__ import annotations

import csv
import json

import pytest
import torch


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("spiking_plasticity")


def test_task_targets_outcomes_and_reveal(script):
    task = script.CueRewardTask(cues=3, trials=30, noise=0.0)
    obs, target, revealed = task.sample(16, torch.Generator().manual_seed(0))
    assert obs.shape == (30, 16, 4) and target.shape == revealed.shape == (30, 16)
    shown = obs[..., :3].argmax(-1)
    for b in range(16):
        rewarded = {int(c) for c, t in zip(shown[:, b], target[:, b]) if t == 1}
        assert len(rewarded) <= 1  # one rewarded cue per episode
        # The outcome input of trial t is the target of trial t - 1; 'revealed' turns on after the first hit.
        assert torch.equal(obs[1:, b, 3], target[:-1, b]) and obs[0, b, 3] == 0
        hits = torch.nonzero(target[:, b]).flatten()
        first = int(hits[0]) + 1 if len(hits) else 30
        assert not revealed[:first, b].any() and revealed[first:, b].all()
    noisy = script.CueRewardTask(cues=3, trials=30, noise=0.5).sample(16, torch.Generator().manual_seed(0))[0]
    assert 0.4 < float((noisy - obs).std()) < 0.6


def test_balanced_accuracy_of_a_memoryless_answer_is_one_half(script):
    task = script.CueRewardTask(cues=4, trials=12, noise=0.0)
    _, target, revealed = task.sample(200, torch.Generator().manual_seed(1))
    always_no = torch.zeros(*target.shape, 2)
    always_no[..., 0] = 1
    assert script.balanced_accuracy(always_no, target, revealed) == pytest.approx(0.5)
    perfect = torch.stack([1 - target, target], -1)
    assert script.balanced_accuracy(perfect, target, revealed) == pytest.approx(1.0)


def test_tiny_run_resumes_and_writes_the_table(script, tmp_path):
    args = ["--variants", "hebbian-none", "non-plastic", "--seeds", "0", "--noise", "0", "0.2", "--hidden-size", "8",
            "--out", str(tmp_path)]
    assert script.main(["--iterations", "2"] + args) == 0
    run = tmp_path / "runs" / "hebbian-none-noise0-seed0"
    assert json.loads((run / "summary.json").read_text())["iterations"] == 2
    # A larger budget continues the finished runs from their checkpoints.
    assert script.main(["--iterations", "3"] + args) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]
    table = list(csv.DictReader((tmp_path / "spiking_plasticity.csv").open()))
    assert {(r["variant"], r["noise"]) for r in table} == {
        ("hebbian-none", "0"), ("non-plastic", "0"), ("hebbian-none", "0.2"), ("non-plastic", "0.2")}
    static, plastic = (next(r for r in table if r["variant"] == v and r["noise"] == "0") for v in ("non-plastic", "hebbian-none"))
    assert int(static["hidden_size"]) > 8  # the matched twin is wider
    assert plastic["median_alpha0"] != "nan" and static["median_alpha0"] == "nan"


def test_bad_values_name_the_field(script, tmp_path, capsys):
    assert script.main(["--iterations", "0", "--out", str(tmp_path)]) == 2
    assert "iterations must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
