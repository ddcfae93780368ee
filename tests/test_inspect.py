"""`plastic-rl inspect`: M(t), trace norms and velocity/reward of a trained policy, as a PNG and a CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from plastic_rl.agents import a2c, es
from plastic_rl.agents.cli import main
from plastic_rl.agents.inspect import PlasticRecorder, inspect_run
from plastic_rl.policies import MLPActorCritic


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def es_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("es") / "run"
    es.train(es.Config(episode_length=30, popsize=4, generations=1, hidden_sizes=(8,), center_eval_episodes=0, seed=1), run)
    return run


def test_inspect_writes_png_and_csv_of_an_es_run(es_run, tmp_path):
    result = inspect_run(es_run, failure="front_left@10", episodes=2, out=tmp_path / "out", quiet=True)
    assert (tmp_path / "out" / "inspect.png").stat().st_size > 1000
    rows = read_rows(tmp_path / "out" / "inspect.csv")
    assert result["plastic_modules"] == ["layers.0", "layers.1"]
    assert set(rows[0]) == {"episode", "step", "forward_velocity", "M[layers.0]", "M[layers.1]",
                            "hebb_norm[layers.0]", "hebb_norm[layers.1]", "failure_active"}
    episode0 = [r for r in rows if r["episode"] == "0"]
    assert {r["episode"] for r in rows} == {"0", "1"} and [int(r["step"]) for r in episode0] == list(range(len(episode0)))
    assert [int(r["failure_active"]) for r in episode0[:12]] == [0] * 10 + [1, 1]
    m = np.array([float(r["M[layers.0]"]) for r in episode0])
    norms = np.array([float(r["hebb_norm[layers.0]"]) for r in episode0])
    assert np.all(np.abs(m) <= 1.0) and np.ptp(m) > 0  # tanh read-out that changes over the episode
    assert norms[0] > 0 and np.ptp(norms) > 0  # the trace grows from zero within the episode


def test_recorder_matches_the_state_and_the_modulator():
    torch.manual_seed(0)
    policy = MLPActorCritic(5, 2, hidden_sizes=(4,), value_head=False)
    x = torch.randn(3, 5)
    with PlasticRecorder(policy) as recorder:
        out, state = policy(x, None)
        out, state = policy(x, state)
    series = recorder.series(2)
    hebb = state[0].hebb
    np.testing.assert_allclose(series["hebb_norm[layers.0]"][:, 1], hebb.reshape(3, -1).norm(dim=1).detach().numpy(), rtol=1e-6)
    y = policy.layers[0](x, None)[0]
    np.testing.assert_allclose(series["M[layers.0]"][:, 0], policy.layers[0].plasticity.neuromodulator(y)[:, 0].detach().numpy(), rtol=1e-6)
    policy(x, None)  # the hooks are gone after the block
    assert len(recorder.trace_norm["layers.0"]) == 2


def test_inspect_writes_png_and_csv_of_a_maze_run(tmp_path):
    run = tmp_path / "maze"
    a2c.train(a2c.Config(maze_size=7, episode_length=25, hidden_size=8, batch_size=4, iterations=1, progress=False,
                         tensorboard=False), run)
    assert main(["inspect", str(run), "--episodes", "3", "--out", str(tmp_path / "out")]) == 0
    rows = read_rows(tmp_path / "out" / "inspect.csv")
    assert set(rows[0]) == {"episode", "step", "reward", "M[cell]", "hebb_norm[cell]", "reward_hit"}
    assert len(rows) == 3 * 25
    assert all(int(r["reward_hit"]) == (float(r["reward"]) > 0) for r in rows)
    assert (tmp_path / "out" / "inspect.png").is_file()
    assert main(["inspect", str(run), "--failure", "front_left@3"]) == 2  # no legs in a maze


def test_inspect_cli_errors(es_run, capsys):
    for argv, message in [(["--failure", "front_left,back_left"], "--failure must name one condition"),
                          (["--failure", "tail@3"], "--failures must be comma-separated items"),
                          (["--episodes", "0"], "--episodes must be a positive integer")]:
        assert main(["inspect", str(es_run), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
