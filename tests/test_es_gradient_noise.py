"""scripts/es_gradient_noise.py: the same perturbations on redrawn episodes, and what that does to PGPE's step."""

from __future__ import annotations

import json

import pytest

from plastic_rl.agents import es

DETERMINISTIC_ENV = {"failed_legs": [], "reset_noise_scale": 0.0}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, env_kwargs in (("deterministic", DETERMINISTIC_ENV), ("random", {"failed_legs": "random"})):
        config = es.Config(episode_length=10, popsize=4, generations=1, hidden_sizes=(8,), center_eval_episodes=0,
                           seed=1, env_kwargs=env_kwargs)
        es.train(config, root / name)
        runs[name] = str(root / name)
    return runs


def test_deterministic_episodes_give_the_same_step_twice(load_script, tiny_runs, tmp_path):
    # No start noise and no failure: both evaluations run the same episodes, so the same ε must give the
    # same fitness and the same direction (cosine 1) in every mode; nothing comes from the episodes.
    script = load_script("es_gradient_noise")
    out = tmp_path / "noise.json"
    assert script.main([tiny_runs["deterministic"], "--popsize", "6", "--repeats", "2", "--stdev", "0.5",
                        "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    for mode in ("none", "pairs"):
        assert result[mode]["cosine"] == pytest.approx([1.0, 1.0], abs=1e-5)
        assert result[mode]["episode_variance_share_mean"] == pytest.approx(0.0, abs=1e-9)
        # Another repeat draws other perturbations: its direction is another one (4 cross pairs of 2 x 2).
        assert len(result[mode]["cosine_independent"]) == 4
        assert result[mode]["cosine_independent_mean"] < 0.99


def test_random_episodes_make_the_fitness_depend_on_the_episode(load_script, tiny_runs, tmp_path):
    script = load_script("es_gradient_noise")
    out = tmp_path / "noise.json"
    assert script.main([tiny_runs["random"], "--popsize", "6", "--repeats", "1", "--stdev", "0.5", "--modes", "none",
                        "--num-episodes", "2", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["none"]["episode_variance_share_mean"] > 0.0
    assert "pairs" not in result


@pytest.mark.parametrize("args, words", [
    (["--popsize", "5"], "--popsize must be an even number"),
    (["--stdev", "0"], "--stdev must be a positive number"),
    (["--env-kwargs", "[1, 2]"], "--env-kwargs must be a YAML mapping"),
    (["--num-episodes", "0"], "'num_episodes' must be a positive integer"),
])
def test_bad_arguments_exit_2_with_one_sentence(load_script, tiny_runs, tmp_path, capsys, args, words):
    script = load_script("es_gradient_noise")
    out = tmp_path / "noise.json"
    assert script.main([tiny_runs["deterministic"], *args, "--output", str(out)]) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_without_a_run_is_refused(load_script, tmp_path, capsys):
    script = load_script("es_gradient_noise")
    assert script.main([str(tmp_path)]) == 2
    assert "must hold an ES run's config.yaml and checkpoint.pt" in capsys.readouterr().err
