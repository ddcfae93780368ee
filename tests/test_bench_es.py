"""``plastic-rl bench es``: its population and episode-length options, and what it writes."""

from __future__ import annotations

import json

import pytest

from plastic_rl.agents.cli import main as cli_main


@pytest.mark.parametrize(
    "argv, field",
    [
        (["bench", "maze", "--popsize", "10"], "--popsize"),
        (["bench", "ppo", "--episode-length", "10"], "--episode-length"),
        (["bench", "es", "--popsize", "1"], "--popsize"),
        (["bench", "es", "--episode-length", "0"], "--episode-length"),
    ],
)
def test_bad_bench_sizes_are_one_sentence_and_exit_2(argv, field, tmp_path, capsys):
    output = tmp_path / "bench.json"
    assert cli_main(argv + ["--output", str(output)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("plastic-rl: error:") and field in err and err.count("\n") == 0
    assert not output.exists()


def test_bench_es_runs_the_population_and_episode_length_it_is_given(tmp_path):
    output = tmp_path / "bench.json"
    assert cli_main(["bench", "es", "--quick", "--popsize", "4", "--episode-length", "12", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["setup"]["popsize"] == 4 and result["setup"]["episode_length"] == 12
    # One timed generation of 4 episodes of at most 12 steps (an episode may end early when Ant falls).
    for name in ("static_1", "plastic_1"):
        assert 4 <= result[name]["env_steps"] <= 4 * 12
        assert result[name]["steps_per_second"] > 0
    assert result["ratios"]["plastic_fraction_of_mj_step_ceiling"] > 0
