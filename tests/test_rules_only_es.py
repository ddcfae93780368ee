"""The rules-only policy under the ES trainer, the evaluator and the CLI preset."""

from __future__ import annotations

import pytest
import torch

from plastic_rl.agents import es
from plastic_rl.agents.cli import main
from plastic_rl.agents.es_policy import EvoTorchPolicy, PopulationPolicy, build_policy
from plastic_rl.agents.evaluate import evaluate_run
from plastic_rl.runs import CHECKPOINT_FILE, read_metrics

TINY = dict(episode_length=20, popsize=4, generations=2, hidden_sizes=(8,), center_eval_episodes=1, seed=2,
            random_weights=True, rule="abcd", modulation="none", env_kwargs={"failed_legs": "random"})


def test_config_needs_plasticity():
    with pytest.raises(ValueError, match="config field 'random_weights' needs plastic: true"):
        es.Config(random_weights=True, plastic=False)
    with pytest.raises(ValueError, match="cell: rnn"):
        es.Config(random_weights=True, policy="recurrent", cell="lstm")


def test_population_members_start_from_their_own_random_weights():
    config = es.Config(**TINY)
    policy = build_policy(config, 105, 8)
    assert policy.config["random_weights"] and not any(n.endswith("weight") for n, _ in policy.layers.named_parameters())
    population = PopulationPolicy(EvoTorchPolicy(policy))
    flat = torch.nn.utils.parameters_to_vector(policy.parameters()).detach()
    population.set_parameters(flat.repeat(3, 1))  # three members with the *same* rule
    torch.manual_seed(0)
    first = population(torch.ones(3, 105))
    assert not torch.allclose(first[0], first[1])  # same rule, different random networks
    population.reset()
    torch.manual_seed(0)
    assert torch.equal(population(torch.ones(3, 105)), first)  # a new episode with the same seed repeats them


def test_rules_only_es_run_repeats_with_its_seed_and_evaluates(tmp_path):
    a = es.train(es.Config(**TINY), tmp_path / "a")
    b = es.train(es.Config(**TINY), tmp_path / "b")
    rows_a, rows_b = read_metrics(tmp_path / "a" / "metrics.csv"), read_metrics(tmp_path / "b" / "metrics.csv")
    for key in ("mean_fitness", "best_fitness", "center_fitness"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b]
    assert a["parameters"] < 2 * 5 * (105 * 8 + 8 * 8)  # alpha + A, B, C, D per synapse, η per layer, log_std
    checkpoint = torch.load(tmp_path / "a" / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["policy"]["config"]["random_weights"] is True
    first = evaluate_run(tmp_path / "a", failures="back_left", episodes=2, quiet=True, plot=False)
    again = evaluate_run(tmp_path / "a", failures="back_left", episodes=2, quiet=True, plot=False)
    assert first["conditions"] == again["conditions"]  # each episode seed fixes its random weights


def test_cli_preset_ant_es_rules(tmp_path):
    argv = ["train", "--preset", "ant-es-rules", "--generations", "1", "--popsize", "4", "--episode-length", "15",
            "--run-dir", str(tmp_path / "run")]
    assert main(argv) == 0
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "random_weights: true" in config and "rule: abcd" in config
