"""Binarized policies: hidden layers use sign(W_h)/sqrt(fan_in) with a straight-through gradient, plasticity stays real."""

import math

import pytest
import torch

from plastic_rl import MLPActorCritic, RecurrentActorCritic, export_policy, load_policy


def _binarized_copy(binary_policy, real_policy, names):
    """Put sign(W_h)/sqrt(fan_in) of ``binary_policy``'s named weights into ``real_policy`` (all else copied)."""
    state = {k: v.clone() for k, v in binary_policy.state_dict().items()}
    for name in names:
        w = state[name]
        state[name] = torch.where(w >= 0, 1.0, -1.0) / math.sqrt(w.shape[-1])
    real_policy.load_state_dict(state)


def _run(policy, obs_seq):
    state, outs = None, []
    for obs in obs_seq:
        out, state = policy(obs, state)
        outs.append(out.action_params)
    return torch.stack(outs), state


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("modulation", ["simple", "retroactive"])
def test_recurrent_binary_equals_real_policy_with_sign_weights(cell, modulation):
    torch.manual_seed(0)
    binary = RecurrentActorCritic(7, 3, hidden_size=12, cell=cell, modulation=modulation, binary=True, alpha_init=0.5)
    real = RecurrentActorCritic(7, 3, hidden_size=12, cell=cell, modulation=modulation, alpha_init=0.5)
    _binarized_copy(binary, real, ["cell.weight_ih", "cell.weight_hh"])
    obs = torch.randn(6, 4, 7)
    out_b, state_b = _run(binary, obs)
    out_r, state_r = _run(real, obs)
    assert torch.allclose(out_b, out_r, atol=1e-6)
    # The plastic traces grew over real-valued alpha on top of the binary weights.
    assert state_b.hebb.abs().sum() > 0 and torch.allclose(state_b.hebb, state_r.hebb, atol=1e-6)


def test_mlp_binarizes_hidden_layers_only():
    torch.manual_seed(1)
    binary = MLPActorCritic(5, 2, hidden_sizes=(8, 6), binary=True)
    real = MLPActorCritic(5, 2, hidden_sizes=(8, 6))
    _binarized_copy(binary, real, ["layers.0.weight", "layers.1.weight"])  # layers.2 is the (real) action layer
    obs = torch.randn(5, 3, 5)
    assert torch.allclose(_run(binary, obs)[0], _run(real, obs)[0], atol=1e-6)
    assert [layer.binary for layer in binary.layers] == [True, True, False]


def test_mlp_binary_output_binarizes_the_action_layer_too():
    torch.manual_seed(1)
    binary = MLPActorCritic(5, 2, hidden_sizes=(8, 6), binary=True, binary_output=True, output_activation="tanh")
    real = MLPActorCritic(5, 2, hidden_sizes=(8, 6), output_activation="tanh")
    _binarized_copy(binary, real, ["layers.0.weight", "layers.1.weight", "layers.2.weight"])
    obs = torch.randn(5, 3, 5)
    assert torch.allclose(_run(binary, obs)[0], _run(real, obs)[0], atol=1e-6)
    assert [layer.binary for layer in binary.layers] == [True, True, True]
    # Only sign(W) acts: growing every action weight's magnitude leaves the actions as they were.
    before = _run(binary, obs)[0]
    with torch.no_grad():
        binary.layers[2].weight.mul_(7.0)
    assert torch.equal(_run(binary, obs)[0], before)
    assert load_policy(export_policy(binary)).config["binary_output"] is True
    with pytest.raises(ValueError, match="binary_output=True .* needs binary=True"):
        MLPActorCritic(5, 2, binary_output=True)
    # binary_output_scale sets the action weights' magnitude: sign(W) * scale, however large |W| is.
    scaled = MLPActorCritic(5, 2, hidden_sizes=(8, 6), binary=True, binary_output=True, binary_output_scale=0.03,
                            output_activation="identity", plastic=False)
    h = torch.randn(4, 6)
    expected = h @ (torch.where(scaled.layers[2].weight >= 0, 0.03, -0.03)).T + scaled.layers[2].bias
    assert torch.allclose(scaled.layers[2](h)[0], expected, atol=1e-6)
    assert load_policy(export_policy(scaled)).layers[2].binary_scale == 0.03
    with pytest.raises(ValueError, match="binary_output_scale .* needs binary_output=True"):
        MLPActorCritic(5, 2, binary=True, binary_output_scale=0.03)
    with pytest.raises(ValueError, match="binary_scale must be a positive number"):
        MLPActorCritic(5, 2, binary=True, binary_output=True, binary_output_scale=-1.0)


def test_binary_policy_gradients_reach_hidden_weights():
    torch.manual_seed(2)
    policy = RecurrentActorCritic(7, 3, hidden_size=10, binary=True)
    out, _ = _run(policy, torch.randn(5, 4, 7))
    out.pow(2).sum().backward()
    for name in ("cell.weight_ih", "cell.weight_hh", "cell.plasticity.alpha"):
        grad = dict(policy.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_binary_policy_round_trips_with_real_hidden_weights():
    torch.manual_seed(3)
    policy = MLPActorCritic(4, 2, hidden_sizes=(6,), binary=True)
    record = export_policy(policy)
    assert record["config"]["binary"] is True
    assert not set(record["state_dict"]["layers.0.weight"].unique().tolist()) <= {-1.0, 1.0}  # real hidden values
    twin = load_policy(record)
    obs = torch.randn(3, 4)
    assert torch.equal(policy(obs)[0].action_params, twin(obs)[0].action_params)


def test_binary_matching_twin_keeps_binary():
    reference = RecurrentActorCritic(7, 3, hidden_size=20, binary=True)
    twin = RecurrentActorCritic.matching(reference, plastic=False)
    assert twin.config["binary"] and twin.cell.binary


def test_binary_rejects_random_weights_and_spiking():
    with pytest.raises(ValueError, match="binary=True"):
        MLPActorCritic(4, 2, binary=True, random_weights=True)
    with pytest.raises(ValueError, match="binary=True needs cell"):
        RecurrentActorCritic(4, 2, cell="spiking", binary=True)


def test_population_forward_binarizes_each_members_weights():
    """The ES population forward passes one weight set per batch row; each row is binarized on its own."""
    torch.manual_seed(4)
    policy = MLPActorCritic(4, 2, hidden_sizes=(5,), binary=True, value_head=False)
    members = [MLPActorCritic(4, 2, hidden_sizes=(5,), binary=True, value_head=False) for _ in range(3)]
    stacked = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in members])
               for name, _ in policy.named_parameters()}
    obs = torch.randn(3, 4)
    with torch.no_grad():
        batched, _ = torch.func.functional_call(policy, stacked, (obs, None))
        single = torch.cat([m(obs[i:i + 1])[0].action_params for i, m in enumerate(members)])
    assert torch.allclose(batched.action_params, single, atol=1e-6)


def test_es_config_builds_binary_policy():
    from plastic_rl.agents.es import Config
    from plastic_rl.agents.es_policy import build_policy

    mlp = build_policy(Config(binary=True), obs_size=27, action_size=8)
    assert mlp.config["binary"] and [layer.binary for layer in mlp.layers] == [True, True, False]
    recurrent = build_policy(Config(binary=True, policy="recurrent", cell="lstm"), obs_size=27, action_size=8)
    assert recurrent.cell.binary
    with pytest.raises(ValueError, match="config field 'binary'"):
        Config(binary=True, random_weights=True)


def test_a2c_trains_a_binary_policy(tmp_path):
    from plastic_rl.agents.a2c import Config, build_policy_for, train
    from plastic_rl.runs import load_checkpoint

    config = Config(iterations=3, maze_size=7, episode_length=20, batch_size=4, hidden_size=8, binary=True,
                    tensorboard=False, progress=False)
    assert build_policy_for(config).cell.binary
    train(config, tmp_path / "run")
    record = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["policy"]
    assert record["config"]["binary"] is True
    weights = record["state_dict"]["cell.weight_hh"]
    assert weights.shape == (8, 8) and not set(weights.unique().tolist()) <= {-1.0, 1.0}  # real hidden weights saved
    with pytest.raises(Exception, match="binary needs cell"):
        Config(binary=True, cell="spiking")


@pytest.mark.parametrize("policy_name", ["PlasticMlpPolicy", "PlasticRnnPolicy"])
def test_plastic_ppo_trains_a_binary_policy_with_metaplastic_adam(policy_name):
    """PlasticPPO takes the binary option through policy_kwargs and MetaplasticAdam as SB3's optimizer_class."""
    import gymnasium as gym

    from plastic_rl import MetaplasticAdam
    from plastic_rl.agents.ppo import PlasticPPO

    sizes = {"hidden_sizes": [8]} if policy_name == "PlasticMlpPolicy" else {"hidden_size": 8}
    model = PlasticPPO(policy_name, gym.make("Pendulum-v1"), n_steps=32, batch_size=32, n_epochs=1, sequence_length=8, seed=0,
                       policy_kwargs={"binary": True, "optimizer_class": MetaplasticAdam, "optimizer_kwargs": {"meta": 2.0}, **sizes})
    core = model.policy.core
    hidden = core.layers[0] if policy_name == "PlasticMlpPolicy" else core.cell
    assert hidden.binary and isinstance(model.policy.optimizer, MetaplasticAdam)
    assert model.policy.optimizer.param_groups[0]["meta"] == 2.0
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(64)
    after = model.policy.state_dict()
    name = "core.layers.0.weight" if policy_name == "PlasticMlpPolicy" else "core.cell.weight_ih"
    assert not torch.equal(before[name], after[name])  # the real hidden weights moved


def test_plastic_ppo_takes_binary_output():
    import gymnasium as gym

    from plastic_rl.agents.ppo import PlasticPPO

    model = PlasticPPO("PlasticMlpPolicy", gym.make("Pendulum-v1"), n_steps=32, batch_size=32, n_epochs=1, seed=0,
                       policy_kwargs={"binary": True, "binary_output": True, "hidden_sizes": [8]})
    assert [layer.binary for layer in model.policy.core.layers] == [True, True]
