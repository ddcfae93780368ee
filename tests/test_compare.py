"""plastic-rl compare on a tiny budget: run folders per method and seed, CSV, PNG, limb-failure JSON, resume, errors."""

from __future__ import annotations

import csv
import json

import pytest

from plastic_rl.agents.cli import main as cli_main
from plastic_rl.agents.compare import Spec, compare, run_name
from plastic_rl.policies import count_parameters, load_policy
from plastic_rl.runs import CHECKPOINT_FILE, load_checkpoint

TINY = {
    "es": dict(popsize=4, episode_length=20, hidden_sizes=(8, 8)),
    "ppo": dict(episode_length=20, n_envs=2, n_steps=16, batch_size=32, sequence_length=8, n_epochs=1, hidden_sizes=(8, 8)),
}


@pytest.mark.slow
def test_compare_on_the_quadruped_writes_csv_png_and_limb_failure_json(tmp_path, capsys):
    spec = Spec(env_id="plastic_rl/AntLegFailure-v0", budget_steps=160, out=str(tmp_path / "cmp"), seeds=(0, 1),
                methods=("es", "ppo"), static_twin=True, episodes=1, overrides=TINY)
    result = compare(spec)
    out = tmp_path / "cmp"
    for method in ("es", "ppo"):
        for plastic in (True, False):
            for seed in (0, 1):
                summary = json.loads((out / "runs" / run_name(method, seed, plastic) / "summary.json").read_text())
                assert summary["env_steps"] >= 160, (method, plastic, seed)
    with open(out / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"es", "ppo", "es-static", "ppo-static"}
    assert set(rows[0]) >= {"method", "seed", "env_steps", "wall_time", "return"}
    assert (out / "compare.png").stat().st_size > 10_000
    limb = json.loads((out / "limb_failure.json").read_text())
    assert set(limb["runs"]) == {"es", "ppo", "es-static", "ppo-static"}
    assert set(limb["runs"]["ppo"]["0"]["conditions"]) >= {"intact", "front_left", "front_left@10"}
    assert result["rows"]["es"]["intact_return"]["n"] == 2
    table = capsys.readouterr().out
    assert "es-static" in table and "fwd vel kept" in table and "leg failed: fwd vel" in table
    # The static twins have (close to) the plastic networks' parameter count and no plasticity.
    for method, key in (("es", "center_policy"), ("ppo", "policy")):
        plastic = load_policy(load_checkpoint(out / "runs" / run_name(method, 0, True) / CHECKPOINT_FILE)[key])
        static = load_policy(load_checkpoint(out / "runs" / run_name(method, 0, False) / CHECKPOINT_FILE)[key])
        assert static.config["plastic"] is False
        assert abs(count_parameters(static) - count_parameters(plastic)) / count_parameters(plastic) < 0.05
    # Run again with a larger budget: every run continues from its checkpoint.
    compare(Spec(**{**spec.__dict__, "budget_steps": 320, "static_twin": False, "seeds": (0,)}))
    summary = json.loads((out / "runs" / "ppo-seed0" / "summary.json").read_text())
    assert summary["env_steps"] == 320
    assert json.loads((out / "runs" / "ppo-seed0" / "run.json").read_text())["resumes"]


def test_compare_on_the_maze_with_a2c_ppo_and_recurrent_ppo(tmp_path):
    overrides = {
        "a2c": dict(maze_size=5, episode_length=10, batch_size=4, hidden_size=8),
        "ppo": dict(env_kwargs={"size": 5, "episode_length": 10}, n_envs=2, n_steps=10, batch_size=20, sequence_length=5,
                    n_epochs=1, hidden_size=8),
        "rppo": dict(env_kwargs={"size": 5, "episode_length": 10}, n_envs=2, n_steps=10, batch_size=20, n_epochs=1, hidden_size=8),
    }
    result = compare(Spec(env_id="plastic_rl/Maze-v0", budget_steps=40, out=str(tmp_path / "maze"), seeds=(0,),
                          methods=("ppo", "a2c", "rppo"), overrides=overrides))
    assert set(result["rows"]) == {"ppo", "a2c", "rppo"}
    assert not (tmp_path / "maze" / "limb_failure.json").exists()
    with open(tmp_path / "maze" / "compare.csv", newline="") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"ppo", "a2c", "rppo"}


@pytest.mark.parametrize("argv, message", [
    (["--env", "plastic_rl/Maze-v0", "--methods", "es,ppo"], "continuous-action"),
    (["--env", "plastic_rl/AntLegFailure-v0", "--methods", "a2c"], "maze only"),
    (["--env", "plastic_rl/AntLegFailure-v0", "--methods", "ppo,sac"], "--methods must be"),
    (["--env", "plastic_rl/AntLegFailure-v0", "--budget-steps", "0"], "--budget-steps must be a positive integer"),
])
def test_compare_errors_are_one_sentence_with_exit_code_2(tmp_path, capsys, argv, message):
    args = ["compare", "--budget-steps", "100", "--out", str(tmp_path / "x"), *argv]
    assert cli_main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
