"""`plastic-rl evaluate` on maze runs: reward on new mazes, with and without plasticity, on other sizes."""

from __future__ import annotations

import json

import pytest
import torch

from plastic_rl.agents.cli import main
from plastic_rl.agents.evaluate import evaluate_run
from plastic_rl.agents.evaluate_maze import evaluate_maze_policy, without_plasticity
from plastic_rl.envs.maze import OBS_SIZE
from plastic_rl.policies import RecurrentActorCritic, export_policy
from plastic_rl.runs import CHECKPOINT_FILE, save_checkpoint

MAZE_KWARGS = {"size": 7, "episode_length": 30, "reward_value": 10.0, "wall_penalty": 0.0}


def maze_policy(plastic: bool = True, seed: int = 0) -> RecurrentActorCritic:
    torch.manual_seed(seed)
    policy = RecurrentActorCritic(OBS_SIZE, 4, "discrete", hidden_size=12, plastic=plastic)
    if plastic:
        with torch.no_grad():  # strong plasticity, so that switching it off visibly changes the behaviour
            policy.cell.plasticity.alpha.fill_(2.0)
    return policy


def save_maze_run(path, policy):
    save_checkpoint({"trainer": "a2c", "policy": export_policy(policy), "obs_norm": None,
                     "env": {"id": "plastic_rl/Maze-v0", "kwargs": MAZE_KWARGS}}, path / CHECKPOINT_FILE)
    return path


def test_without_plasticity_zeroes_alpha_of_a_copy_only():
    policy = maze_policy()
    ablated = without_plasticity(policy)
    assert torch.all(ablated.cell.plasticity.alpha == 0)
    assert torch.all(policy.cell.plasticity.alpha == 2.0)


def test_maze_evaluate_with_and_without_plasticity(tmp_path):
    run = save_maze_run(tmp_path / "plastic", maze_policy())
    report = evaluate_run(run, episodes=6, maze_sizes=[5, 9], json_out=tmp_path / "maze.json", quiet=True)
    assert report["trained_size"] == 7 and list(report["sizes"]) == ["7", "5", "9"]
    for stats in report["sizes"].values():
        assert set(stats) >= {"mean_reward", "std_reward", "sem", "without_plasticity", "plasticity_gain"}
        assert stats["plasticity_gain"] == pytest.approx(stats["mean_reward"] - stats["without_plasticity"]["mean_reward"])
    # alpha = 2 drives the network: switching it off changes what the agent collects on the same mazes.
    assert any(s["plasticity_gain"] != 0 for s in report["sizes"].values())
    assert json.loads((tmp_path / "maze.json").read_text())["sizes"] == report["sizes"]
    # The same mazes and the same sampling noise every time.
    assert evaluate_run(run, episodes=6, maze_sizes=[5, 9], quiet=True)["sizes"] == report["sizes"]


def test_same_mazes_and_noise_with_and_without_plasticity():
    # A plastic policy whose alpha is already 0 scores exactly what its ablated copy scores.
    policy = maze_policy()
    with torch.no_grad():
        policy.cell.plasticity.alpha.zero_()
    stats = evaluate_maze_policy(policy, MAZE_KWARGS, [7], episodes=5, seed=3)[7]
    assert stats["plasticity_gain"] == 0.0 and stats["mean_reward"] == stats["without_plasticity"]["mean_reward"]


def test_maze_evaluate_of_a_non_plastic_run_has_no_ablation(tmp_path):
    run = save_maze_run(tmp_path / "static", maze_policy(plastic=False))
    report = evaluate_run(run, episodes=4, maze_sizes=[9], quiet=True)
    assert report["plastic"] is False
    assert all("without_plasticity" not in s for s in report["sizes"].values())


def test_cli_maze_evaluate_and_its_errors(tmp_path, capsys):
    run = save_maze_run(tmp_path / "run", maze_policy())
    assert main(["evaluate", str(run), "--episodes", "3", "--maze-sizes", "9"]) == 0
    out = capsys.readouterr().out
    assert "7x7 (trained)" in out and "9x9" in out and "alpha = 0" in out
    for argv, message in [
        (["--failures", "all"], "--failures applies to quadruped runs"),
        (["--min-reference-velocity", "0.1"], "--min-reference-velocity applies to quadruped runs"),
        (["--maze-sizes", "8"], "--maze-sizes must be odd integers >= 5"),
        (["--maze-sizes", "nine"], "--maze-sizes must be comma-separated odd integers"),
        (["--episodes", "0"], "--episodes must be a positive integer"),
    ]:
        assert main(["evaluate", str(run), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
