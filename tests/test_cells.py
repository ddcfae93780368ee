"""The plastic core: equivalences, gradients, trace bounds, batch independence, reset, errors."""

import itertools

import pytest
import torch

from plastic_rl import (
    MODULATIONS,
    RULES,
    LinearState,
    LSTMState,
    PlasticLinear,
    PlasticLSTMCell,
    PlasticRNNCell,
    RNNState,
)

CELLS = [PlasticRNNCell, PlasticLSTMCell, PlasticLinear]


def make(cls, modulation="simple", rule="hebbian", **kw):
    return cls(5, 6, modulation=modulation, rule=rule, **kw)


def rollout(module, xs, state=None):
    outs = []
    for x in xs:
        out, state = module(x, state)
        outs.append(out)
    return torch.stack(outs), state


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- equivalences
@pytest.mark.parametrize("modulation", MODULATIONS)
def test_rnn_cell_with_zero_alpha_is_elman(modulation):
    cell = PlasticRNNCell(4, 7, modulation=modulation).double()
    with torch.no_grad():
        cell.plasticity.alpha.zero_()
    ref = torch.nn.RNNCell(4, 7, nonlinearity="tanh").double()
    with torch.no_grad():
        ref.weight_ih.copy_(cell.weight_ih)
        ref.weight_hh.copy_(cell.weight_hh)
        ref.bias_ih.copy_(cell.bias)
        ref.bias_hh.zero_()
    xs = torch.randn(12, 3, 4, dtype=torch.float64)
    state, h_ref = cell.initial_state(3), torch.zeros(3, 7, dtype=torch.float64)
    for x in xs:
        h, state = cell(x, state)
        h_ref = ref(x, h_ref)
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-12)
    # The traces did change (so the equality is not because nothing plastic ran).
    assert state.hebb.abs().sum() > 0


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_lstm_cell_with_zero_alpha_is_torch_lstm(modulation):
    cell = PlasticLSTMCell(4, 7, modulation=modulation).double()
    with torch.no_grad():
        cell.plasticity.alpha.zero_()
    ref = torch.nn.LSTMCell(4, 7).double()
    ref.load_state_dict({k: getattr(cell, k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    xs = torch.randn(12, 3, 4, dtype=torch.float64)
    state = cell.initial_state(3)
    h_ref = c_ref = torch.zeros(3, 7, dtype=torch.float64)
    for x in xs:
        h, state = cell(x, state)
        h_ref, c_ref = ref(x, (h_ref, c_ref))
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(state.c, c_ref, rtol=0, atol=1e-12)
    assert state.hebb.abs().sum() > 0


def test_non_plastic_modules_are_the_ordinary_networks():
    rnn = PlasticRNNCell(4, 7, plastic=False)
    lstm = PlasticLSTMCell(4, 7, plastic=False)
    lin = PlasticLinear(4, 7, plastic=False, activation="relu")
    assert {n for n, _ in rnn.named_parameters()} == {"weight_ih", "weight_hh", "bias"}
    assert {n for n, _ in lstm.named_parameters()} == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    assert {n for n, _ in lin.named_parameters()} == {"weight", "bias"}
    x = torch.randn(3, 4)
    y, state = lin(x)
    torch.testing.assert_close(y, torch.relu(x @ lin.weight.T + lin.bias))
    assert state.hebb.shape == (3, 0)


def test_plastic_linear_with_zero_alpha_is_linear():
    layer = PlasticLinear(4, 7, activation="tanh").double()
    with torch.no_grad():
        layer.plasticity.alpha.zero_()
    xs, state = torch.randn(6, 2, 4, dtype=torch.float64), None
    for x in xs:
        y, state = layer(x, state)
        torch.testing.assert_close(y, torch.tanh(x @ layer.weight.T + layer.bias))


def test_plastic_contribution_uses_the_trace():
    """With a known trace, the plastic term is (alpha ⊙ hebb) @ pre for each batch row separately."""
    layer = PlasticLinear(3, 2, activation="identity", modulation="none").double()
    state = layer.initial_state(2)
    hebb = torch.randn(2, 2, 3, dtype=torch.float64).clamp(-1, 1)
    state = state._replace(hebb=hebb)
    x = torch.randn(2, 3, dtype=torch.float64)
    y, _ = layer(x, state)
    expected = x @ layer.weight.T + layer.bias + torch.einsum("boi,bi->bo", layer.plasticity.alpha * hebb, x)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("cls", CELLS)
def test_alpha_scale_is_a_reparametrization(cls):
    """alpha_scale=s stores alpha / s: with the parameter set to alpha / s the module computes what
    alpha_scale=1 computes with alpha, and the gradient wrt the stored parameter is s times larger."""
    base = make(cls, modulation="retroactive", clip=5.0, alpha_init=0.5).double()
    scaled = make(cls, modulation="retroactive", clip=5.0, alpha_init=0.5, alpha_scale=0.1).double()
    scaled.load_state_dict(base.state_dict())
    with torch.no_grad():
        scaled.plasticity.alpha.div_(0.1)
    xs = torch.randn(4, 3, 5, dtype=torch.float64)
    out_base, _ = rollout(base, xs)
    out_scaled, _ = rollout(scaled, xs)
    torch.testing.assert_close(out_scaled, out_base)
    out_base.sum().backward()
    out_scaled.sum().backward()
    torch.testing.assert_close(scaled.plasticity.alpha.grad, 0.1 * base.plasticity.alpha.grad)
    torch.testing.assert_close(scaled.plasticity.effective_alpha(), base.plasticity.alpha)


def test_alpha_scale_keeps_alpha_init_as_the_effective_start():
    """The stored parameter starts at alpha_init / alpha_scale * U[0, 1], so the effective alpha starts as before."""
    torch.manual_seed(3)
    plain = PlasticLinear(30, 40, alpha_init=0.01).plasticity.alpha.detach()
    torch.manual_seed(3)
    layer = PlasticLinear(30, 40, alpha_init=0.01, alpha_scale=0.25)
    torch.testing.assert_close(layer.plasticity.alpha.detach(), plain / 0.25)
    torch.testing.assert_close(layer.plasticity.effective_alpha().detach(), plain)


def test_trace_update_equations_hebbian():
    """One step of each modulation mode against the equations written out by hand."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, dtype=torch.float64)
    for modulation in MODULATIONS:
        layer = PlasticLinear(3, 4, modulation=modulation, clip=10.0).double()
        s0 = layer.initial_state(2)
        s0 = s0._replace(hebb=0.1 * torch.randn(2, 4, 3, dtype=torch.float64))
        if modulation == "retroactive":
            s0 = s0._replace(eligibility=0.1 * torch.randn(2, 4, 3, dtype=torch.float64))
        y, s1 = layer(x, s0)
        delta = y.unsqueeze(2) * x.unsqueeze(1)
        p = layer.plasticity
        if modulation == "none":
            expected = s0.hebb + p.eta * delta
        else:
            m = torch.tanh(p.modulator(y)).unsqueeze(2)
            if modulation == "simple":
                expected = s0.hebb + m * delta
            else:
                expected = s0.hebb + m * s0.eligibility
                torch.testing.assert_close(s1.eligibility, (1 - p.eta) * s0.eligibility + p.eta * delta)
        torch.testing.assert_close(s1.hebb, expected)


def test_rules_match_their_equations():
    torch.manual_seed(2)
    x = torch.randn(2, 3, dtype=torch.float64)
    for rule in ("oja", "bcm", "abcd"):
        layer = PlasticLinear(3, 4, modulation="none", rule=rule, clip=10.0).double()
        s0 = layer.initial_state(2)._replace(hebb=0.1 * torch.randn(2, 4, 3, dtype=torch.float64))
        if rule == "bcm":
            s0 = s0._replace(theta=torch.rand(2, 4, dtype=torch.float64))
        y, s1 = layer(x, s0)
        xi, yj = x.unsqueeze(1), y.unsqueeze(2)
        p = layer.plasticity
        if rule == "oja":
            delta = yj * (xi - yj * s0.hebb)
        elif rule == "bcm":
            delta = xi * yj * (yj - s0.theta.unsqueeze(2))
            torch.testing.assert_close(s1.theta, 0.9 * s0.theta + 0.1 * y**2)
        else:
            delta = p.rule_a * xi * yj + p.rule_b * xi + p.rule_c * yj + p.rule_d
        torch.testing.assert_close(s1.hebb, s0.hebb + p.eta * delta)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("cls,modulation", list(itertools.product(CELLS, MODULATIONS)))
def test_gradcheck_through_several_steps(cls, modulation):
    # A large clip keeps the traces away from the non-differentiable clamp boundary.
    module = make(cls, modulation=modulation, clip=50.0, alpha_init=0.5, eta_init=0.3).double()
    xs = torch.randn(4, 2, 5, dtype=torch.float64, requires_grad=True)

    def f(xs, *params):
        out, state = rollout(module, xs)
        return out.sum() + state.hebb.sum()

    assert torch.autograd.gradcheck(lambda xs: f(xs), (xs,))
    # Gradients reach alpha, the modulator and eta.
    out, state = rollout(module, xs.detach())
    (out.pow(2).sum() + state.hebb.sum()).backward()
    p = module.plasticity
    assert p.alpha.grad is not None and p.alpha.grad.abs().sum() > 0
    if modulation != "none":
        assert p.modulator.weight.grad.abs().sum() > 0
    if modulation != "simple":
        assert p.eta.grad.abs() > 0


@pytest.mark.parametrize("modulation", MODULATIONS)
def test_gradcheck_wrt_plastic_parameters(modulation):
    """gradcheck with respect to alpha, eta and the modulator themselves, through 4 steps."""
    cell = PlasticRNNCell(3, 4, modulation=modulation, clip=50.0, alpha_init=0.5, eta_init=0.3).double()
    xs = torch.randn(4, 2, 3, dtype=torch.float64)
    names = ["alpha"] + (["eta"] if modulation != "simple" else []) + (["modulator.weight"] if modulation != "none" else [])
    inputs = tuple(cell.plasticity.get_parameter(n).detach().clone().requires_grad_(True) for n in names)

    def loss(*values):
        params = {f"plasticity.{n}": v for n, v in zip(names, values)}
        state, outs = None, []
        for x in xs:
            h, state = torch.func.functional_call(cell, params, (x, state))
            outs.append(h)
        return torch.stack(outs).sum() + state.hebb.sum()

    assert torch.autograd.gradcheck(loss, inputs)


# --------------------------------------------------------------------------- traces, batches, reset
@pytest.mark.parametrize("cls,modulation,rule", list(itertools.product(CELLS, MODULATIONS, RULES)))
def test_traces_stay_within_clip(cls, modulation, rule):
    module = make(cls, modulation=modulation, rule=rule, clip=0.3, alpha_init=1.0, eta_init=0.9)
    with torch.no_grad():
        _, state = rollout(module, 5 * torch.randn(30, 4, 5))
    assert state.hebb.abs().max() <= 0.3 + 1e-6
    assert state.hebb.abs().max() > 0.29  # the clip was actually reached


@pytest.mark.parametrize("cls,modulation,rule", list(itertools.product(CELLS, MODULATIONS, ("hebbian", "bcm"))))
def test_batch_rows_are_independent(cls, modulation, rule):
    module = make(cls, modulation=modulation, rule=rule)
    xs = torch.randn(8, 4, 5)
    with torch.no_grad():
        out_full, state_full = rollout(module, xs)
        for b in range(4):
            out_b, state_b = rollout(module, xs[:, b : b + 1])
            torch.testing.assert_close(out_full[:, b : b + 1], out_b, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(state_full.hebb[b : b + 1], state_b.hebb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", CELLS)
def test_reset_state_zeroes_exactly_the_done_rows(cls):
    module = make(cls, modulation="retroactive", rule="bcm")
    with torch.no_grad():
        _, state = rollout(module, torch.randn(5, 4, 5))
    done = torch.tensor([True, False, True, False])
    reset = module.reset_state(state, done)
    assert type(reset) is type(state)
    for before, after in zip(state, reset):
        assert torch.all(after[done] == 0)
        torch.testing.assert_close(after[~done], before[~done])
        assert before[~done].abs().sum() > 0
    fresh = module.initial_state(4)
    for after, zero in zip(reset, fresh):
        torch.testing.assert_close(after[done], zero[done])


def test_state_types_and_unused_fields_are_zero_width():
    assert isinstance(PlasticRNNCell(3, 4).initial_state(2), RNNState)
    assert isinstance(PlasticLSTMCell(3, 4).initial_state(2), LSTMState)
    s = PlasticLinear(3, 4, modulation="simple").initial_state(2)
    assert isinstance(s, LinearState)
    assert s.hebb.shape == (2, 4, 3) and s.eligibility.shape == (2, 0) and s.theta.shape == (2, 0)
    s = PlasticLinear(3, 4, modulation="retroactive", rule="bcm").initial_state(2)
    assert s.eligibility.shape == (2, 4, 3) and s.theta.shape == (2, 4)


def test_forward_does_not_mutate_module_attributes():
    cell = PlasticRNNCell(3, 4)
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    buffers_before = dict(cell.named_buffers())
    rollout(cell, torch.randn(5, 2, 3))
    assert dict(cell.named_buffers()) == buffers_before
    for k, v in cell.state_dict().items():
        assert torch.equal(v, before[k])


# --------------------------------------------------------------------------- parameters created
def test_only_used_parameters_are_created():
    def names(**kw):
        return {n for n, _ in PlasticRNNCell(3, 4, **kw).plasticity.named_parameters()}

    assert names(modulation="none") == {"alpha", "eta"}
    assert names(modulation="simple") == {"alpha", "modulator.weight", "modulator.bias"}
    assert names(modulation="retroactive") == {"alpha", "eta", "modulator.weight", "modulator.bias"}
    assert names(modulation="simple", modulator_fanout=True) == {
        "alpha", "modulator.weight", "modulator.bias", "modulator_fanout"
    }
    assert names(modulation="none", rule="abcd") == {"alpha", "eta", "rule_a", "rule_b", "rule_c", "rule_d"}
    assert PlasticRNNCell(3, 4).plasticity.alpha.shape == (4, 4)
    assert PlasticLinear(3, 5).plasticity.alpha.shape == (5, 3)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(modulation="strong"), r"modulation must be one of 'none', 'simple', 'retroactive'"),
        (dict(rule="stdp"), r"rule must be one of 'hebbian', 'oja', 'bcm', 'abcd'"),
        (dict(rule="stdp", plastic=False), r"rule must be one of"),
        (dict(clip=0.0), r"clip must be a positive number"),
        (dict(alpha_scale=0.0), r"alpha_scale must be a positive number"),
        (dict(alpha_scale=float("inf")), r"alpha_scale must be a finite number"),
    ],
)
@pytest.mark.parametrize("cls", CELLS)
def test_bad_arguments_raise_value_error(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(cls, **{**dict(modulation="simple"), **kwargs})


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("sizes", [(0, 4), (3, -1), (3, 2.5)])
def test_non_positive_sizes_raise(cls, sizes):
    with pytest.raises(ValueError, match="must be a positive integer"):
        cls(*sizes)


@pytest.mark.parametrize("cls", CELLS)
def test_state_of_wrong_batch_size_raises(cls):
    module = make(cls)
    with pytest.raises(ValueError, match=r"state must have batch size 3 \(that of the input\); got batch size 2"):
        module(torch.randn(3, 5), module.initial_state(2))
    with pytest.raises(ValueError, match=r"done must have shape \(2,\)"):
        module.reset_state(module.initial_state(2), torch.tensor([True]))


def test_follows_parameter_dtype_and_device():
    cell = PlasticLSTMCell(3, 4, modulation="retroactive").to(torch.float64)
    state = cell.initial_state(2)
    assert all(t.dtype == torch.float64 for t in state)
    h, state = cell(torch.randn(2, 3, dtype=torch.float64), state)
    assert h.dtype == torch.float64 and state.hebb.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_gpu():
    cell = PlasticRNNCell(3, 4, modulation="retroactive").cuda()
    h, state = cell(torch.randn(2, 3, device="cuda"))
    assert h.is_cuda and state.hebb.is_cuda and state.eligibility.is_cuda
