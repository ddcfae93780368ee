"""binary_plasticity: alpha = alpha_scale * sign(parameter), modulator weights sign(w) / sqrt(fan_in), straight through."""

import math

import pytest
import torch

from plastic_rl import MLPActorCritic, PlasticLinear, PlasticLSTMCell, PlasticRNNCell, export_policy, load_policy
from plastic_rl.agents.evaluate_maze import without_plasticity

CELLS = [PlasticRNNCell, PlasticLSTMCell, PlasticLinear]
ALPHA_SCALE = 0.3


def rollout(module, xs):
    state, outs = None, []
    for x in xs:
        out, state = module(x, state)
        outs.append(out)
    return torch.stack(outs), state


def binary_and_real_twin(cls, modulation="simple"):
    """A module with binary plasticity and a real-valued one holding the values its forward uses."""
    torch.manual_seed(0)
    binary = cls(5, 6, modulation=modulation, clip=5.0, binary_plasticity=True, alpha_scale=ALPHA_SCALE).double()
    real = cls(5, 6, modulation=modulation, clip=5.0).double()
    with torch.no_grad():
        binary.plasticity.alpha.normal_()  # both signs, hidden magnitudes far from the forward's
        binary.plasticity.modulator.weight.normal_(0.0, 3.0)
    state = {k: v.clone() for k, v in binary.state_dict().items()}
    state["plasticity.alpha"] = ALPHA_SCALE * torch.sign(state["plasticity.alpha"])
    w = state["plasticity.modulator.weight"]
    state["plasticity.modulator.weight"] = torch.sign(w) / math.sqrt(w.shape[-1])
    real.load_state_dict(state)
    return binary, real


@pytest.mark.parametrize("cls", CELLS)
def test_forward_uses_signs_and_gradients_pass_straight_through(cls):
    binary, real = binary_and_real_twin(cls)
    xs = torch.randn(6, 4, 5, dtype=torch.float64)
    out_b, state_b = rollout(binary, xs)
    out_r, state_r = rollout(real, xs)
    torch.testing.assert_close(out_b, out_r)
    assert state_b.hebb.abs().sum() > 0
    out_b.pow(2).sum().backward()
    out_r.pow(2).sum().backward()
    # d sign(h) / dh is taken as 1 (the straight-through estimator): the hidden value gets the forward value's
    # gradient times the factor that multiplies sign(h).
    torch.testing.assert_close(binary.plasticity.alpha.grad, ALPHA_SCALE * real.plasticity.alpha.grad)
    torch.testing.assert_close(binary.plasticity.modulator.weight.grad, real.plasticity.modulator.weight.grad / math.sqrt(6))
    assert binary.plasticity.alpha.grad.abs().sum() > 0


def test_growing_a_hidden_value_changes_nothing_flipping_its_sign_does():
    """What makes these tensors safe to consolidate: MetaplasticAdam lets |hidden| grow, and growth is invisible."""
    binary, _ = binary_and_real_twin(PlasticRNNCell)
    xs = torch.randn(6, 4, 5, dtype=torch.float64)
    before, _ = rollout(binary, xs)
    with torch.no_grad():
        binary.plasticity.alpha.mul_(7.0)
        binary.plasticity.modulator.weight.mul_(7.0)
    torch.testing.assert_close(rollout(binary, xs)[0], before)
    with torch.no_grad():
        binary.plasticity.alpha[0, 0].neg_()
    assert not torch.allclose(rollout(binary, xs)[0], before)


def test_state_dict_keeps_real_hidden_values_and_round_trips():
    torch.manual_seed(2)
    policy = MLPActorCritic(5, 2, hidden_sizes=(8,), binary=True, binary_plasticity=True, alpha_scale=0.05)
    policy(torch.randn(3, 5), None)
    alpha = policy.state_dict()["layers.0.plasticity.alpha"]
    assert not torch.all(alpha.abs() == alpha.abs().flatten()[0])  # real hidden values, not ±alpha_scale
    loaded = load_policy(export_policy(policy))
    assert loaded.layers[0].plasticity.binary_plasticity
    obs = torch.randn(4, 3, 5)
    torch.testing.assert_close(_actions(loaded, obs), _actions(policy, obs))


def _actions(policy, obs_seq):
    state, outs = None, []
    for obs in obs_seq:
        out, state = policy(obs, state)
        outs.append(out.action_params)
    return torch.stack(outs)


def test_without_plasticity_switches_binary_alpha_off():
    """Zeroing the hidden alpha would read as +alpha_scale (sign(0) = +1); the ablation scales alpha_scale instead."""
    torch.manual_seed(3)
    policy = MLPActorCritic(5, 2, hidden_sizes=(8,), binary_plasticity=True, alpha_scale=0.5)
    ablated = without_plasticity(policy)
    for layer, original in zip(ablated.layers, policy.layers):
        assert torch.all(layer.plasticity.effective_alpha() == 0)
        assert torch.all(original.plasticity.effective_alpha().abs() == 0.5)
    static = MLPActorCritic(5, 2, hidden_sizes=(8,), plastic=False)
    static.load_state_dict({k: v for k, v in policy.state_dict().items() if "plasticity" not in k}, strict=False)
    obs = torch.randn(5, 3, 5)
    torch.testing.assert_close(_actions(ablated, obs), _actions(static, obs))


def test_binary_plasticity_must_be_a_bool():
    with pytest.raises(ValueError, match="binary_plasticity must be True or False; got 'yes'"):
        PlasticLinear(3, 4, binary_plasticity="yes")


def test_a2c_and_es_configs_build_binary_plasticity():
    from plastic_rl.agents import a2c, es
    from plastic_rl.agents.es_policy import build_policy

    policy = a2c.build_policy_for(a2c.Config(hidden_size=6, binary_plasticity=True, alpha_scale=0.1))
    assert policy.cell.plasticity.binary_plasticity and policy.cell.plasticity.alpha_scale == 0.1
    es_policy = build_policy(es.Config(hidden_sizes=[6], binary_plasticity=True), 4, 2)
    assert all(layer.plasticity.binary_plasticity for layer in es_policy.layers)


def test_a2c_config_refuses_a_non_positive_alpha_scale():
    from plastic_rl.agents import a2c
    from plastic_rl.config import ConfigError

    with pytest.raises(ConfigError, match="alpha_scale must be > 0"):
        a2c.Config(alpha_scale=0.0)
    with pytest.raises(ConfigError, match="alpha_init must be > 0"):
        a2c.Config(alpha_init=-0.01)


def test_a2c_alpha_init_sets_the_hidden_alphas_scale():
    """With binary plasticity every alpha is +alpha_scale at the start, whatever alpha_init; alpha_init sets
    the hidden values (alpha_init / alpha_scale * U[0, 1]), i.e. how far MetaplasticAdam must move them to flip."""
    from plastic_rl.agents import a2c

    small = a2c.build_policy_for(a2c.Config(hidden_size=16, binary=True, binary_plasticity=True, alpha_scale=0.01, alpha_init=0.001))
    large = a2c.build_policy_for(a2c.Config(hidden_size=16, binary=True, binary_plasticity=True, alpha_scale=0.01))
    hidden_small, hidden_large = small.cell.plasticity.alpha.detach(), large.cell.plasticity.alpha.detach()
    assert 0 < hidden_small.min() and hidden_small.max() <= 0.1 and hidden_small.max() > 0.09
    assert hidden_large.max() > 0.9 and hidden_large.max() <= 1.0
    plain = a2c.build_policy_for(a2c.Config(hidden_size=16, alpha_init=0.002)).cell.plasticity.alpha.detach()
    assert plain.max() <= 0.002 and plain.max() > 0.0018


def test_population_forward_binarizes_each_members_plasticity():
    """ES passes one alpha and one modulator weight per batch row; each row is binarized on its own."""
    torch.manual_seed(4)

    def make():
        policy = MLPActorCritic(4, 2, hidden_sizes=(5,), binary_plasticity=True, alpha_scale=0.5, value_head=False)
        with torch.no_grad():
            for name, p in policy.named_parameters():
                if "alpha" in name or "modulator.weight" in name:
                    p.normal_()
        return policy

    policy, members = make(), [make() for _ in range(3)]
    stacked = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in members])
               for name, _ in policy.named_parameters()}
    obs = [torch.randn(3, 4) for _ in range(3)]
    with torch.no_grad():
        state, singles = None, [None] * 3
        for x in obs:
            batched, state = torch.func.functional_call(policy, stacked, (x, state))
            outs = []
            for i, m in enumerate(members):
                out, singles[i] = m(x[i:i + 1], singles[i])
                outs.append(out.action_params)
        torch.testing.assert_close(batched.action_params, torch.cat(outs))
