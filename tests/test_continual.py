"""Continual RL: the metrics, a tiny continual run's files, resume after a kill, regularizers, errors."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from plastic_rl.agents.continual import Config, train
from plastic_rl.agents.continual_cli import add_continual_parser, resolve_config
from plastic_rl.agents.continual_metrics import continual_metrics
from plastic_rl.agents.regularizers import consolidation_penalty, fisher_diagonal, l2_consolidation
from plastic_rl.config import ConfigError
from plastic_rl.runs import load_checkpoint, read_metrics

TWO_MAZES = """\
tasks:
  - {name: pillars, env_id: plastic_rl/Maze-v0, kwargs: {size: 7, episode_length: 20}}
  - {name: open, env_id: plastic_rl/Maze-v0, kwargs: {size: 7, episode_length: 20, layout: open}}
  - {name: rooms, env_id: plastic_rl/Maze-v0, kwargs: {size: 7, episode_length: 20,
     layout: ["#######", "#..#..#", "#.....#", "##...##", "#.....#", "#..#..#", "#######"]}}
"""
# 4 episodes x 20 steps per iteration, 3 iterations per task.
TINY = dict(steps_per_task=240, eval_episodes=8, learning_rate=1e-2, method_config={"hidden_size": 8, "batch_size": 4},
            progress=False, tensorboard=False, checkpoint_every=1, fisher_episodes=4)


@pytest.fixture()
def mazes(tmp_path) -> str:
    path = tmp_path / "mazes.yaml"
    path.write_text(TWO_MAZES)
    return str(path)


def test_metrics_match_continual_world_definitions():
    matrix = [[8.0, 1.0, 2.0], [5.0, 9.0, 2.0], [4.0, 6.0, 7.0]]
    initial = [0.0, 1.0, 2.0]
    m = continual_metrics(matrix, initial, stage_auc=[4.0, 5.0, 4.5], reference_auc=[4.0, 3.0, 4.5], reference_final=[8.0, 9.0, 7.0])
    assert m["average_performance"] == pytest.approx((4 + 6 + 7) / 3)
    assert m["forgetting"] == [4.0, 3.0, 0.0]
    assert m["mean_forgetting"] == pytest.approx(3.5)  # over the first N - 1 tasks
    assert m["learning"] == [8.0, 8.0, 5.0] and m["mean_learning"] == pytest.approx(7.0)  # own stage − untrained, all N
    # Normalized p = (R - initial) / (ref - initial); FT = (AUC - AUC_ref) / (1 - AUC_ref).
    p_auc, p_ref = (5 - 1) / 8, (3 - 1) / 8
    assert m["forward_transfer"][1] == pytest.approx((p_auc - p_ref) / (1 - p_ref))
    assert m["forward_transfer"][0] == pytest.approx(0.0) and m["forward_transfer_raw"][1] == pytest.approx(2.0)
    assert m["forgetting_normalized"][0] == pytest.approx(4 / 8)
    assert m["mean_forward_transfer_raw"] == pytest.approx((2.0 + 0.0) / 2)  # tasks 1..N-1
    no_learning = continual_metrics(matrix, initial, [4.0, 5.0, 4.5], [4.0, 3.0, 4.5], [0.0, 9.0, 7.0])
    assert no_learning["forward_transfer"][0] is None  # the reference never beat the untrained policy: no scale
    above_final = continual_metrics(matrix, initial, [4.0, 5.0, 4.5], [4.0, 9.5, 4.5], [8.0, 9.0, 7.0])
    assert above_final["forward_transfer"][1] is None  # its training curve averaged above its final level


def test_tiny_continual_run_writes_matrix_heatmap_and_summary(tmp_path, mazes):
    summary = train(Config(sequence=mazes, binary=True, optimizer="metaplastic", meta=2.0, **TINY), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("matrix.csv", "matrix.png", "summary.json", "metrics.csv", "config.yaml", "checkpoint.pt", "run.json"):
        assert (run / name).is_file(), name
    lines = (run / "matrix.csv").read_text().splitlines()
    assert lines[0] == "after_stage,pillars,open,rooms" and lines[1].startswith("before training,") and len(lines) == 5
    assert (run / "matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((run / "summary.json").read_text())
    assert saved["matrix"] == summary["matrix"] and len(saved["matrix"]) == 3 and all(len(r) == 3 for r in saved["matrix"])
    assert saved["forgetting"] == [saved["matrix"][j][j] - saved["matrix"][-1][j] for j in range(3)]
    assert saved["forward_transfer_raw"][0] == 0.0  # task 0's reference is stage 0 itself
    rows = read_metrics(run / "metrics.csv")
    # 3 stages and 2 references (tasks 1 and 2) of 3 iterations each.
    assert [r["phase"] for r in rows] == ["sequence"] * 9 + ["reference"] * 6
    assert summary["env_steps"] == 15 * 80


def test_reference_plays_the_same_episodes_as_its_stage(tmp_path, mazes):
    """The sequence's first stage and a from-scratch run of task 0 are the same run (same weights, episodes, RNG)."""
    one = tmp_path / "one.yaml"
    one.write_text("tasks:\n  - {name: pillars, env_id: plastic_rl/Maze-v0, kwargs: {size: 7, episode_length: 20}}\n")
    full = train(Config(sequence=mazes, reference=False, **TINY), tmp_path / "full")
    alone = train(Config(sequence=str(one), reference=False, **TINY), tmp_path / "alone")
    assert alone["matrix"][0][0] == full["matrix"][0][0] and alone["stage_auc"][0] == full["stage_auc"][0]


def test_resume_with_reference_adds_the_references_of_a_one_go_run(tmp_path, mazes):
    """The references depend only on the config and seed: added on a resume, they give the same figures."""
    without = train(Config(sequence=mazes, reference=False, **TINY), tmp_path / "later")
    assert without["forward_transfer"] is None
    later = train(Config(sequence=mazes, reference=True, **TINY), tmp_path / "later", resume=True)
    at_once = train(Config(sequence=mazes, reference=True, **TINY), tmp_path / "at_once")
    assert later["matrix"] == at_once["matrix"] == without["matrix"]
    assert later["reference_final"] == at_once["reference_final"] and later["reference_auc"] == at_once["reference_auc"]
    assert later["forward_transfer_raw"] == at_once["forward_transfer_raw"] and later["env_steps"] == at_once["env_steps"]
    record = json.loads((tmp_path / "later" / "run.json").read_text())
    assert record["resumes"][-1]["changed"] == {"reference": [False, True]}


def _write_cli_config(path: Path, mazes: str, steps: int) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"trainer": "continual", "sequence": mazes, "regularizer": "ewc", **TINY, "steps_per_task": steps}))
    return path


@pytest.mark.slow
def test_resume_after_kill_gives_the_unbroken_run(tmp_path, mazes):
    steps = 240 * 4  # 12 iterations per task: long enough to kill mid-sequence
    config = _write_cli_config(tmp_path / "c.yaml", mazes, steps)
    killed = tmp_path / "killed"
    code = ("import sys; from plastic_rl.agents.continual_cli import cmd_continual, resolve_config; "
            "import argparse; from plastic_rl.agents.continual_cli import add_continual_parser; "
            "p = argparse.ArgumentParser(); s = p.add_subparsers(); add_continual_parser(s); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")
    proc = subprocess.Popen([sys.executable, "-c", code, "continual", "--config", str(config), "--run-dir", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "checkpoint.pt").is_file() and (killed / "metrics.csv").is_file() and len(read_metrics(killed / "metrics.csv")) >= 15:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = int(load_checkpoint(killed / "checkpoint.pt")["step"])
    assert 12 < stopped_at < 5 * 12, stopped_at  # past stage 0: the EWC consolidation must survive the kill

    parser = argparse.ArgumentParser()
    add_continual_parser(parser.add_subparsers())
    args = parser.parse_args(["continual", "--resume", str(killed)])
    assert args.func(args) == 0
    args = parser.parse_args(["continual", "--config", str(config), "--run-dir", str(tmp_path / "unbroken")])
    assert args.func(args) == 0
    resumed, unbroken = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("killed", "unbroken"))
    assert resumed["matrix"] == unbroken["matrix"] and resumed["initial"] == unbroken["initial"]
    assert resumed["forward_transfer_raw"] == unbroken["forward_transfer_raw"]
    assert (killed / "matrix.csv").read_text() == (tmp_path / "unbroken" / "matrix.csv").read_text()
    rows_a, rows_b = read_metrics(killed / "metrics.csv"), read_metrics(tmp_path / "unbroken" / "metrics.csv")
    assert [r["iteration"] for r in rows_a] == [r["iteration"] for r in rows_b]
    assert all(a["train_return"] == b["train_return"] and a["loss"] == b["loss"] for a, b in zip(rows_a, rows_b))


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_fisher():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x = torch.randn(5, 3)
    log_likelihoods = torch.log_softmax(model(x), dim=1)[:, 0]
    consolidation = fisher_diagonal(model, log_likelihoods, episode_length=1)
    assert all((f >= 0).all() for f in consolidation.importance.values())
    assert float(consolidation_penalty(model, [consolidation], 10.0)) == 0.0
    with torch.no_grad():
        model.weight.add_(0.5)
    expected = 0.5 * 10.0 * float((consolidation.importance["weight"] * 0.25).sum())
    assert float(consolidation_penalty(model, [consolidation], 10.0)) == pytest.approx(expected)
    l2 = l2_consolidation(model)
    with torch.no_grad():
        model.bias.add_(1.0)
    assert float(consolidation_penalty(model, [l2], 2.0)) == pytest.approx(2.0)  # (2/2) * 2 biases * 1²


def test_cli_flags_and_resume_rules(tmp_path, mazes):
    parser = argparse.ArgumentParser()
    add_continual_parser(parser.add_subparsers())
    args = parser.parse_args(["continual", "--sequence", mazes, "--optimizer", "metaplastic", "--meta", "1.5",
                              "--regularizer", "ewc", "--steps-per-task", "500", "--seed", "3", "--no-plastic", "--binary",
                              "--run-dir", str(tmp_path / "r")])
    config, run_dir, resume = resolve_config(args)
    assert (config.optimizer, config.meta, config.regularizer, config.steps_per_task, config.seed) == ("metaplastic", 1.5, "ewc", 500, 3)
    assert config.plastic is False and config.binary is True and not resume
    train(Config(sequence=mazes, **TINY), tmp_path / "done")
    args = parser.parse_args(["continual", "--resume", str(tmp_path / "done"), "--meta", "3"])
    with pytest.raises(ConfigError, match="--meta cannot change when resuming"):
        resolve_config(args)
    # Keeping the stage snapshots may start on a resume (it changes no result).
    config, _, resume = resolve_config(parser.parse_args(["continual", "--resume", str(tmp_path / "done"), "--keep-stages"]))
    assert config.keep_stages is True and resume


@pytest.mark.parametrize("kwargs, message", [
    ({"sequence": "ant-legs"}, "method 'a2c' trains maze tasks"),
    ({"sequence": "no-such-sequence"}, "sequence must be one of"),
    ({"method": "sgd"}, "method must be one of"),
    ({"method_config": {"plastic": False}}, "method_config must not set 'plastic'"),
    ({"method_config": {"hidden_sise": 8}}, "unknown field 'hidden_sise'"),
    ({"method": "es", "sequence": "ant-legs", "regularizer": "ewc"}, "method 'es' has no gradient loss"),
    ({"meta_groups": {"action_head.weight": 5}}, "meta_groups applies to optimizer metaplastic"),
    ({"optimizer": "metaplastic", "meta_groups": {"head.weight": 5}}, "pattern 'head.weight' matches no parameter"),
])
def test_bad_config_is_one_sentence_and_writes_nothing(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        train(Config(**{**TINY, **kwargs}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_meta_groups_reach_the_a2c_and_ppo_optimizers(tmp_path, mazes):
    from plastic_rl.agents.continual_methods import A2CLearner, PPOLearner
    from plastic_rl.envs.sequences import get_sequence

    parser = argparse.ArgumentParser()
    add_continual_parser(parser.add_subparsers())
    args = parser.parse_args(["continual", "--sequence", mazes, "--optimizer", "metaplastic", "--meta", "2",
                              "--meta-groups", "{action_head.weight: 30}", "--run-dir", str(tmp_path / "r")])
    config = resolve_config(args)[0]
    assert config.meta_groups == {"action_head.weight": 30}
    learner = A2CLearner(Config(**{**TINY, "sequence": mazes, "optimizer": "metaplastic", "meta": 2.0,
                                   "meta_groups": config.meta_groups}), get_sequence(mazes), "none")
    groups = learner.optimizer.param_groups
    assert [g["meta"] for g in groups] == [30.0, 2.0] and groups[0]["params"] == [learner.policy.action_head.weight]
    ppo = {"n_envs": 2, "n_steps": 16, "batch_size": 32, "policy_kwargs": {"hidden_size": 8}}
    config = Config(**{**TINY, "sequence": mazes, "method": "ppo", "optimizer": "metaplastic", "meta": 2.0,
                       "meta_groups": {"core.action_head.*": 30, "critic.*": 0}, "method_config": ppo})
    learner = PPOLearner(config, get_sequence(mazes), "none")
    groups = learner.model.policy.optimizer.param_groups  # the optimizer SB3's train() steps
    assert [g["meta"] for g in groups] == [30.0, 0.0, 2.0]
    assert groups[0]["params"] == [learner.policy.core.action_head.weight, learner.policy.core.action_head.bias]
    assert sum(len(g["params"]) for g in groups) == len(list(learner.policy.parameters()))
    with pytest.raises(SystemExit):
        parser.parse_args(["continual", "--meta-groups", "[1, 2]"])


@pytest.mark.slow
def test_ppo_continual_run_with_l2_and_metaplastic_binary_policy(tmp_path, mazes):
    ppo = {"n_envs": 4, "n_steps": 64, "batch_size": 64, "sequence_length": 16, "policy_kwargs": {"hidden_size": 8}}
    config = Config(sequence=mazes, method="ppo", regularizer="l2", optimizer="metaplastic", meta=1.0, binary=True,
                    **{**TINY, "steps_per_task": 256, "method_config": ppo})
    summary = train(config, tmp_path / "run")
    assert len(summary["matrix"]) == 3 and summary["iterations_per_task"] == [1, 1, 1]
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint["progress"]["phase"] == 5  # 3 stages + 2 references done
    with pytest.raises(ConfigError, match="regularizer 'ewc' is offered by method a2c"):
        train(Config(sequence=mazes, method="ppo", regularizer="ewc", **{**TINY, "method_config": ppo}), tmp_path / "ewc")


def test_plastic_rl_continual_and_train_commands(tmp_path, mazes, capsys):
    from plastic_rl.agents.cli import main

    assert main(["continual", "--sequence", "no-such-sequence", "--run-dir", str(tmp_path / "bad")]) == 2
    assert "sequence must be one of" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    config = _write_cli_config(tmp_path / "c.yaml", mazes, 80)  # one iteration per task
    assert main(["continual", "--config", str(config), "--no-reference", "--run-dir", str(tmp_path / "a")]) == 0
    assert "average performance" in capsys.readouterr().out
    assert main(["train", "--config", str(config), "--run-dir", str(tmp_path / "b")]) == 0  # trainer: continual
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("a", "b"))
    assert a["matrix"] == b["matrix"][: len(a["matrix"])] and len(b["reference_final"]) == 3


@pytest.mark.slow
def test_es_continual_run_resumes_to_the_unbroken_result(tmp_path, monkeypatch):
    """ES over two leg failures: the search state carries across the boundary and through a resume."""
    from plastic_rl.agents import continual_methods

    path = tmp_path / "ants.yaml"
    path.write_text("tasks:\n"
                    "  - {name: fl, env_id: plastic_rl/AntLegFailure-v0, kwargs: {failed_legs: [front_left]}}\n"
                    "  - {name: br, env_id: plastic_rl/AntLegFailure-v0, kwargs: {failed_legs: [back_right]}}\n")
    config = Config(sequence=str(path), method="es", steps_per_task=80, eval_episodes=2, reference=False,
                    env_kwargs={"include_cfrc_ext_in_observation": False}, progress=False, tensorboard=False, checkpoint_every=1,
                    method_config={"popsize": 4, "episode_length": 10, "hidden_sizes": [8], "center_eval_episodes": 0})
    unbroken = train(config, tmp_path / "unbroken")
    assert unbroken["iterations_per_task"] == [2, 2] and len(unbroken["matrix"]) == 2

    original = continual_methods.ESLearner.train_iteration
    calls = {"n": 0}

    def dies_on_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first generation of task 1
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(continual_methods.ESLearner, "train_iteration", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "killed")
    monkeypatch.setattr(continual_methods.ESLearner, "train_iteration", original)
    resumed = train(config, tmp_path / "killed", resume=True)
    assert resumed["matrix"] == unbroken["matrix"] and resumed["stage_auc"] == unbroken["stage_auc"]


TWO_PENDULUMS = """\
tasks:
  - {name: g10, env_id: Pendulum-v1, kwargs: {g: 10.0}}
  - {name: g5, env_id: Pendulum-v1, kwargs: {g: 5.0}}
"""


def test_ppo_learner_shares_vecnormalize_statistics_across_tasks_and_checkpoints_them(tmp_path):
    from plastic_rl.agents.continual_methods import PPOLearner
    from plastic_rl.envs.sequences import get_sequence

    path = tmp_path / "pendulums.yaml"
    path.write_text(TWO_PENDULUMS)
    sequence = get_sequence(str(path))
    ppo = {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "episode_length": 50, "normalize_obs": True,
           "normalize_reward": True, "policy_kwargs": {"hidden_sizes": [8]}}
    config = Config(sequence=str(path), method="ppo", **{**TINY, "method_config": ppo})
    learner = PPOLearner(config, sequence, "none")
    first, second = learner._env(0), learner._env(1)
    assert first.obs_rms is second.obs_rms and first.ret_rms is second.ret_rms  # one set of statistics for all tasks
    count = first.obs_rms.count
    learner.train_iteration(0, 0, lambda **_: None)
    learner.train_iteration(1, 0, lambda **_: None)
    # Both tasks' rollouts (2 x 64 steps) and first resets (2 x 2 envs) updated the shared statistics.
    assert first.obs_rms.count == pytest.approx(count + 2 * 64 + 2 * 2)
    mean = first.obs_rms.mean.copy()
    score = learner.evaluate(1, 2, seed=7)
    assert first.obs_rms.count == pytest.approx(count + 2 * 64 + 2 * 2) and (first.obs_rms.mean == mean).all()  # frozen
    state = learner.state_dict()
    learner.finish()
    torch.manual_seed(123)  # other initial weights: the checkpoint must put everything back
    restored = PPOLearner(config, sequence, "none")
    restored.load_state_dict(state)
    assert restored._env(1).obs_rms.count == pytest.approx(first.obs_rms.count)
    assert (restored._env(0).obs_rms.mean == mean).all()
    assert restored.evaluate(1, 2, seed=7) == pytest.approx(score)  # the same normalized observations, the same actions
    restored.finish()


def test_ppo_normalization_stops_updating_after_normalize_update_steps(tmp_path):
    from plastic_rl.agents.continual_methods import PPOLearner
    from plastic_rl.envs.sequences import get_sequence

    path = tmp_path / "pendulums.yaml"
    path.write_text(TWO_PENDULUMS)
    sequence = get_sequence(str(path))
    ppo = {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "episode_length": 50, "normalize_obs": True,
           "normalize_update_steps": 64, "policy_kwargs": {"hidden_sizes": [8]}}
    learner = PPOLearner(Config(sequence=str(path), method="ppo", **{**TINY, "method_config": ppo}), sequence, "none")
    stats = learner._env(0).obs_rms
    count = stats.count
    learner.train_iteration(0, 0, lambda **_: None)  # steps 0-63: updates the statistics
    updated = stats.count
    assert updated == pytest.approx(count + 64 + 2)
    mean = stats.mean.copy()
    learner.train_iteration(0, 1, lambda **_: None)  # from step 64 on they stay as they are, on every task
    learner.train_iteration(1, 0, lambda **_: None)
    assert stats.count == updated and (stats.mean == mean).all()
    learner.finish()
    for bad, message in ((-1, "normalize_update_steps must be a whole number"), (1.5, "normalize_update_steps must be a whole number")):
        with pytest.raises(ConfigError, match=message):
            PPOLearner(Config(sequence=str(path), method="ppo", **{**TINY, "method_config": {**ppo, "normalize_update_steps": bad}}),
                       sequence, "none")
    plain = {k: v for k, v in ppo.items() if k != "normalize_obs"}
    with pytest.raises(ConfigError, match="needs normalize_obs: true or normalize_reward: true"):
        PPOLearner(Config(sequence=str(path), method="ppo", **{**TINY, "method_config": plain}), sequence, "none")


CONTINUAL_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("continual_*.yaml"))


@pytest.mark.parametrize("path", CONTINUAL_CONFIGS, ids=lambda p: p.name)
def test_committed_continual_configs_build_their_learner(path):
    """Every configs/continual_*.yaml that README's commands name is accepted by its method, as a binary metaplastic run."""
    from plastic_rl.agents.continual_methods import A2CLearner, PPOLearner
    from plastic_rl.config import load_yaml
    from plastic_rl.envs.sequences import get_sequence

    assert path.stem.startswith(("continual_ant_ppo", "continual_maze_a2c")), f"{path.name}: which method is it for?"
    method, sequence = ("ppo", "ant-legs") if path.stem.startswith("continual_ant_ppo") else ("a2c", "maze-layouts")
    method_config = load_yaml(str(path))
    config = Config(sequence=sequence, method=method, optimizer="metaplastic", meta=3.0, binary=True,
                    env_kwargs={"include_cfrc_ext_in_observation": False} if method == "ppo" else {},
                    **{**TINY, "method_config": method_config})
    learner = (PPOLearner if method == "ppo" else A2CLearner)(config, get_sequence(sequence), "none")
    try:
        hidden = method_config.get("policy_kwargs", {}).get("hidden_sizes")
        if hidden:  # the policy is the one the file describes
            widths = [p.shape[0] for n, p in learner.policy.named_parameters() if n.startswith("core.layers.") and n.endswith(".weight")
                      and "plasticity" not in n]
            assert widths[:len(hidden)] == hidden
    finally:
        learner.finish()


def test_regularizer_params_limit_the_l2_pull_to_the_named_tensors(tmp_path):
    from plastic_rl.agents.continual_methods import PPOLearner
    from plastic_rl.envs.sequences import get_sequence

    path = tmp_path / "pendulums.yaml"
    path.write_text(TWO_PENDULUMS)
    ppo = {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "episode_length": 50, "policy_kwargs": {"hidden_sizes": [8]}}
    config = Config(sequence=str(path), method="ppo", regularizer="l2", regularizer_params=["core.layers.*.bias"],
                    **{**TINY, "method_config": ppo})
    learner = PPOLearner(config, get_sequence(str(path)), "l2")
    learner.train_iteration(0, 1, lambda **_: None)
    learner.end_task(0, seed=1)
    (consolidation,) = learner.consolidations
    pulled = sorted(n for n, f in consolidation.importance.items() if f.abs().sum() > 0)
    # (shell-style: "*" matches dots too, so the plastic layers' modulator biases are named as well)
    assert pulled == ["core.layers.0.bias", "core.layers.0.plasticity.modulator.bias", "core.layers.1.bias",
                      "core.layers.1.plasticity.modulator.bias"]
    assert consolidation.importance["core.layers.0.bias"].eq(1).all()
    # Move every parameter away from its anchor: the penalty's gradient reaches the biases only.
    learner.policy.optimizer.zero_grad()
    with torch.no_grad():
        for p in learner.policy.parameters():
            p.add_(0.5)
    loss = sum((p * 0).sum() for p in learner.policy.parameters())
    loss.backward()
    grads = {n: p.grad for n, p in learner.policy.named_parameters()}
    assert torch.allclose(grads["core.layers.0.bias"], torch.full_like(grads["core.layers.0.bias"], 0.5 * config.regularizer_strength))
    assert grads["core.layers.0.weight"].abs().sum() == 0
    learner.finish()
    with pytest.raises(ConfigError, match="regularizer_params pattern 'no.such.\\*' matches no parameter"):
        PPOLearner(Config(sequence=str(path), method="ppo", regularizer="l2", regularizer_params=["no.such.*"],
                          **{**TINY, "method_config": ppo}), get_sequence(str(path)), "l2")
    with pytest.raises(ConfigError, match="regularizer_params applies to regularizer ewc or l2"):
        Config(sequence=str(path), method="ppo", regularizer_params=["*.bias"])


FULL_CONTINUAL_CONFIGS = [p for p in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
                          if "trainer: continual" in p.read_text()]


@pytest.mark.parametrize("path", FULL_CONTINUAL_CONFIGS, ids=lambda p: p.name)
def test_committed_full_continual_configs_load(path):
    """A committed `plastic-rl continual --config` file is a valid continual config."""
    from plastic_rl.config import config_from_dict, load_yaml

    data = load_yaml(str(path))
    assert data.pop("trainer") == "continual"
    config = config_from_dict(Config, data, source=str(path))
    assert config.sequence and config.steps_per_task > 0
