"""scripts/leg_curriculum.py: rounds of fine-tuning that draw the worst-survived legs more often."""

from __future__ import annotations

import json

import pytest

from plastic_rl.config import load_yaml
from plastic_rl.runs import CHECKPOINT_FILE, CONFIG_FILE


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("leg_curriculum")


def test_leg_weights_follow_the_velocity_each_leg_loses(script):
    probs = script.leg_weights({"front_left": 0.0, "front_right": 1.2, "back_left": 0.5, "back_right": None}, floor=0.1)
    # losses 1, 0 (kept above 1 counts as 1), 0.5 and 1 (no intact motion: a total loss), each + 0.1
    assert probs == pytest.approx({"front_left": 1.1 / 2.9, "front_right": 0.1 / 2.9, "back_left": 0.6 / 2.9, "back_right": 1.1 / 2.9}, abs=1e-6)
    assert list(probs) == ["front_left", "front_right", "back_left", "back_right"]
    # floor 0 leaves a leg the policy fully survives out of the draw; nothing lost at all draws the legs alike
    assert script.leg_weights({"front_left": 0.5, "front_right": 1.0, "back_left": 1.0, "back_right": 1.0}, floor=0.0)["front_right"] == 0.0
    assert set(script.leg_weights(dict.fromkeys(probs, 1.0), floor=0.0).values()) == {0.25}
    # an intact share keeps episodes with no failure in the draw; the legs keep their proportions in the rest
    with_intact = script.leg_weights({"front_left": 0.0, "front_right": 1.2, "back_left": 0.5, "back_right": None}, 0.1, 0.2)
    assert with_intact["none"] == 0.2 and sum(with_intact.values()) == pytest.approx(1.0)
    assert {leg: p / 0.8 for leg, p in with_intact.items() if leg != "none"} == pytest.approx(probs, abs=1e-5)


def test_rounds_train_with_the_measured_probabilities_and_resume(script, tiny_es_run, tmp_path, monkeypatch):
    start = tiny_es_run("start", env_kwargs={"failed_legs": [], "include_cfrc_ext_in_observation": False})
    out = tmp_path / "curriculum"
    args = [str(start), "--output", str(out), "--rounds", "2", "--generations-per-round", "1", "--eval-episodes", "1"]
    record = script.main(args)
    assert [r["round"] for r in record["rounds"]] == [0, 1]
    for k, entry in enumerate(record["rounds"]):
        assert sum(entry["failure_probs"].values()) == pytest.approx(1.0)
        config = load_yaml(out / f"round-{k}" / CONFIG_FILE)
        # each round draws its legs with the probabilities measured on the policy it starts from
        assert config["env_kwargs"]["failed_legs"] == "random"
        assert config["env_kwargs"]["failure_probs"] == pytest.approx(entry["failure_probs"])
        assert config["init_from"] == (str(start) if k == 0 else str(out / "round-0"))
        assert entry["measure"]["policy"] == config["init_from"]
        assert set(entry["measure"]["velocity"]) == {"intact", "front_left", "front_right", "back_left", "back_right"}
    assert record["final"]["policy"] == str(out / "round-1")
    assert record["env_steps"] == sum(r["env_steps"] for r in record["rounds"]) > 0
    assert json.loads((out / "curriculum.json").read_text())["final"] == record["final"]

    # Run again with one more round: the finished rounds and their measurements are reused.
    mtimes = [(out / f"round-{k}" / CHECKPOINT_FILE).stat().st_mtime for k in (0, 1)]
    measured = script.measure_legs
    calls = []
    monkeypatch.setattr(script, "measure_legs", lambda run_dir, *a: calls.append(str(run_dir)) or measured(run_dir, *a))
    again = script.main(args[:4] + ["3"] + args[5:])
    assert calls == [str(out / "round-1"), str(out / "round-2")]  # round 2's start, then the new final policy
    assert [(out / f"round-{k}" / CHECKPOINT_FILE).stat().st_mtime for k in (0, 1)] == mtimes
    assert again["rounds"][:2] == record["rounds"] and len(again["rounds"]) == 3


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "--rounds must be a positive integer"),
    (["--floor", "-1"], "--floor must be a number from 0 to 10"),
    (["--intact-share", "1"], "--intact-share must be a probability from 0 to below 1"),
    (["--stdev-init", "-0.1"], "stdev_init"),
])
def test_bad_settings_exit_2_and_write_nothing(script, tiny_es_run, tmp_path, capsys, argv, message):
    start = tiny_es_run("start")
    out = tmp_path / "curriculum"
    with pytest.raises(SystemExit) as exc:
        script.main([str(start), "--output", str(out), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_start_that_is_not_a_run_folder_is_refused(script, tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main([str(tmp_path), "--output", str(tmp_path / "out")])
    assert "the start run must be an ES run folder" in capsys.readouterr().err
