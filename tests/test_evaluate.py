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
    failure_conditions,
    parse_failures,
    run_episodes,
)
from plastic_rl.policies import MLPActorCritic, export_policy
from plastic_rl.runs import CHECKPOINT_FILE, RunDirError, save_checkpoint

ENV = "plastic_rl/AntLegFailure-v0"


def make_policy(seed: int = 0) -> MLPActorCritic:
    torch.manual_seed(seed)
    return MLPActorCritic(105, 8, hidden_sizes=(16,), output_activation="tanh", value_head=False)


def test_parse_failures():
    assert parse_failures("all") == ["front_left", "front_right", "back_left", "back_right"]
    assert parse_failures("none") == []
    assert parse_failures("back_right, front_left") == ["front_left", "back_right"]
    with pytest.raises(ValueError, match="leg names from front_left, front_right, back_left, back_right; got 'front_leftt'"):
        parse_failures("front_leftt")


def test_conditions_cover_intact_start_and_mid_episode():
    conditions = failure_conditions(["front_left", "back_left"], 50)
    assert list(conditions) == ["intact", "front_left", "back_left", "front_left@50", "back_left@50"]
    assert conditions["back_left@50"] == {"failed_legs": ["back_left"], "failure_step": 50}
    assert list(failure_conditions([], 50)) == ["intact"]


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
    conditions = failure_conditions(["front_right"], 12)
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


def test_evaluate_run_refuses_non_quadruped_checkpoints(tmp_path):
    maze = tmp_path / "maze"
    save_checkpoint({"policy": export_policy(make_policy()), "env": {"id": "plastic_rl/Maze-v0", "kwargs": {}}}, maze / CHECKPOINT_FILE)
    with pytest.raises(RunDirError, match="holds no policy for plastic_rl/AntLegFailure-v0"):
        evaluate_run(maze, quiet=True)
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
    assert len(lines) == 1 and "--failures must be 'all', 'none' or comma-separated leg names" in lines[0]
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
