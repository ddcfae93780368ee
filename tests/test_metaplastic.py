"""MetaplasticAdam: plain Adam at meta = 0, the f_meta attenuation of steps that shrink |W| otherwise."""

import copy
import math

import pytest
import torch
from torch import nn

from plastic_rl import MetaplasticAdam
from plastic_rl.metaplastic import metaplastic_factor


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list:
    generator = torch.Generator().manual_seed(1)
    trajectory = []
    for _ in range(steps):
        x = torch.randn(8, 5, generator=generator)
        y = torch.randn(8, 3, generator=generator)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        trajectory.append([p.detach().clone() for p in model.parameters()])
    return trajectory


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_meta_zero_equals_adam_bit_for_bit(weight_decay):
    reference, metaplastic = _model(0), _model(0)
    adam = torch.optim.Adam(reference.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=weight_decay)
    meta = MetaplasticAdam(metaplastic.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=weight_decay, meta=0.0)
    for step, (a, b) in enumerate(zip(_train(reference, adam, 30), _train(metaplastic, meta, 30))):
        for pa, pb in zip(a, b):
            assert torch.equal(pa, pb), f"step {step + 1} differs"
    # Same state layout: Adam's state dict loads into MetaplasticAdam and vice versa.
    for (_, sa), (_, sb) in zip(adam.state.items(), meta.state.items()):
        assert set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_attenuated_step_matches_hand_computation():
    lr, beta1, beta2, eps, m = 0.1, 0.9, 0.999, 1e-8, 1.5
    weight = nn.Parameter(torch.tensor([[1.0, -0.5], [2.0, -1.0]], dtype=torch.float64))
    bias = nn.Parameter(torch.tensor([0.3, -0.3], dtype=torch.float64))
    # Gradients: + on a positive weight and - on a negative one shrink |W| (the step is -lr * sign(g)).
    grad_w = torch.tensor([[0.2, -0.4], [-0.3, 0.5]], dtype=torch.float64)
    grad_b = torch.tensor([0.1, -0.1], dtype=torch.float64)
    weight.grad, bias.grad = grad_w.clone(), grad_b.clone()
    optimizer = MetaplasticAdam([weight, bias], lr=lr, betas=(beta1, beta2), eps=eps, meta=m)
    before_w, before_b = weight.detach().clone(), bias.detach().clone()
    optimizer.step()
    weight, bias = weight.detach(), bias.detach()

    def adam_first_step(g: float) -> float:
        m1, v1 = (1 - beta1) * g, (1 - beta2) * g * g
        return -lr / (1 - beta1) * m1 / (math.sqrt(v1) / math.sqrt(1 - beta2) + eps)

    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        w, g = float(before_w[i, j]), float(grad_w[i, j])
        shrinks = w * g > 0
        factor = 1 - math.tanh(m * abs(w)) ** 2 if shrinks else 1.0
        expected = w + factor * adam_first_step(g)
        assert float(weight[i, j]) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # (0,0) and (0,1) shrink and are attenuated; (1,0) and (1,1) grow at Adam's full step (≈ lr on step 1).
    assert float(weight[0, 0] - before_w[0, 0]) == pytest.approx(-lr * (1 - math.tanh(1.5 * 1.0) ** 2), rel=1e-6)
    assert float(weight[0, 1] - before_w[0, 1]) == pytest.approx(lr * (1 - math.tanh(1.5 * 0.5) ** 2), rel=1e-6)
    assert float(weight[1, 0] - before_w[1, 0]) == pytest.approx(lr, rel=1e-6)
    # 1-D parameters get plain Adam even where the step shrinks them.
    for k in range(2):
        assert float(bias[k]) == pytest.approx(float(before_b[k]) + adam_first_step(float(grad_b[k])), rel=1e-12)


def test_meta_is_per_group_and_attenuation_grows_with_weight():
    small, large = nn.Parameter(torch.full((2, 2), 0.1)), nn.Parameter(torch.full((2, 2), 3.0))
    plain = nn.Parameter(torch.full((2, 2), 3.0))
    optimizer = MetaplasticAdam([{"params": [small, large]}, {"params": [plain], "meta": 0.0}], lr=0.01, meta=1.0)
    for p in (small, large, plain):
        p.grad = torch.ones_like(p)  # every step shrinks these positive weights
    optimizer.step()
    small, large, plain = small.detach(), large.detach(), plain.detach()
    assert float(3.0 - plain[0, 0]) == pytest.approx(0.01, rel=1e-4)
    assert float(0.1 - small[0, 0]) == pytest.approx(0.01 * float(metaplastic_factor(torch.tensor(0.1), 1.0)), rel=1e-4)
    assert float(3.0 - large[0, 0]) < 1e-4  # f_meta(3) = 1 - tanh²(3) ≈ 0.0099


def test_state_dict_round_trip_continues_identically():
    model_a, model_b = _model(3), _model(3)
    opt_a = MetaplasticAdam(model_a.parameters(), lr=0.05, meta=2.0)
    _train(model_a, opt_a, 5)
    model_b.load_state_dict(model_a.state_dict())
    opt_b = MetaplasticAdam(model_b.parameters(), lr=0.05, meta=2.0)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as if saved and loaded: no shared tensors
    assert opt_b.param_groups[0]["meta"] == 2.0
    for a, b in zip(_train(model_a, opt_a, 5), _train(model_b, opt_b, 5)):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("kwargs, field", [({"meta": -1.0}, "meta"), ({"lr": -0.1}, "lr"), ({"betas": (0.9, 1.0)}, "betas")])
def test_bad_hyperparameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        MetaplasticAdam([nn.Parameter(torch.zeros(2, 2))], **kwargs)


def test_meta_param_groups_pick_m_by_name_first_match_wins():
    from plastic_rl import meta_param_groups

    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    groups = meta_param_groups(net.named_parameters(), 1.5, {"2.weight": 30, "2.*": 0, "0.bias": 2})
    assert [(g["meta"], [p.shape for p in g["params"]]) for g in groups] == [
        (30.0, [torch.Size([2, 4])]), (0.0, [torch.Size([2])]), (2.0, [torch.Size([4])]), (1.5, [torch.Size([4, 3])])]
    optimizer = MetaplasticAdam(groups, lr=0.01, meta=1.5)
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[2].weight.fill_(0.5)
    for p in net.parameters():
        p.grad = torch.ones_like(p)  # every step shrinks the positive weights
    optimizer.step()
    # Each weight matrix is attenuated by its own group's m.
    assert float(0.5 - net[0].weight.detach()[0, 0]) == pytest.approx(0.01 * (1 - math.tanh(1.5 * 0.5) ** 2), rel=1e-4)
    assert float(0.5 - net[2].weight.detach()[0, 0]) == pytest.approx(0.01 * (1 - math.tanh(30 * 0.5) ** 2), rel=1e-3, abs=1e-12)
    assert meta_param_groups(net.named_parameters(), 1.5, {}) == [{"params": list(net.parameters()), "meta": 1.5}]


@pytest.mark.parametrize("meta_groups, message", [
    ({"3.*": 1.0}, "pattern '3.*' matches no parameter .* the parameters are: 0.weight, 0.bias"),
    ({"0.*": 1.0, "0.weight": 2.0}, "pattern '0.weight' matches no parameter \\(the first match wins"),
    ({"0.*": -1.0}, "meta_groups must map parameter-name patterns to numbers >= 0"),
])
def test_meta_param_groups_errors_name_the_pattern(meta_groups, message):
    from plastic_rl import meta_param_groups

    with pytest.raises(ValueError, match=message):
        meta_param_groups(nn.Sequential(nn.Linear(2, 2)).named_parameters(), 1.0, meta_groups)
