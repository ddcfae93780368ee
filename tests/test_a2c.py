"""The full-episode A2C trainer: loss, learning, run folder, resume after a kill, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from plastic_rl import count_parameters, load_policy
from plastic_rl.agents.a2c import Config, Rollout, a2c_loss, build_policy_for, discounted_returns, run_episodes, train
from plastic_rl.agents.cli import main as cli_main
from plastic_rl.config import ConfigError
from plastic_rl.envs.maze import MazeVectorEnv
from plastic_rl.policies import PolicyOutput
from plastic_rl.runs import load_checkpoint, read_metrics

# A maze small enough that learning shows in seconds.
TINY = dict(maze_size=7, episode_length=40, batch_size=32, hidden_size=16, tensorboard=False, progress=False)


def mean_episode_reward(policy, config: Config, episodes: int = 256, seed: int = 10**6) -> float:
    env = MazeVectorEnv(episodes, as_tensor=True, **config.env_kwargs)
    with torch.no_grad():
        return float(run_episodes(policy, env, seed).rewards.sum(0).mean())


class UniformPolicy(torch.nn.Module):
    """Picks each action with probability 1/4."""

    def forward(self, obs, state=None):
        return PolicyOutput(torch.zeros(obs.shape[0], 4), torch.zeros(obs.shape[0])), state


def test_discounted_returns_match_hand_computation():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 10.0], [2.0, 0.0]])  # (T=3, B=2)
    returns = discounted_returns(rewards, 0.5)
    expected = torch.tensor([[1.0 + 0.5 * 0.0 + 0.25 * 2.0, 0.5 * 10.0], [0.0 + 0.5 * 2.0, 10.0], [2.0, 0.0]])
    assert torch.allclose(returns, expected)


def test_each_episode_is_its_own_baseline():
    # Two episodes with equal returns but different value estimates: the advantage
    # (and so the policy gradient) must differ per episode, unlike Backpropamine's vs[t][0].
    config = Config(gamma=0.0, value_coef=1.0, probs_penalty=0.0)
    log_probs = torch.zeros(1, 2, requires_grad=True)
    rollout = Rollout(log_probs, torch.tensor([[1.0, 3.0]]), torch.tensor([[2.0, 2.0]]), torch.zeros(1, 2))
    losses = a2c_loss(rollout, config)
    losses["policy_loss"].backward()
    # d/d log_prob of -(log_prob * adv).mean() = -adv / B, adv = R - V = (1, -1)
    assert torch.allclose(log_probs.grad, torch.tensor([[-0.5, 0.5]]))
    assert losses["value_loss"].item() == pytest.approx((1.0 + 1.0) / 2)


def test_non_plastic_baseline_matches_the_plastic_parameter_count():
    plastic = build_policy_for(Config(plastic=True))
    baseline = build_policy_for(Config(plastic=False))
    assert not hasattr(baseline.cell, "plasticity") or baseline.cell.plasticity is None
    assert baseline.config["hidden_size"] > plastic.config["hidden_size"]
    assert abs(count_parameters(baseline) - count_parameters(plastic)) / count_parameters(plastic) < 0.02


@pytest.mark.parametrize("field,value", [("modulation", "strong"), ("cell", "gru"), ("batch_size", 0), ("maze_size", 8)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        Config(**{field: value})


def test_short_training_beats_a_random_policy(tmp_path):
    config = Config(iterations=100, learning_rate=1e-2, plastic=False, match_parameters=False, **TINY)
    summary = train(config, tmp_path / "run")
    policy = load_policy(load_checkpoint(tmp_path / "run" / "checkpoint.pt")["policy"])
    trained = mean_episode_reward(policy, config)
    random_reward = mean_episode_reward(UniformPolicy(), config)
    # Measured: random ≈ 6.2, trained ≈ 11.7 (seed 0, 100 iterations).
    assert trained > random_reward + 3.0, (trained, random_reward)
    assert summary["iterations"] == 100
    for name in ("summary.json", "learning_curve.png", "config.yaml", "metrics.csv", "checkpoint.pt"):
        assert (tmp_path / "run" / name).is_file(), name


def test_run_folder_has_tensorboard_events_and_a_resumable_config(tmp_path):
    config = Config(iterations=3, **{**TINY, "tensorboard": True})
    train(config, tmp_path / "run")
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["trainer"] == "a2c" and saved["iterations"] == 3 and saved["hidden_size"] == 16
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["env_steps"] == 3 * 32 * 40


def _write_config(path: Path, iterations: int) -> Path:
    data = {"trainer": "a2c", "iterations": iterations, "checkpoint_every": 3, "seed": 7,
            **{**TINY, "batch_size": 4, "hidden_size": 8, "episode_length": 10}}
    path.write_text(yaml.safe_dump(data))
    return path


def test_resume_after_kill_continues_the_same_run(tmp_path):
    # A run killed with SIGKILL and resumed must produce exactly the metrics of an
    # unbroken run: the checkpoint holds weights, optimizer and sampling RNG, and
    # iteration k always plays the same mazes.
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "plastic_rl.agents.cli", "train", "--config", str(_write_config(tmp_path / "long.yaml", 10**6)),
         "--run-dir", str(killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        if (killed / "checkpoint.pt").is_file() and len(read_metrics(killed / "metrics.csv")) >= 7:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = int(load_checkpoint(killed / "checkpoint.pt")["iteration"])
    assert done >= 3 and done % 3 == 0
    total = done + 5

    assert cli_main(["train", "--resume", str(killed), "--iterations", str(total)]) == 0
    short = _write_config(tmp_path / "short.yaml", total)
    assert cli_main(["train", "--config", str(short), "--run-dir", str(tmp_path / "unbroken")]) == 0

    resumed_rows = read_metrics(killed / "metrics.csv")
    unbroken_rows = read_metrics(tmp_path / "unbroken" / "metrics.csv")
    assert [int(r["iteration"]) for r in resumed_rows] == list(range(1, total + 1))
    for a, b in zip(resumed_rows, unbroken_rows):
        assert a["mean_reward"] == b["mean_reward"] and a["loss"] == b["loss"], (a["iteration"], a, b)
    ckpt_a = load_checkpoint(killed / "checkpoint.pt")["policy"]["state_dict"]
    ckpt_b = load_checkpoint(tmp_path / "unbroken" / "checkpoint.pt")["policy"]["state_dict"]
    assert all(torch.equal(ckpt_a[k], ckpt_b[k]) for k in ckpt_a)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["train", "--preset", "maze-fast"], "--preset must be one of"),
        (["train", "--preset", "maze-a2c", "--popsize", "4"], "--popsize does not apply"),
        (["train", "--resume", "/nonexistent/run"], "cannot resume"),
    ],
)
def test_cli_errors_are_one_sentence_and_exit_2(args, expected, capsys):
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1


def test_cli_refuses_a_non_empty_run_dir_and_a_bad_yaml_field(tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    assert cli_main(["train", "--run-dir", str(tmp_path / "busy"), "--iterations", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"trainer": "a2c", "modulation": "strong"}))
    assert cli_main(["train", "--config", str(bad), "--run-dir", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert "modulation must be one of" in err
    assert not (tmp_path / "new").exists()  # nothing half-written


def test_shipped_yaml_config_is_the_preset():
    from plastic_rl.config import config_from_dict, load_yaml

    data = load_yaml(Path(__file__).parent.parent / "configs" / "maze_a2c.yaml")
    assert data.pop("trainer") == "a2c"
    assert config_from_dict(Config, data) == Config()


def test_demo_preset_is_a_valid_config_and_reports_its_curve(tmp_path, capsys, monkeypatch):
    from plastic_rl.agents import presets

    demo = {k: v for k, v in presets.DEMO.items() if k != "trainer"}
    Config(**demo)  # the shipped demo settings pass validation
    # Same settings, two iterations: the command trains, plots and reports the rewards.
    monkeypatch.setitem(presets.DEMO, "iterations", 2)
    monkeypatch.setitem(presets.DEMO, "progress", False)
    assert cli_main(["demo", "--run-dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "reward per episode" in out and "learning_curve.png" in out
    assert (tmp_path / "demo" / "learning_curve.png").is_file()
    assert len(read_metrics(tmp_path / "demo" / "metrics.csv")) == 2


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_over(tmp_path, capsys):
    # What a kill before the first checkpoint leaves: the config and a partial metrics file.
    run = tmp_path / "early"
    assert cli_main(["train", "--config", str(_write_config(tmp_path / "c.yaml", 2)), "--run-dir", str(run)]) == 0
    (run / "checkpoint.pt").unlink()
    (run / "metrics.csv").write_text("iteration,mean_reward\n1,7.0\n")
    assert cli_main(["train", "--resume", str(run), "--iterations", "4"]) == 0
    assert "starting it over" in capsys.readouterr().err
    assert [int(r["iteration"]) for r in read_metrics(run / "metrics.csv")] == [1, 2, 3, 4]
    assert int(load_checkpoint(run / "checkpoint.pt")["iteration"]) == 4
