"""scripts/es_walk_table.py: one row per ES run, its center's intact velocity as plastic-rl evaluate measures it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from plastic_rl.agents import es
from plastic_rl.agents.evaluate import evaluate_run

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "es_walk_table.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("es_walk_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("es") / "run"
    config = es.Config(
        env_kwargs={"failed_legs": [], "include_cfrc_ext_in_observation": False}, episode_length=12, popsize=2,
        generations=2, hidden_sizes=(4,), plastic=False, stdev_init=0.05, center_learning_rate=0.05, seed=3,
    )
    es.train(config, run_dir)
    return run_dir


def test_row_reads_the_last_generation_and_evaluates_the_center(tiny_run):
    table = _load_script()
    row = table.run_row(tiny_run, episodes=2)
    direct = evaluate_run(tiny_run, failures="none", episodes=2, policy_key="center_policy", plot=False, quiet=True)
    assert row["generation"] == 2 and row["obs"] == "27" and row["popsize"] == 2 and row["plastic"] is False
    assert 0 < row["env_steps"] <= 2 * 2 * 12  # 2 generations of 2 episodes of at most 12 steps (a fall ends one early)
    assert row["intact_velocity"] == pytest.approx(direct["conditions"]["intact"]["mean_forward_velocity"])
    assert row["velocity_per_million_steps"] == pytest.approx(row["intact_velocity"] / (row["env_steps"] / 1e6))
    text = table.markdown([row])
    assert text.count("\n") == 3 and f"| {tiny_run.name} | False | 27 | 2 |" in text
