"""keep_stages snapshots of a continual run, and scripts/forgetting_attribution.py that reads them."""

from __future__ import annotations

import json

import pytest
import torch

from plastic_rl.agents.continual import Config, stage_file, train

TWO_PENDULUMS = """\
tasks:
  - {name: g10, env_id: Pendulum-v1, kwargs: {g: 10.0}}
  - {name: g5, env_id: Pendulum-v1, kwargs: {g: 5.0}}
"""
# A plastic MLP under PPO with VecNormalize: one rollout of 2 x 32 steps per task.
PPO = {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "episode_length": 50, "normalize_obs": True,
       "policy_kwargs": {"hidden_sizes": [8]}}


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("forgetting_attribution")


def _run(tmp_path, keep_stages: bool):
    path = tmp_path / "pendulums.yaml"
    path.write_text(TWO_PENDULUMS)
    config = Config(sequence=str(path), method="ppo", steps_per_task=64, eval_episodes=2, learning_rate=1e-2,
                    method_config=PPO, reference=False, keep_stages=keep_stages, progress=False, tensorboard=False)
    run_dir = tmp_path / ("stages" if keep_stages else "plain")
    return run_dir, train(config, run_dir)


def test_stage_snapshots_and_putting_groups_back(script, tmp_path, capsys):
    run_dir, summary = _run(tmp_path, keep_stages=True)
    first, last = (torch.load(run_dir / stage_file(j), weights_only=False) for j in (0, 1))
    assert (first["stage"], first["task"], last["task"]) == (0, "g10", "g5")
    # The second stage trained the weights and moved the shared statistics.
    assert not torch.equal(first["learner"]["policy"]["core.layers.0.weight"], last["learner"]["policy"]["core.layers.0.weight"])
    assert first["learner"]["normalization"]["obs_count"] < last["learner"]["normalization"]["obs_count"]

    result = script.attribute(run_dir, script.DEFAULT_GROUPS, episodes=None)
    (row,) = result["tasks"]  # every task but the last
    # Nothing put back is the final policy (R[last][0]); everything put back is the policy after stage 0 (R[0][0]).
    assert row["restored"]["nothing"] == pytest.approx(summary["matrix"][1][0], abs=1e-9)
    assert row["restored"]["everything"] == pytest.approx(summary["matrix"][0][0], abs=1e-9)
    assert set(row["restored"]) == {"nothing", "alpha", "neuromodulator", "weights", "biases", "log_std", "normalization",
                                    "everything"}
    assert row["restored"]["log_std"] == pytest.approx(row["restored"]["nothing"], abs=1e-9)  # deterministic actions
    assert "core.layers.0.weight" in result["groups"]["weights"] and not any(
        name.startswith("critic.") for names in result["groups"].values() for name in names)
    assert script.main([str(run_dir), "--output", str(tmp_path / "attr.json")]) == 0
    assert "| g10 |" in capsys.readouterr().out and json.loads((tmp_path / "attr.json").read_text())["episodes"] == 2


def test_groups_first_match_wins_and_the_rest_is_other(script):
    names = ["core.a.plasticity.alpha", "core.a.weight", "core.a.bias", "critic.x.weight", "value_head.weight", "core.odd"]
    groups = script.assign_groups(names, {"signs": ["*alpha", "*weight"], "biases": ["*bias"], "unused": ["nothing*"]})
    # The critics (ppo's critic.*, a2c's value_head.*) do not act: in no group.
    assert groups == {"signs": ["core.a.plasticity.alpha", "core.a.weight"], "biases": ["core.a.bias"], "other": ["core.odd"]}


def test_a_run_without_stages_and_bad_groups_are_refused(script, tmp_path):
    run_dir, _ = _run(tmp_path, keep_stages=False)
    assert not list(run_dir.glob("stage-*.pt"))
    with pytest.raises(SystemExit, match="has no stage-1.pt; run it with --keep-stages"):
        script.main([str(run_dir)])
    with pytest.raises(SystemExit) as err:
        script.main([str(run_dir), "--groups", "{signs: '*weight'}"])
    assert err.value.code == 2


def test_sign_flips_count_the_signs_that_changed_since_each_stage(script, tmp_path, capsys):
    run_dir, _ = _run(tmp_path, keep_stages=True)
    first, last = (torch.load(run_dir / stage_file(j), weights_only=False)["learner"]["policy"] for j in (0, 1))
    result = script.sign_flips(run_dir, grown=0.1)
    rows = {row["tensor"]: row for row in result["rows"]}
    assert all(row["stage"] == 0 for row in result["rows"])  # two tasks: only stage 0 is earlier than the last
    assert not any(name.startswith("critic.") for name in rows) and all(first[name].dim() > 1 for name in rows)
    name = "core.layers.0.weight"
    flipped = (first[name] >= 0) != (last[name] >= 0)
    big = first[name].abs() > 0.1
    assert rows[name]["flipped"] == pytest.approx(float(flipped.float().mean()))
    assert rows[name]["grown"] == pytest.approx(float(big.float().mean()))
    assert rows[name]["grown_flipped"] == (pytest.approx(float(flipped[big].float().mean())) if big.any() else None)
    assert script.main([str(run_dir), "--sign-flips", "0.1"]) == 0
    assert f"| 0 | {name} |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(run_dir), "--sign-flips", "-1"])
    assert exit_info.value.code == 2 and "--sign-flips must be a number >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(run_dir), "--sign-flips", "0.3", "--episodes", "2"])
    assert exit_info.value.code == 2 and "do not combine it with --groups or --episodes" in capsys.readouterr().err
