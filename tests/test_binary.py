"""BinaryLinear (straight-through sign weights) and StochasticBinaryLinear (mean-field ±1 synapses)."""

import pytest
import torch
from torch import nn

from plastic_rl import BinaryLinear, StochasticBinaryLinear
from plastic_rl.binary import binarize, binarize_activation


def test_binary_forward_uses_sign_of_hidden_weight():
    torch.manual_seed(0)
    layer = BinaryLinear(6, 4, scale=0.5)
    x = torch.randn(3, 6)
    expected = 0.5 * x @ torch.where(layer.weight >= 0, 1.0, -1.0).T + layer.bias
    assert torch.allclose(layer(x), expected)
    assert set(layer.binary_weight.unique().tolist()) <= {-1.0, 1.0}


def test_weight_gradient_passes_straight_through():
    torch.manual_seed(1)
    layer = BinaryLinear(5, 3, bias=False)
    x = torch.randn(7, 5)
    upstream = torch.randn(7, 3)
    (layer(x) * upstream).sum().backward()
    # d/dW of sum(upstream * (x sign(W)^T)) with the identity STE is upstream^T x.
    assert torch.allclose(layer.weight.grad, upstream.T @ x, atol=1e-6)


def test_activation_gradient_is_hardtanh_ste():
    x = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 1.5], requires_grad=True)
    y = binarize_activation(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_binary_activations_binarize_the_input():
    torch.manual_seed(2)
    layer = BinaryLinear(4, 2, binary_activations=True)
    x = torch.tensor([[0.2, -3.0, 0.0, 0.7]], requires_grad=True)
    out = layer(x)
    assert torch.allclose(out, torch.tensor([[1.0, -1.0, 1.0, 1.0]]) @ layer.binary_weight.T + layer.bias)
    out.sum().backward()
    assert x.grad[0, 1] == 0  # |x| > 1: no gradient through the hardtanh STE


def test_state_dict_keeps_real_hidden_weights_and_round_trips():
    torch.manual_seed(3)
    layer = BinaryLinear(8, 5)
    hidden = layer.weight.detach().clone()
    layer(torch.randn(2, 8)).sum().backward()
    state = layer.state_dict()
    assert torch.equal(state["weight"], hidden)  # the real values, never the ±1 ones
    assert not set(state["weight"].unique().tolist()) <= {-1.0, 1.0}
    twin = BinaryLinear(8, 5)
    twin.load_state_dict(state)
    x = torch.randn(4, 8)
    assert torch.equal(twin(x), layer(x))


def test_binarize_handles_per_row_weights():
    w = torch.randn(3, 4, 5, requires_grad=True)
    binarize(w).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_stochastic_moments_match_monte_carlo():
    torch.manual_seed(4)
    layer = StochasticBinaryLinear(60, 3, field_init=0.8)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
    x = torch.randn(2, 60)
    mean, variance = layer.moments(x)
    generator = torch.Generator().manual_seed(0)
    weights = layer.sample_weight(generator, num_samples=20000)  # (20000, 3, 60)
    samples = torch.einsum("boi,ni->bno", weights, x) + layer.bias  # (draw, batch, out)
    mc_mean, mc_var = samples.mean(0), samples.var(0)
    # Standard error of the mean is sqrt(var / n); of the variance about var * sqrt(2 / n).
    assert torch.all((mc_mean - mean).abs() < 4 * (variance / 20000).sqrt())
    assert torch.all((mc_var - variance).abs() < 4 * variance * (2 / 20000) ** 0.5)
    # The samples' mean weight is tanh(h).
    assert torch.allclose(weights.mean(0), layer.mean_weight.detach(), atol=4 * (1 / 20000) ** 0.5)


def test_stochastic_sign_units_mean_field_matches_sampled_network():
    torch.manual_seed(5)
    layer = StochasticBinaryLinear(400, 4, sign_activation=True, field_init=0.5)
    x = torch.randn(3, 400)
    with torch.no_grad():
        predicted = layer(x)  # erf(mu / sqrt(2 sigma^2)) under the Gaussian approximation
        generator = torch.Generator().manual_seed(1)
        weights = layer.sample_weight(generator, num_samples=4000)
        sampled = torch.sign(torch.einsum("boi,ni->bno", weights, x) + layer.bias).mean(0)
    assert torch.allclose(predicted, sampled, atol=0.05)


def test_stochastic_deploy_modes():
    torch.manual_seed(6)
    layer = StochasticBinaryLinear(10, 3)
    x = torch.randn(2, 10)
    mean_field = layer(x)
    assert torch.allclose(mean_field, x @ torch.tanh(layer.field).T + layer.bias)
    layer.deploy("sign")
    assert torch.allclose(layer(x), x @ torch.where(layer.field >= 0, 1.0, -1.0).T.detach() + layer.bias)
    assert "deployed_weight" not in layer.state_dict()
    layer.deploy("sample", generator=torch.Generator().manual_seed(0))
    assert set(layer.deployed_weight.unique().tolist()) <= {-1.0, 1.0}
    layer.deploy(None)
    assert torch.equal(layer(x), mean_field)
    with pytest.raises(ValueError, match="mode must be one of"):
        layer.deploy("round")


def test_stochastic_field_gets_gradients():
    layer = StochasticBinaryLinear(5, 2, sign_activation=True)
    layer(torch.randn(4, 5)).sum().backward()
    assert layer.field.grad is not None and torch.isfinite(layer.field.grad).all()


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        BinaryLinear(0, 3)
    with pytest.raises(ValueError, match="scale must be a positive"):
        BinaryLinear(3, 3, scale=0.0)
    with pytest.raises(ValueError, match="field_init must be"):
        StochasticBinaryLinear(3, 3, field_init=-1.0)
