"""scripts/trace_freeze.py: does a plastic quadruped policy learn from a failure? (traces frozen at the failure step)"""

from __future__ import annotations

import json

import pytest
import torch

from plastic_rl.policies import MLPActorCritic


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("trace_freeze")


def test_frozen_traces_stop_changing_at_the_freeze_step_and_not_before(script):
    torch.manual_seed(0)
    policy = MLPActorCritic(5, 2, hidden_sizes=(6,), plastic=True, action_type="continuous")
    frozen = script.FrozenTraces(policy, freeze_step=3)
    obs = torch.randn(8, 2, 5)
    state_live, state_frozen, hebbs = None, None, []
    for t in range(8):
        action_live, state_live = policy.act(obs[t], state_live, deterministic=True)
        action_frozen, state_frozen = frozen.act(obs[t], state_frozen, deterministic=True)
        assert state_frozen.step == t + 1
        hebbs.append(state_frozen.inner[0].hebb.clone())
        if t < 3:  # before the freeze the two are the same network with the same traces
            assert torch.equal(action_live, action_frozen) and torch.equal(state_live[0].hebb, state_frozen.inner[0].hebb)
    # the update of step 3 and every later one is dropped: the traces stay those after step 2
    assert all(torch.equal(h, hebbs[2]) for h in hebbs[3:])
    assert not torch.equal(hebbs[1], hebbs[2]) and not torch.equal(state_live[0].hebb, hebbs[2])


def test_report_of_a_plastic_run(script, tmp_path, tiny_es_run):
    run_dir = tiny_es_run("plastic", plastic=True, episode_length=12, seed=3)
    out = tmp_path / "freeze.json"
    reports = script.main([str(run_dir), "--episodes", "2", "--failure-step", "5", "--legs", "front_left", "back_right",
                           "--output", str(out)])
    report = reports[str(run_dir)]
    assert list(report["conditions"]) == ["intact", "front_left@5", "back_right@5"]
    for entry in report["conditions"].values():
        assert set(entry) == {"plastic", "frozen", "alpha0", "learning_after_step"}
        assert all(len(entry[mode]["per_episode"]) == 2 for mode in script.MODES)
        assert entry["learning_after_step"] == pytest.approx(entry["plastic"]["velocity"] - entry["frozen"]["velocity"])
    written = json.loads(out.read_text())
    assert written["runs"] == json.loads(json.dumps(reports))
    assert written["pooled"]["failure"]["n"] == 2 and written["pooled"]["intact"]["n"] == 1
    assert written["pooled"]["intact"]["median"] == pytest.approx(report["conditions"]["intact"]["learning_after_step"])
    assert "front_left@5" in (tmp_path / "freeze.md").read_text()


def test_a_policy_without_traces_or_a_bad_step_exits_2(script, tmp_path, capsys, tiny_es_run):
    static = tiny_es_run("static", plastic=False, episode_length=12, seed=3)
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(static), "--episodes", "1"])
    assert exit_info.value.code == 2 and "holds no plastic policy" in capsys.readouterr().err
    plastic = tiny_es_run("plastic", plastic=True, episode_length=12, seed=3)
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(plastic), "--episodes", "1", "--failure-step", "12", "--output", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2 and "--failure-step must be from 1 to 11" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
