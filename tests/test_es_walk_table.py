"""scripts/es_walk_table.py: one row per ES run, its center's intact velocity as plastic-rl evaluate measures it."""

from __future__ import annotations

from pathlib import Path

import pytest

from plastic_rl.agents import es
from plastic_rl.agents.evaluate import evaluate_run

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("es") / "run"
    config = es.Config(
        env_kwargs={"failed_legs": [], "include_cfrc_ext_in_observation": False}, episode_length=12, popsize=2,
        generations=2, hidden_sizes=(4,), plastic=False, stdev_init=0.05, center_learning_rate=0.05, seed=3,
    )
    es.train(config, run_dir)
    return run_dir


def test_row_reads_the_last_generation_and_evaluates_the_center(tiny_run, load_script):
    table = load_script("es_walk_table")
    row = table.run_row(tiny_run, episodes=2)
    direct = evaluate_run(tiny_run, failures="none", episodes=2, policy_key="center_policy", plot=False, quiet=True)
    assert row["generation"] == 2 and row["obs"] == "27" and row["popsize"] == 2 and row["plastic"] is False
    assert 0 < row["env_steps"] <= 2 * 2 * 12  # 2 generations of 2 episodes of at most 12 steps (a fall ends one early)
    assert row["intact_velocity"] == pytest.approx(direct["conditions"]["intact"]["mean_forward_velocity"])
    assert row["velocity_per_million_steps"] == pytest.approx(row["intact_velocity"] / (row["env_steps"] / 1e6))
    text = table.markdown([row])
    assert text.count("\n") == 3 and f"| {tiny_run.name} | False | 27 | 2 |" in text


def test_curve_blocks_average_the_metrics_and_files_are_written(tiny_run, tmp_path, load_script):
    curve = load_script("es_walk_curve")
    rows = [{"generation": g, "env_steps": 10 * g, "mean_fitness": float(g), "center_fitness": 2.0 * g} for g in range(1, 6)]
    assert curve.blocks(rows, 2) == [
        {"generations": "1-2", "env_steps": 20, "mean_fitness": 1.5, "center_fitness": 3.0},
        {"generations": "3-4", "env_steps": 40, "mean_fitness": 3.5, "center_fitness": 7.0},
        {"generations": "5-5", "env_steps": 50, "mean_fitness": 5.0, "center_fitness": 10.0},
    ]
    curve.main([str(tiny_run), "--block", "1", "--output", str(tmp_path / "curves")])
    text = (tmp_path / "curves.md").read_text()
    assert "**run**" in text and text.count("\n| 1-1 |") == 1 and (tmp_path / "curves.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        curve.main([str(tmp_path), "--output", str(tmp_path / "x")])  # no metrics.csv there
