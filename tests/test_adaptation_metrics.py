"""Adaptation metrics of the limb-failure evaluation: fixed-horizon motion, falls apart, ratios to intact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic_rl.agents.evaluate import evaluate_policy, format_table, parse_conditions
from plastic_rl.policies import MLPActorCritic

ENV = "plastic_rl/AntLegFailure-v0"
DT = 0.05  # Ant-v5: frame_skip 5 x timestep 0.01


def make_policy(seed: int = 0, plastic: bool = True) -> MLPActorCritic:
    torch.manual_seed(seed)
    return MLPActorCritic(105, 8, hidden_sizes=(16,), output_activation="tanh", value_head=False, plastic=plastic)


def test_distance_velocity_and_ratios_on_a_fixed_horizon():
    policy = make_policy(0)
    conditions = parse_conditions("front_left:1,back_left", 0, 40)  # strength 1 = an intact leg
    # min_reference_velocity 0: the ratios of this untrained policy's small motion are what this test checks.
    result = evaluate_policy(policy, None, ENV, {"failed_legs": "random"}, conditions, episodes=2, seed=5, episode_length=40,
                             min_reference_velocity=0.0)
    stats = result["conditions"]
    intact = stats["intact"]
    assert intact["falls"] == 0 and intact["mean_episode_length"] == 40
    # Velocity is distance over the horizon; the distance is the sum of Ant's own x velocity times dt, up to one
    # MuJoCo substep: Ant-v5 takes x_velocity from the torso's xpos, which mj_step leaves one substep (0.01 s)
    # behind qpos, from which the distance is measured.
    assert intact["mean_forward_velocity"] == pytest.approx(intact["mean_distance"] / (40 * DT))
    velocity = np.asarray(result["velocity"]["intact"])
    assert intact["mean_distance"] == pytest.approx(np.nansum(velocity) * DT, abs=1e-6 + 0.01 * np.nanmax(np.abs(velocity)))
    # A leg that keeps all of its control is the intact robot: ratios exactly 1 (if the policy moves forward).
    same = stats["front_left:1"]
    assert same["distances"] == intact["distances"] and same["returns"] == intact["returns"]
    if intact["mean_distance"] > 0:
        assert same["velocity_retention"] == pytest.approx(1.0)
        assert stats["back_left"]["velocity_retention"] == pytest.approx(stats["back_left"]["mean_distance"] / intact["mean_distance"])
    else:
        assert same["velocity_retention"] is None
    assert same["return_ratio"] == pytest.approx(1.0)
    assert stats["back_left"]["distances"] != intact["distances"]
    assert "back_left" in format_table(stats)


def test_velocity_kept_is_left_out_where_the_intact_policy_hardly_moves():
    policy = make_policy(2)  # this untrained policy drifts forward at about 0.1 m/s on these seeds
    conditions = parse_conditions("back_left,back_left@20", 0, 40)
    loose = evaluate_policy(policy, None, ENV, {}, conditions, episodes=2, seed=5, episode_length=40, min_reference_velocity=0.0)
    intact = loose["conditions"]["intact"]
    assert intact["mean_distance"] > 0, "the test needs a policy that drifts forward a little"
    velocity = intact["mean_forward_velocity"]
    # Just above the intact velocity over the whole horizon: the from-the-start ratio is left out, the
    # return ratio is not (it is reported either way); below it, the ratio is kept.
    strict = evaluate_policy(policy, None, ENV, {}, conditions, episodes=2, seed=5, episode_length=40,
                             min_reference_velocity=velocity * 1.01)
    assert strict["conditions"]["back_left"]["velocity_retention"] is None
    assert strict["conditions"]["back_left"]["return_ratio"] == loose["conditions"]["back_left"]["return_ratio"]
    assert strict["conditions"]["back_left"]["distances"] == loose["conditions"]["back_left"]["distances"]
    below = evaluate_policy(policy, None, ENV, {}, conditions, episodes=2, seed=5, episode_length=40,
                            min_reference_velocity=velocity * 0.99)
    assert below["conditions"]["back_left"]["velocity_retention"] == loose["conditions"]["back_left"]["velocity_retention"]
    with pytest.raises(ValueError, match="min_reference_velocity must be a number >= 0"):
        evaluate_policy(policy, None, ENV, {}, conditions, episodes=1, episode_length=10, min_reference_velocity=-1.0)


def test_falls_are_counted_apart_and_stop_the_robot_for_the_rest_of_the_horizon():
    policy = make_policy(1)
    # A healthy height range the torso (starting at z ~ 0.75) is already outside: every episode ends at step 1.
    env_kwargs = {"healthy_z_range": (0.2, 0.5), "failed_legs": "random"}
    result = evaluate_policy(policy, None, ENV, env_kwargs, parse_conditions("front_right", 0, 50), episodes=3, seed=0, episode_length=50)
    for name in ("intact", "front_right"):
        s = result["conditions"][name]
        assert s["falls"] == 3 and s["fall_rate"] == 1.0 and s["mean_episode_length"] == 1
        # The one-step distance is spread over the 50-step horizon: a fall is not a fast short episode.
        assert s["mean_forward_velocity"] == pytest.approx(s["mean_distance"] / (50 * DT))
        assert abs(s["mean_forward_velocity"]) < abs(np.nanmean(result["velocity"][name])) / 10 + 1e-12


def test_random_step_failures_vary_per_episode_and_repeat_with_the_seed():
    policy = make_policy(2)
    conditions = parse_conditions("back_right@random", 0, 30)
    assert conditions["back_right@random"]["failure_step_range"] == (7, 22)
    first = evaluate_policy(policy, None, ENV, {}, conditions, episodes=4, seed=3, episode_length=30)
    again = evaluate_policy(policy, None, ENV, {}, conditions, episodes=4, seed=3, episode_length=30)
    s = first["conditions"]["back_right@random"]
    assert all(7 <= k < 22 for k in s["failure_steps"]) and len(set(s["failure_steps"])) > 1
    assert again["conditions"] == first["conditions"]
    other = evaluate_policy(policy, None, ENV, {}, conditions, episodes=4, seed=4, episode_length=30)
    assert other["conditions"]["back_right@random"]["failure_steps"] != s["failure_steps"]
    assert s["mean_distance_after"] == pytest.approx(np.mean(s["distances_after"]))
    # Episode i is the episode with seed 3 + i and the leg failing at its drawn step: replaying that fixed
    # step gives the same motion, and the distance "after" starts at that step.
    for i in (0, 1):
        k = s["failure_steps"][i]
        fixed = evaluate_policy(policy, None, ENV, {}, parse_conditions(f"back_right@{k}", 0, 30), episodes=1, seed=3 + i, episode_length=30)
        replay = fixed["conditions"][f"back_right@{k}"]
        assert replay["distances"][0] == pytest.approx(s["distances"][i], rel=1e-4, abs=1e-6)
        assert replay["distances_after"][0] == pytest.approx(s["distances_after"][i], rel=1e-4, abs=1e-6)
