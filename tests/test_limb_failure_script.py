"""scripts/limb_failure.py: three policies, the same ES budget, the adaptation report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plastic_rl.runs import CHECKPOINT_FILE


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("limb_failure")


def test_quartiles_and_single_leg_conditions(script):
    q = script.quartiles([1.0, None, 3.0, float("nan"), 2.0])
    assert q == {"median": 2.0, "q25": 1.5, "q75": 2.5, "n": 3}
    assert script.quartiles([None])["n"] == 0
    names = ["intact", "front_left", "back_left@random", "front_left+back_right", "back_left:0.5", "front_right@250"]
    assert script.single_leg_conditions(names) == ["front_left", "back_left@random", "front_right@250"]


def test_limb_failure_script_writes_its_report(script, tmp_path, monkeypatch):
    out = tmp_path / "limb"
    args = ["--generations", "1", "--popsize", "4", "--episode-length", "20", "--seeds", "0", "--hidden-sizes", "8",
            "--episodes", "1", "--output", str(out)]
    result = script.main(args)
    budget = result["budget"]
    assert set(budget) == {"static-seed0", "plastic-seed0", "rules-seed0"}
    # The static twin is widened to the plastic policy's parameter count; all three had the same ES budget.
    assert abs(budget["static-seed0"]["parameters"] - budget["plastic-seed0"]["parameters"]) < 0.05 * budget["plastic-seed0"]["parameters"]
    assert all(0 < b["env_steps"] <= 4 * 20 for b in budget.values())  # one generation of 4 episodes of <= 20 steps
    legs = ("front_left", "front_right", "back_left", "back_right")
    conditions = set(result["table"]["rules"])
    assert {"intact", *legs, *(f"{leg}@random" for leg in legs), *(f"{leg}:0.5" for leg in legs)} <= conditions
    assert len([c for c in conditions if "+" in c]) == 6
    for variant in ("static", "plastic", "rules"):
        assert set(result["goal"][variant]) >= {"mean_single_leg_velocity_kept", "worst_single_leg_velocity_kept"}
    for name in ("table.md", "results.csv", "summary.json", "training.png"):
        assert (out / name).is_file()
    evaluation = json.loads((out / "rules-seed0" / "evaluation.json").read_text())
    assert "velocity_retention" in evaluation["conditions"]["back_left@random"]
    summary = json.loads((out / "summary.json").read_text())
    assert np.isfinite(summary["table"]["plastic"]["intact"]["forward_velocity"]["median"])
    # Running it again resumes the finished runs instead of training them anew.
    mtime = (out / "plastic-seed0" / CHECKPOINT_FILE).stat().st_mtime
    evaluate_run = script.evaluate_run

    def must_not_evaluate(*args, **kwargs):
        raise AssertionError("a finished run with the same evaluation settings was evaluated again")

    monkeypatch.setattr(script, "evaluate_run", must_not_evaluate)  # its evaluation.json is reused
    again = script.main(args + ["--variants", "plastic", "--min-walking-velocity", "1000"])
    assert (out / "plastic-seed0" / CHECKPOINT_FILE).stat().st_mtime == mtime
    # A policy slower than --min-walking-velocity intact does not walk: its "kept" ratios are left out.
    assert again["walking"] == {"plastic-seed0": False}
    assert again["table"]["plastic"]["front_left"]["velocity_kept"]["n"] == 0
    assert again["goal"]["plastic"]["per_seed_mean"] == [None]
    assert np.isfinite(again["table"]["plastic"]["front_left"]["forward_velocity"]["median"])
    assert "plastic 0/1" in (out / "table.md").read_text()
    # Other evaluation settings (here the conditions) evaluate again.
    calls = []
    monkeypatch.setattr(script, "evaluate_run", lambda *a, **k: calls.append(k["failures"]) or evaluate_run(*a, **k))
    fewer = script.main(args + ["--variants", "plastic", "--failures", "none,front_left"])
    assert calls == ["none,front_left"] and set(fewer["table"]["plastic"]) == {"intact", "front_left"}


def test_alpha_scale_reaches_the_plastic_variant_only(script):
    from argparse import Namespace

    args = Namespace(algorithm="pgpe", popsize=4, generations=1, episode_length=20, hidden_sizes=[8], num_actors=0,
                     no_contact_forces=True, center_learning_rate=0.1, decrease_rewards_by=1.0, stdev_init=0.02,
                     rules_stdev_init=0.1, alpha_scale=0.1, variants=["static", "plastic", "rules"], training_failure_step="0", pre_failure_reward_weight=1.0,
                     training_failure_probs=None, plastic_rule="hebbian", plastic_modulation="simple")
    configs = script.variant_configs(args, seed=0)
    assert configs["plastic"].alpha_scale == 0.1
    assert configs["static"].alpha_scale == 1.0 and configs["rules"].alpha_scale == 1.0
    assert configs["plastic"].env_kwargs["include_cfrc_ext_in_observation"] is False
    assert "failure_step" not in configs["static"].env_kwargs  # by default the drawn leg fails from the start


def test_training_failure_step_random_makes_legs_fail_mid_episode(script):
    import gymnasium as gym

    from argparse import Namespace

    args = Namespace(algorithm="pgpe", popsize=4, generations=1, episode_length=40, hidden_sizes=[8], num_actors=0,
                     no_contact_forces=True, center_learning_rate=0.1, decrease_rewards_by=1.0, stdev_init=0.02,
                     rules_stdev_init=0.1, alpha_scale=1.0, variants=["static", "plastic", "rules"],
                     training_failure_step="random", pre_failure_reward_weight=1.0,
                     training_failure_probs=None, plastic_rule="hebbian", plastic_modulation="simple")
    configs = script.variant_configs(args, seed=0)
    kwargs = configs["plastic"].env_kwargs
    assert kwargs["failure_step"] == "random" and tuple(kwargs["failure_step_range"]) == (10, 30)  # the middle half
    assert all(c.env_kwargs == kwargs for c in configs.values())
    env = gym.make(configs["static"].env_id, **kwargs)
    steps = set()
    for episode in range(30):
        _, info = env.reset(seed=episode)
        if info.get("failed_legs"):
            steps.add(info["failure_step"])
    env.close()
    assert steps and all(10 <= k < 30 for k in steps) and len(steps) > 1  # drawn per episode inside the range


def test_plastic_rule_and_modulation_reach_the_plastic_variant_only(script, monkeypatch, tmp_path):
    seen = {}
    variant_configs = script.variant_configs

    def record(args, seed):
        configs = variant_configs(args, seed)
        seen.update({f"{name}-seed{seed}": config for name, config in configs.items()})
        return configs

    def stop_before_training(config, run_dir):  # the parsed configs are what this test checks
        raise KeyboardInterrupt

    monkeypatch.setattr(script, "variant_configs", record)
    monkeypatch.setattr(script, "train_or_resume", stop_before_training)
    with pytest.raises(KeyboardInterrupt):
        script.main(["--plastic-rule", "oja", "--plastic-modulation", "retroactive", "--episode-length", "40", "--seeds", "0",
                     "--hidden-sizes", "8", "--output", str(tmp_path / "out")])
    assert (seen["plastic-seed0"].rule, seen["plastic-seed0"].modulation) == ("oja", "retroactive")
    # The static twin has no plasticity, and the rules-only MLP keeps its own rule.
    assert seen["static-seed0"].plastic is False
    assert (seen["rules-seed0"].rule, seen["rules-seed0"].modulation) == ("abcd", "none")
    # The static twin is widened to the parameter count of the plastic MLP it is compared with (retroactive adds η).
    from plastic_rl.agents.es_policy import build_policy, env_spaces

    sizes = env_spaces(seen["plastic-seed0"].env_id, seen["plastic-seed0"].env_kwargs)
    plastic_count = sum(p.numel() for p in build_policy(seen["plastic-seed0"], *sizes).parameters())
    static_count = sum(p.numel() for p in build_policy(seen["static-seed0"], *sizes).parameters())
    assert abs(static_count - plastic_count) < 0.1 * plastic_count


def test_pre_failure_weight_and_training_failure_probs_reach_the_training_env(script, monkeypatch, tmp_path):
    seen = {}

    def stop_before_training(config, run_dir):  # the parsed settings are what this test checks
        seen["env_kwargs"] = config.env_kwargs
        raise KeyboardInterrupt

    monkeypatch.setattr(script, "train_or_resume", stop_before_training)
    probs = "{front_left: 0.25, front_right: 0.25, back_left: 0.25, back_right: 0.25}"
    with pytest.raises(KeyboardInterrupt):
        script.main(["--training-failure-step", "random", "--pre-failure-reward-weight", "0.25", "--training-failure-probs",
                     probs, "--episode-length", "40", "--seeds", "0", "--variants", "static", "--output", str(tmp_path / "out")])
    kwargs = seen["env_kwargs"]
    assert kwargs["pre_failure_reward_weight"] == 0.25 and kwargs["failure_step"] == "random"
    assert kwargs["failure_probs"] == {leg: 0.25 for leg in ("front_left", "front_right", "back_left", "back_right")}


@pytest.mark.parametrize(("argv", "message"), [
    (["--pre-failure-reward-weight", "0.5"], "--pre-failure-reward-weight applies only with --training-failure-step random"),
    (["--training-failure-step", "random", "--pre-failure-reward-weight", "2"], "pre_failure_reward_weight must be a number from 0 to 1"),
    (["--training-failure-probs", "[0.5, 0.5]"], "--training-failure-probs must be a mapping of outcomes"),
    (["--training-failure-probs", "{front_left: 0.5, tail: 0.5}"], "failure_probs"),
    (["--init-from", "walker", "0", "."], "--init-from takes VARIANT SEED RUN"),
    (["--init-from", "static", "0", "no/such/run"], "--init-from must name ES run folders"),
])
def test_bad_training_failure_settings_exit_2_and_write_nothing(script, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script.main([*argv, "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_init_from_fine_tunes_a_given_run_with_its_network(script, tmp_path):
    from plastic_rl.agents import es
    from plastic_rl.config import load_yaml

    source = tmp_path / "walker"
    # A 6-unit static walker without contact forces: not the study's widened twin, so its fields must be taken over.
    es.train(es.Config(plastic=False, hidden_sizes=(6,), episode_length=20, popsize=4, generations=1, center_eval_episodes=0,
                       env_kwargs={"failed_legs": [], "include_cfrc_ext_in_observation": False}), source)
    out = tmp_path / "limb"
    result = script.main(["--generations", "1", "--popsize", "4", "--episode-length", "20", "--seeds", "0", "--hidden-sizes", "8",
                          "--episodes", "1", "--variants", "static", "--failures", "none,front_left",
                          "--init-from", "static", "0", str(source), "--output", str(out)])
    saved = load_yaml(out / "static-seed0" / "config.yaml")
    assert saved["init_from"] == str(source) and saved["hidden_sizes"] == [6] and saved["width"] is None
    assert saved["env_kwargs"]["include_cfrc_ext_in_observation"] is False and saved["env_kwargs"]["failed_legs"] == "random"
    assert result["budget"]["static-seed0"]["parameters"] == 27 * 6 + 6 + 6 * 8 + 8
    assert result["args"]["init_from"] == {"static-seed0": str(source)}
    assert f"static-seed0 from {source}" in (out / "table.md").read_text()
