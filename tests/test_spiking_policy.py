"""The spiking actor-critic (``RecurrentActorCritic(cell="spiking")``) under every trainer's interface."""

from __future__ import annotations

import io

import pytest
import torch

from plastic_rl import Plasticity, ReadoutSpikingState, RecurrentActorCritic, count_parameters, export_policy, load_policy


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
def test_spiking_policy_outputs_and_state(action_type):
    policy = RecurrentActorCritic(7, 3, action_type, hidden_size=12, cell="spiking", modulation="retroactive")
    assert isinstance(policy.cell.plasticity, Plasticity)  # where the other cells keep theirs
    obs = torch.randn(5, 7) * 2
    state, actions = None, []
    for _ in range(6):
        out, state = policy(obs, state)
        action, _ = policy.act(obs, state)
        actions.append(action)
    assert isinstance(state, ReadoutSpikingState)
    assert out.action_params.shape == (5, 3) and out.value.shape == (5,)
    assert set(state.spikes.unique().tolist()) <= {0.0, 1.0}
    # The heads read the smooth leaky readout, not the 0/1 spikes.
    assert torch.equal(out.value.detach(), policy.value_head(state.readout).squeeze(-1).detach())
    assert torch.isfinite(policy.distribution(out).log_prob(actions[-1])).all()


def test_non_plastic_twin_matches_the_parameter_count():
    plastic = RecurrentActorCritic(15, 4, hidden_size=40, cell="spiking", modulation="simple")
    static = RecurrentActorCritic.matching(plastic, plastic=False)
    assert static.cell.plasticity is None and static.config["cell"] == "spiking"
    assert static.config["hidden_size"] > 40
    assert abs(count_parameters(static) - count_parameters(plastic)) / count_parameters(plastic) < 0.02


def test_export_load_round_trip_through_weights_only_torch_load():
    policy = RecurrentActorCritic(7, 3, hidden_size=8, cell="spiking", rule="bcm", modulation="simple")
    buffer = io.BytesIO()
    torch.save(export_policy(policy), buffer)
    buffer.seek(0)
    loaded = load_policy(torch.load(buffer, weights_only=True))
    obs = torch.randn(12, 4, 7) * 2
    a_state = b_state = None
    with torch.no_grad():
        for x in obs:
            a, a_state = policy(x, a_state)
            b, b_state = loaded(x, b_state)
            assert torch.equal(a.action_params, b.action_params)


def test_a2c_trains_the_spiking_policy():
    from plastic_rl.agents.a2c import Config, a2c_update, build_policy_for, make_optimizer
    from plastic_rl.config import config_from_dict
    from plastic_rl.envs.maze import MazeVectorEnv

    config = config_from_dict(Config, {"cell": "spiking", "maze_size": 7, "episode_length": 20, "batch_size": 8,
                                       "hidden_size": 12, "learning_rate": 1e-2}, source="test")
    policy = build_policy_for(config)
    assert policy.config["cell"] == "spiking" and policy.cell.plasticity is not None
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    optimizer = make_optimizer(policy, config)
    env = MazeVectorEnv(config.batch_size, as_tensor=True, **config.env_kwargs)
    for i in range(2):
        _, losses, grad_norm = a2c_update(policy, optimizer, env, config, seed=i)
        assert torch.isfinite(losses["loss"]) and grad_norm > 0
    changed = {n for n, p in policy.named_parameters() if not torch.equal(p, before[n])}
    assert {"cell.weight_ih", "cell.weight_hh", "cell.plasticity.alpha", "cell.plasticity.modulator.weight"} <= changed


def test_trainer_configs_accept_and_name_the_spiking_cell():
    from plastic_rl.agents import a2c, es
    from plastic_rl.config import ConfigError, config_from_dict

    assert config_from_dict(es.Config, {"policy": "recurrent", "cell": "spiking"}, source="test").cell == "spiking"
    with pytest.raises(ConfigError, match="spiking"):
        config_from_dict(a2c.Config, {"cell": "gru"}, source="test")


@pytest.mark.parametrize("modulation,rule", [("simple", "hebbian"), ("retroactive", "bcm")])
def test_population_policy_equals_evotorch_vmapped_policy(modulation, rule):
    """ES: one batched forward with one weight set per batch row gives EvoTorch's vmap result, resets included."""
    from evotorch.neuroevolution.net.vecrl import Policy

    from plastic_rl.agents.es_policy import EvoTorchPolicy, PopulationPolicy

    adapter = EvoTorchPolicy(RecurrentActorCritic(7, 3, "continuous", hidden_size=6, cell="spiking", value_head=False,
                                                  modulation=modulation, rule=rule))
    n = sum(p.numel() for p in adapter.parameters())
    params = torch.randn(5, n)  # five members, large alpha so that the traces matter
    reference, batched = Policy(adapter), PopulationPolicy(adapter)
    reference.set_parameters(params.clone())
    batched.set_parameters(params.clone())
    obs = 2 * torch.randn(12, 5, 7)
    for t in range(12):
        expected, got = reference(obs[t]), batched(obs[t])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        if t == 5:
            done = torch.tensor([False, True, False, True, False])
            reference.reset(done)
            batched.reset(done)
    assert got.abs().sum() > 0


def test_plastic_ppo_runs_the_spiking_policy(tmp_path):
    """PlasticPPO: the update re-runs sequences and recomputes exactly what the rollout saw; learn, save, load."""
    from stable_baselines3.common.env_util import make_vec_env

    from plastic_rl.agents import PlasticPPO
    from plastic_rl.agents.ppo_train import Config as PPOConfig

    assert PPOConfig(policy="spiking").policy == "spiking"
    env = make_vec_env("CartPole-v1", n_envs=3, seed=0)
    model = PlasticPPO("PlasticSpikingPolicy", env, policy_kwargs=dict(hidden_size=8, ortho_init=False), seed=1,
                       n_steps=16, batch_size=24, sequence_length=8, n_epochs=2)
    assert model.policy.core.config["cell"] == "spiking" and model.policy.core.cell.plasticity is not None
    with torch.no_grad():
        model.policy.core.action_head.weight.mul_(20)  # far from uniform, so a misaligned action would show
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    for batch in model.rollout_buffer.get(model.batch_size):
        with torch.no_grad():
            _, log_prob, _ = model.policy.evaluate_actions(batch.observations, batch.actions.long().flatten())
        torch.testing.assert_close(log_prob, batch.old_log_prob, rtol=0, atol=1e-5)
    model.learn(48)
    model.save(tmp_path / "model.zip")
    loaded = PlasticPPO.load(tmp_path / "model.zip")
    obs = env.reset()
    a, state_a = model.predict(obs, deterministic=True)
    b, state_b = loaded.predict(obs, deterministic=True)
    assert (a == b).all() and (state_a == state_b).all()
