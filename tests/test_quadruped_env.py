"""Tests of plastic_rl/AntLegFailure-v0 (envs/quadruped.py)."""

from __future__ import annotations

import pickle
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import plastic_rl.envs  # noqa: F401  (registers the env ids)
from plastic_rl.envs.quadruped import (
    DEFAULT_FAILURE_PROBS,
    LEG_ACTUATORS,
    LEG_JOINTS,
    LEG_NAMES,
    AntLegFailureEnv,
)

ENV_ID = "plastic_rl/AntLegFailure-v0"
# A constant action that drives every actuator: any healthy joint feels force.
PUSH = np.full(8, 0.5, dtype=np.float32)


def make(**kwargs) -> gym.Env:
    return gym.make(ENV_ID, **kwargs)


def leg_dofs(env: gym.Env, leg: str) -> list[int]:
    """Dof addresses of a leg's hip and ankle, found through the actuator transmissions."""
    model = env.unwrapped.model
    return [int(model.jnt_dofadr[model.actuator_trnid[i, 0]]) for i in LEG_ACTUATORS[leg]]


def leg_forces(env: gym.Env, leg: str) -> np.ndarray:
    return env.unwrapped.data.qfrc_actuator[leg_dofs(env, leg)].copy()


def test_actuator_table_matches_model() -> None:
    env = make()
    model = env.unwrapped.model
    assert model.nu == 8
    assert sorted(i for idx in LEG_ACTUATORS.values() for i in idx) == list(range(8))
    # Ant-v5's <motor> elements are unnamed (model.actuator(i).name == ""), so an
    # actuator is identified by the joint it drives, and a leg by its body in ant.xml.
    leg_body = {
        "front_left": "front_left_leg",
        "front_right": "front_right_leg",
        "back_left": "back_leg",
        "back_right": "right_back_leg",
    }
    torso = model.body("torso").id
    for leg in LEG_NAMES:
        joints = tuple(model.joint(int(model.actuator_trnid[i, 0])).name for i in LEG_ACTUATORS[leg])
        assert joints == LEG_JOINTS[leg]
        body = int(model.jnt_bodyid[model.joint(joints[0]).id])
        while int(model.body_parentid[body]) != torso:
            body = int(model.body_parentid[body])
        assert model.body(body).name == leg_body[leg]
    # The env resolves the indices from the model itself; for the stock model they equal the table.
    assert env.unwrapped._leg_actuators == LEG_ACTUATORS
    env.close()


@pytest.mark.parametrize("failed", [["front_left"], ["back_right", "front_right"]])
def test_failed_legs_get_zero_force(failed: list[str]) -> None:
    env = make(failed_legs=failed)
    _, info = env.reset(seed=0)
    assert info["failed_legs"] == tuple(leg for leg in LEG_NAMES if leg in failed)
    assert info["failure_active"] is True
    for _ in range(3):
        _, _, _, _, info = env.step(PUSH)
        assert info["failure_active"] is True
        for leg in LEG_NAMES:
            forces = leg_forces(env, leg)
            if leg in failed:
                assert np.all(forces == 0.0), leg
            else:
                assert np.all(forces != 0.0), leg
        ctrl = env.unwrapped.data.ctrl
        for leg in failed:
            assert np.all(ctrl[list(LEG_ACTUATORS[leg])] == 0.0)
    env.close()


def test_control_cost_sees_mask_and_action_is_not_modified() -> None:
    weight = 0.3
    env = make(failed_legs=["back_left"], ctrl_cost_weight=weight)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        action = rng.uniform(-1, 1, size=8).astype(np.float32)
        original = action.copy()
        _, _, _, _, info = env.step(action)
        masked = action.astype(np.float64)
        masked[list(LEG_ACTUATORS["back_left"])] = 0.0
        assert info["reward_ctrl"] == pytest.approx(-weight * np.sum(masked**2), rel=1e-12)
        assert np.array_equal(action, original)
    env.close()


def test_mid_episode_failure_timing() -> None:
    k = 3
    env = make(failed_legs=["front_right"], failure_step=k)
    _, info = env.reset(seed=2)
    assert info["failed_legs"] == ("front_right",)
    assert info["failure_active"] is False
    assert env.unwrapped.failure_active is False
    for t in range(k + 3):
        _, _, terminated, _, info = env.step(PUSH)
        assert not terminated
        active = t >= k
        assert info["failure_active"] is active, t
        assert env.unwrapped.failure_active is active
        assert info["failed_legs"] == ("front_right",)
        forces = leg_forces(env, "front_right")
        assert np.all(forces == 0.0) if active else np.all(forces != 0.0), t
        assert np.all(leg_forces(env, "front_left") != 0.0)
    # A new episode starts intact again until step k.
    _, info = env.reset()
    assert info["failure_active"] is False
    env.step(PUSH)
    assert np.all(leg_forces(env, "front_right") != 0.0)
    env.close()


def test_random_draws_follow_probs_and_are_reproducible() -> None:
    env = make(failed_legs="random")
    draws = []
    for i in range(400):
        _, info = env.reset(seed=i) if i == 0 else env.reset()
        assert env.unwrapped.failed_legs == info["failed_legs"]
        assert info["failure_active"] is bool(info["failed_legs"])
        draws.append(info["failed_legs"])
    counts = Counter("none" if not d else d[0] for d in draws)
    assert set(counts) <= set(DEFAULT_FAILURE_PROBS)
    for key, p in DEFAULT_FAILURE_PROBS.items():
        # ~4 standard deviations of a binomial frequency over 400 draws.
        assert abs(counts[key] / 400 - p) < 4 * np.sqrt(p * (1 - p) / 400), (key, counts)

    # Same seed, same sequence of draws.
    again = [env.reset(seed=0)[1]["failed_legs"]] + [env.reset()[1]["failed_legs"] for _ in range(29)]
    assert again == draws[:30]

    # A custom distribution: outcomes with probability 0 never occur.
    env2 = make(failed_legs="random", failure_probs={"back_left": 0.5, "back_right": 0.5})
    seen = {env2.reset(seed=0)[1]["failed_legs"]} | {env2.reset()[1]["failed_legs"] for _ in range(40)}
    assert seen == {("back_left",), ("back_right",)}
    env.close()
    env2.close()


def test_reset_options_override_one_episode() -> None:
    env = make(failed_legs="random", failure_probs={"none": 1.0})
    _, info = env.reset(seed=0, options={"failed_legs": ["back_left", "front_left"]})
    assert info["failed_legs"] == ("front_left", "back_left")
    assert info["failure_active"] is True
    env.step(PUSH)
    assert np.all(leg_forces(env, "back_left") == 0.0)
    assert np.all(leg_forces(env, "front_left") == 0.0)

    _, info = env.reset(options={"failed_legs": ["back_right"], "failure_step": 1})
    assert info["failure_active"] is False
    assert env.unwrapped.failure_step == 1
    assert env.step(PUSH)[4]["failure_active"] is False
    assert env.step(PUSH)[4]["failure_active"] is True

    # The override lasts one episode only.
    _, info = env.reset()
    assert info["failed_legs"] == () and info["failure_active"] is False
    env.close()


def test_kwargs_pass_through_and_registration() -> None:
    env = make(
        failed_legs=["front_left"],
        ctrl_cost_weight=0.0,
        healthy_z_range=(0.3, 1.2),
        include_cfrc_ext_in_observation=False,
    )
    assert env.spec.max_episode_steps == 1000
    ant = env.unwrapped
    assert isinstance(ant, AntLegFailureEnv)
    assert ant._ctrl_cost_weight == 0.0
    assert ant._healthy_z_range == (0.3, 1.2)
    assert env.observation_space.shape == (27,)
    env.reset(seed=0)
    assert env.step(PUSH)[4]["reward_ctrl"] == 0.0
    env.close()


def test_intact_env_reproduces_ant_v5() -> None:
    ours, ant = make(), gym.make("Ant-v5")
    rng = np.random.default_rng(1)
    # Two episodes: the second checks that no random number is consumed per reset.
    for seed in (5, None):
        obs_a, _ = ours.reset(seed=seed)
        obs_b, _ = ant.reset(seed=seed)
        assert np.array_equal(obs_a, obs_b)
        for _ in range(3):
            action = rng.uniform(-1, 1, size=8)
            a, b = ours.step(action), ant.step(action)
            assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    ours.close()
    ant.close()


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"include_cfrc_ext_in_observation": False},
     {"exclude_current_positions_from_observation": False, "contact_cost_weight": 1e-3, "healthy_z_range": (0.3, 0.9)}],
    ids=["default", "no-cfrc", "positions-contact-cost"],
)
def test_step_is_ant_v5_step_bit_for_bit_over_whole_episodes(kwargs) -> None:
    # AntLegFailureEnv computes Ant-v5's step itself (each quantity once): observation, reward,
    # termination and every info entry must be what gymnasium's Ant-v5 returns, to the bit.
    ours, ant = make(**kwargs), gym.make("Ant-v5", **kwargs)
    rng = np.random.default_rng(3)
    terminations = 0
    for seed in (0, 1, 2):
        assert np.array_equal(ours.reset(seed=seed)[0], ant.reset(seed=seed)[0])
        for _ in range(400):
            action = rng.uniform(-1, 1, size=8) * 3  # beyond the box too: Ant-v5 does not clip
            a, b = ours.step(action), ant.step(action)
            assert a[0].dtype == b[0].dtype and np.array_equal(a[0], b[0])
            assert type(a[1]) is type(b[1]) and a[1] == b[1]
            assert a[2] is b[2] or a[2] == b[2]
            assert a[3] == b[3]
            for key, value in b[4].items():
                assert np.array_equal(a[4][key], value), key
            if b[2] or b[3]:
                terminations += int(b[2])
                break
    assert terminations >= 1 or "healthy_z_range" not in kwargs  # the narrow z range makes Ant fall: termination is checked
    ours.close()
    ant.close()


def test_step_rejects_a_wrong_action_shape_as_ant_v5_does() -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="Action dimension mismatch"):
        env.step(np.zeros(7))
    env.close()


def test_pickle_round_trip_keeps_settings() -> None:
    env = AntLegFailureEnv(failed_legs=["back_right"], failure_step=7, ctrl_cost_weight=0.2)
    copy = pickle.loads(pickle.dumps(env))
    copy.reset(seed=0)
    assert copy.failed_legs == ("back_right",)
    assert copy.failure_step == 7
    assert copy._ctrl_cost_weight == 0.2
    env.close()
    copy.close()


# Ant-v5's own observation space is unbounded; the checker warns about that.
@pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning")
def test_check_env() -> None:
    env = make(failed_legs="random", failure_step=2)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"failed_legs": ["front_middle"]}, "failed_legs"),
        ({"failed_legs": "front_left"}, "failed_legs"),
        ({"failed_legs": 3}, "failed_legs"),
        ({"failed_legs": ["back_left", "back_left"]}, "failed_legs"),
        ({"failure_probs": {"none": 0.5, "front_left": 0.4}}, "failure_probs"),
        ({"failure_probs": {"none": 0.5, "middle": 0.5}}, "failure_probs"),
        ({"failure_probs": {"none": 1.5, "front_left": -0.5}}, "failure_probs"),
        ({"failure_probs": [0.4, 0.6]}, "failure_probs"),
        ({"failure_step": -1}, "failure_step"),
        ({"failure_step": 2.5}, "failure_step"),
        ({"failure_step": True}, "failure_step"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        AntLegFailureEnv(**kwargs)


def test_probs_within_tolerance_are_accepted() -> None:
    probs = {"none": 0.4 + 5e-7, **{leg: 0.15 for leg in LEG_NAMES}}
    env = AntLegFailureEnv(failed_legs="random", failure_probs=probs)
    env.reset(seed=0)
    env.close()


def test_bad_reset_options_raise_value_error() -> None:
    env = make(failed_legs=["front_left"])
    env.reset(seed=0)
    with pytest.raises(ValueError, match="failed_legs"):
        env.reset(options={"failed_legs": ["tail"]})
    with pytest.raises(ValueError, match="failure_step"):
        env.reset(options={"failure_step": -2})
    # The rejected options left the episode's settings untouched.
    assert env.unwrapped.failed_legs == ("front_left",)
    env.close()


# ----------------------------------------------------------------- partial failures, random steps, multi-leg outcomes
def test_partial_strength_scales_actuator_force_on_that_leg_only() -> None:
    weak, intact = make(leg_strength={"front_left": 0.3}), make()
    _, info = weak.reset(seed=4)
    intact.reset(seed=4)
    assert info["failed_legs"] == ("front_left",) and info["leg_strength"] == {"front_left": 0.3}
    assert info["failure_active"] is True and info["failure_step"] == 0
    fl = list(LEG_ACTUATORS["front_left"])
    others = [i for i in range(8) if i not in fl]
    rng = np.random.default_rng(3)
    for _ in range(4):
        action = rng.uniform(-1, 1, size=8)
        weak.step(action)
        intact.step(action)
        # Ant's motors have no activation dynamics: the force is the (scaled) control times the gain.
        f_weak, f_intact = weak.unwrapped.data.actuator_force, intact.unwrapped.data.actuator_force
        np.testing.assert_allclose(f_weak[fl], 0.3 * f_intact[fl], rtol=1e-12)
        np.testing.assert_array_equal(f_weak[others], f_intact[others])
        assert np.all(f_weak[fl] != 0.0)
    weak.close()
    intact.close()


def test_one_strength_for_every_failed_leg_and_strength_one_is_intact() -> None:
    env = make(failed_legs=["back_left", "back_right"], leg_strength=0.5, ctrl_cost_weight=1.0)
    _, info = env.reset(seed=0)
    assert info["leg_strength"] == {"back_left": 0.5, "back_right": 0.5}
    _, _, _, _, info = env.step(PUSH)
    scaled = PUSH.astype(np.float64)
    scaled[list(LEG_ACTUATORS["back_left"]) + list(LEG_ACTUATORS["back_right"])] *= 0.5
    assert info["reward_ctrl"] == pytest.approx(-np.sum(scaled**2), rel=1e-12)  # the control cost sees the scale
    np.testing.assert_allclose(env.unwrapped.data.ctrl, scaled)
    env.close()
    full, ant = make(failed_legs=["front_right"], leg_strength=1.0), gym.make("Ant-v5")
    assert np.array_equal(full.reset(seed=2)[0], ant.reset(seed=2)[0])
    assert np.array_equal(full.step(PUSH)[0], ant.step(PUSH)[0])
    full.close()
    ant.close()


def test_random_failure_step_varies_across_episodes_and_repeats_with_the_seed() -> None:
    env = make(failed_legs=["back_left"], failure_step="random", failure_step_range=(2, 9))
    steps = [env.reset(seed=11)[1]["failure_step"]] + [env.reset()[1]["failure_step"] for _ in range(39)]
    assert all(2 <= k < 9 for k in steps)
    assert len(set(steps)) >= 5  # 7 possible steps over 40 episodes
    again = [env.reset(seed=11)[1]["failure_step"]] + [env.reset()[1]["failure_step"] for _ in range(39)]
    assert again == steps
    other = [env.reset(seed=12)[1]["failure_step"]] + [env.reset()[1]["failure_step"] for _ in range(39)]
    assert other != steps
    # The drawn step is the one at which the leg goes limp.
    _, info = env.reset(seed=5)
    k = info["failure_step"]
    for t in range(k + 2):
        _, _, _, _, info = env.step(PUSH)
        assert info["failure_active"] is (t >= k), (t, k)
        assert bool(np.all(leg_forces(env, "back_left") == 0.0)) is (t >= k)
    env.close()


def test_random_step_draw_keeps_the_initial_state_of_ant() -> None:
    # The step is drawn after Ant's reset noise, so the episode starts where Ant-v5 starts.
    ours, ant = make(failed_legs="random", failure_step="random"), gym.make("Ant-v5")
    assert np.array_equal(ours.reset(seed=8)[0], ant.reset(seed=8)[0])
    ours.close()
    ant.close()


def test_default_random_step_range_is_the_middle_half_of_ant() -> None:
    env = make(failed_legs=["front_left"], failure_step="random")
    steps = [env.reset(seed=0)[1]["failure_step"]] + [env.reset()[1]["failure_step"] for _ in range(50)]
    assert all(250 <= k < 750 for k in steps) and len(set(steps)) > 40
    env.close()


def test_multi_leg_outcomes_in_the_random_distribution() -> None:
    probs = {"none": 0.3, "back_right+front_left": 0.4, "front_right": 0.3}
    env = make(failed_legs="random", failure_probs=probs, leg_strength={"front_left": 0.5})
    draws = [env.reset(seed=1)[1]] + [env.reset()[1] for _ in range(120)]
    seen = Counter(info["failed_legs"] for info in draws)
    assert set(seen) == {(), ("front_left", "back_right"), ("front_right",)}
    assert abs(seen[("front_left", "back_right")] / 121 - 0.4) < 4 * np.sqrt(0.24 / 121)
    pair = next(info for info in draws if len(info["failed_legs"]) == 2)
    assert pair["leg_strength"] == {"front_left": 0.5, "back_right": 0.0}  # legs left out of the mapping are limp
    # Single-leg outcomes keep the draw order they always had: a pair added with probability 0 changes nothing.
    a = make(failed_legs="random")
    b = make(failed_legs="random", failure_probs={**DEFAULT_FAILURE_PROBS, "front_left+front_right": 0.0})
    assert [a.reset(seed=s)[1]["failed_legs"] for s in range(30)] == [b.reset(seed=s)[1]["failed_legs"] for s in range(30)]
    for e in (env, a, b):
        e.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leg_strength": {"front_left": 1.5}}, r"leg_strength\['front_left'\] must be a number in \[0, 1\]"),
        ({"leg_strength": -0.1}, r"leg_strength must be a number in \[0, 1\]"),
        ({"leg_strength": {"tail": 0.5}}, r"leg_strength has unknown leg name\(s\) \['tail'\]; allowed names are"),
        ({"leg_strength": "weak"}, r"leg_strength must be a number in \[0, 1\] or a dict"),
        ({"failed_legs": ["back_left"], "leg_strength": {"front_left": 0.3}}, r"leg_strength names leg\(s\) \['front_left'\] that do not fail"),
        ({"failure_step": "sometimes"}, r"failure_step must be a non-negative integer .* or 'random'"),
        ({"failure_step_range": (5, 5)}, r"failure_step_range must be two integers \(low, high\) with 0 <= low < high"),
        ({"failure_step_range": (1, 2, 3)}, r"failure_step_range must be two integers"),
        ({"failure_probs": {"none": 0.5, "front_left+front_left": 0.5}}, r"allowed keys are 'none' or leg names from .* joined by '\+'"),
        ({"failure_probs": {"front_left+back_left": 0.5, "back_left+front_left": 0.5}}, r"names the outcome 'back_left\+front_left' twice"),
        ({"pre_failure_reward_weight": 1.5}, r"pre_failure_reward_weight must be a number from 0 to 1; got 1.5"),
        ({"pre_failure_reward_weight": "half"}, r"pre_failure_reward_weight must be a number from 0 to 1"),
    ],
)
def test_bad_failure_settings_get_one_sentence(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AntLegFailureEnv(**kwargs)


@pytest.mark.parametrize("weight", [0.0, 0.25])
def test_pre_failure_reward_weight_scales_motion_reward_before_the_failure_only(weight: float) -> None:
    k = 4
    plain = make(failed_legs=["back_left"], failure_step=k)
    weighted = make(failed_legs=["back_left"], failure_step=k, pre_failure_reward_weight=weight)
    intact = make(pre_failure_reward_weight=weight)
    reference = make()
    for env in (plain, weighted, intact, reference):
        env.reset(seed=7)
    rng = np.random.default_rng(0)
    for t in range(k + 4):
        action = rng.uniform(-1, 1, 8).astype(np.float32)
        obs, reward, _, _, info = plain.step(action)
        w_obs, w_reward, _, _, w_info = weighted.step(action)
        assert np.array_equal(obs, w_obs) and w_info["reward_forward"] == info["reward_forward"]  # the motion is Ant's
        survive = info["reward_survive"]
        if t < k:  # before the failure: the alive bonus stays, the rest is scaled
            assert w_reward == pytest.approx(survive + weight * (reward - survive), abs=1e-12)
            assert w_reward != pytest.approx(reward)
        else:
            assert w_reward == reward
        # An episode without a failure is Ant-v5's reward on every step.
        assert intact.step(action)[1] == reference.step(action)[1]
    for env in (plain, weighted, intact, reference):
        env.close()


def test_reset_options_override_strength_and_random_step() -> None:
    env = make(failed_legs=["front_left"])
    _, info = env.reset(seed=0, options={"leg_strength": 0.25, "failure_step": "random"})
    assert info["leg_strength"] == {"front_left": 0.25} and 250 <= info["failure_step"] < 750
    with pytest.raises(ValueError, match=r"options\[\"leg_strength\"\]\['front_left'\] must be a number in \[0, 1\]"):
        env.reset(options={"leg_strength": {"front_left": 2}})
    with pytest.raises(ValueError, match="that do not fail"):
        env.reset(options={"failed_legs": ["back_left"], "leg_strength": {"front_left": 0.5}})
    _, info = env.reset()
    assert info["leg_strength"] == {"front_left": 0.0} and info["failure_step"] == 0
    env.close()
