"""Limb-failure evaluation: conditions, batched rollouts, run-folder checks, CLI errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from plastic_rl.agents import es
from plastic_rl.agents.evaluate import (
    evaluate_policy,
    evaluate_run,
    parse_conditions,
    run_episodes,
)
from plastic_rl.policies import MLPActorCritic, export_policy
from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, save_checkpoint

ENV = "plastic_rl/AntLegFailure-v0"


def make_policy(seed: int = 0) -> MLPActorCritic:
    torch.manual_seed(seed)
    return MLPActorCritic(105, 8, hidden_sizes=(16,), output_activation="tanh", value_head=False)


def test_parse_failures():
    assert list(parse_conditions("all", 50, 100)) == [
        "intact", "front_left", "front_right", "back_left", "back_right",
        "front_left@50", "front_right@50", "back_left@50", "back_right@50",
    ]
    assert list(parse_conditions("none", 50, 100)) == ["intact"]
    assert list(parse_conditions("back_right, front_left", 0, 100)) == ["intact", "back_right", "front_left"]
    with pytest.raises(ValueError, match="legs from front_left, front_right, back_left, back_right; got 'front_leftt'"):
        parse_conditions("front_leftt", 50, 100)


def test_conditions_cover_intact_start_and_mid_episode():
    conditions = parse_conditions("front_left,back_left", 50, 100)
    assert list(conditions) == ["intact", "front_left", "front_left@50", "back_left", "back_left@50"]
    assert conditions["back_left@50"] == {"failed_legs": ["back_left"], "failure_step": 50}


def test_conditions_two_legs_weak_legs_and_random_steps():
    conditions = parse_conditions("pairs,weak:0.5,random,back_right+front_left:0.25@30", 0, 200)
    pairs = [n for n in conditions if "+" in n and ":" not in n]
    assert len(pairs) == 6 and "front_left+back_right" in pairs
    assert conditions["front_left+back_right"] == {"failed_legs": ["front_left", "back_right"], "failure_step": 0}
    assert conditions["back_left:0.5"] == {"failed_legs": ["back_left"], "failure_step": 0, "leg_strength": 0.5}
    assert conditions["front_right@random"] == {"failed_legs": ["front_right"], "failure_step": "random", "failure_step_range": (50, 150)}
    assert conditions["front_left+back_right:0.25@30"]["failure_step"] == 30
    full = parse_conditions("full", 100, 200)
    assert len(full) == 1 + 4 + 4 + 6 + 4 + 4  # intact, each leg, each leg @100, pairs, weak:0.5, @random
    for bad, why in [("weak:1.5", "must be a number in \\[0, 1\\]"), ("front_left@200", "must be from 0 to 199"),
                     ("front_left+front_left", "got 'front_left\\+front_left'"), ("", "got ''")]:
        with pytest.raises(ValueError, match="--failures must be comma-separated items from 'all', 'none', 'pairs'.*" + why):
            parse_conditions(bad, 100, 200)


def test_batched_rollout_matches_single_episodes():
    # Episodes run side by side must not influence each other (separate trace rows, separate envs).
    # Short episodes: batching changes float rounding (~1e-7), which contact dynamics amplify over long horizons.
    policy = make_policy()
    kwargs = [{"failed_legs": []}, {"failed_legs": ["front_left"]}, {"failed_legs": ["back_right"], "failure_step": 5}]
    batched = run_episodes(policy, None, ENV, kwargs, episode_length=10, seeds=[7, 8, 9])
    for i, kw in enumerate(kwargs):
        alone = run_episodes(policy, None, ENV, [kw], episode_length=10, seeds=[7 + i])
        assert alone["returns"][0] == pytest.approx(batched["returns"][i], rel=1e-5)
    assert (batched["lengths"] == 10).all()


def test_mid_episode_failure_matches_intact_until_the_failure_step():
    policy = make_policy(1)
    obs_norm = {"mean": torch.zeros(105), "stdev": torch.ones(105) * 2.0}
    conditions = parse_conditions("front_right", 12, 30)
    result = evaluate_policy(policy, obs_norm, ENV, {"failed_legs": "random"}, conditions, episodes=2, seed=3, episode_length=30)
    intact = np.asarray(result["velocity"]["intact"])
    late = np.asarray(result["velocity"]["front_right@12"])
    start = np.asarray(result["velocity"]["front_right"])
    np.testing.assert_allclose(late[:12], intact[:12], rtol=1e-4, atol=1e-6)  # same seeds, same policy: identical until the failure
    assert not np.allclose(late[12:], intact[12:])  # then the masked leg changes the motion
    assert not np.allclose(start[:12], intact[:12])
    for name in ("intact", "front_right", "front_right@12"):
        s = result["conditions"][name]
        assert s["episodes"] == 2 and len(s["returns"]) == 2
        assert s["mean_return"] == pytest.approx(np.mean(s["returns"]))
    assert "mean_forward_velocity_after" in result["conditions"]["front_right@12"]


def test_evaluate_run_refuses_checkpoints_of_other_envs(tmp_path):
    other = tmp_path / "cartpole"
    save_checkpoint({"policy": export_policy(make_policy()), "env": {"id": "CartPole-v1", "kwargs": {}}}, other / CHECKPOINT_FILE)
    with pytest.raises(RunDirError, match="holds no policy for plastic_rl/AntLegFailure-v0"):
        evaluate_run(other, quiet=True)
    with pytest.raises(RunDirError, match="has no checkpoint.pt"):
        evaluate_run(tmp_path / "nothing", quiet=True)


def test_evaluate_run_from_a_checkpoint_with_the_shared_keys(tmp_path):
    # Any trainer that saves "policy", "obs_norm" and "env" can be evaluated (not only ES).
    run = tmp_path / "run"
    obs_norm = {"mean": torch.zeros(105), "stdev": torch.ones(105)}
    save_checkpoint(
        {"policy": export_policy(make_policy()), "obs_norm": obs_norm,
         "env": {"id": ENV, "kwargs": {"failed_legs": "random"}, "episode_length": 20}},
        run / CHECKPOINT_FILE,
    )
    report = evaluate_run(run, failures="none", episodes=2, quiet=True)
    assert list(report["conditions"]) == ["intact"] and report["failure_step"] == 10
    report = evaluate_run(run, failures="back_left", episodes=1, json_out=tmp_path / "out.json", quiet=True)
    assert list(report["conditions"]) == ["intact", "back_left", "back_left@10"]
    with pytest.raises(ValueError, match="--failure-step must be an integer from 0 to 19"):
        evaluate_run(run, failures="all", failure_step=20, quiet=True)
    with pytest.raises(ValueError, match=r"--min-reference-velocity must be a number >= 0 \(m/s\); got -0.1"):
        evaluate_run(run, failures="none", min_reference_velocity=-0.1, quiet=True)
    assert evaluate_run(run, failures="none", episodes=1, quiet=True)["min_reference_velocity"] == 0.05


def test_cli_unknown_leg_exits_2_with_one_sentence(tmp_path):
    run = tmp_path / "run"
    save_checkpoint(
        {"policy": export_policy(make_policy()), "env": {"id": ENV, "kwargs": {}, "episode_length": 20}},
        run / CHECKPOINT_FILE,
    )
    result = subprocess.run(
        [sys.executable, "-m", "plastic_rl.agents.cli", "evaluate", str(run), "--failures", "front_left,middle_leg"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--failures must be comma-separated items from 'all', 'none', 'pairs'" in lines[0]
    assert es.Config().env_id == ENV


def _save_run(path, policy, episode_length=20):
    save_checkpoint(
        {"policy": export_policy(policy), "obs_norm": None,
         "env": {"id": ENV, "kwargs": {"failed_legs": "random"}, "episode_length": episode_length}},
        path / CHECKPOINT_FILE,
    )
    return path


def test_compare_runs_a_second_policy_on_the_same_episodes(tmp_path):
    import json

    plastic = MLPActorCritic(105, 8, hidden_sizes=(16,), output_activation="tanh", value_head=False, plastic=True)
    a = _save_run(tmp_path / "a", plastic)
    b = _save_run(tmp_path / "b", make_policy(1))
    report = evaluate_run(a, failures="front_left", episodes=2, json_out=tmp_path / "cmp.json", quiet=True, compare=a)
    # The same policy on the same conditions and episode seeds: the comparison reproduces the run exactly.
    assert report["compare"]["conditions"] == report["conditions"]
    report = evaluate_run(a, failures="front_left", episodes=2, json_out=tmp_path / "cmp.json", quiet=True, compare=b)
    written = json.loads((tmp_path / "cmp.json").read_text())
    assert written["compare"]["run_dir"] == str(b) and set(written["compare"]["conditions"]) == set(written["conditions"])
    assert written["compare"]["conditions"] != written["conditions"]  # another policy, other returns
    assert "velocity" not in written["compare"] and (tmp_path / "cmp.png").is_file()
    with pytest.raises(ValueError, match="--compare needs a run with the same episode length"):
        evaluate_run(a, failures="all", quiet=True, compare=_save_run(tmp_path / "c", make_policy(), episode_length=30))
