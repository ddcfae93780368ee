"""The plastic core on a GPU gives what it gives on the CPU: outputs, traces and gradients.

Every test here needs CUDA and is skipped without it (CI has no GPU). Each module is
built once on the CPU in float64, copied to the GPU, and both copies run the same
episode; the outputs, the final state and every parameter's gradient must agree to
float64 round-off. This covers the fused autograd functions (``_PlasticMatVec``,
``_RetroactiveUpdate``) and the per-row parameters of an ES population, whose CUDA
paths CPU tests never reach.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call

from plastic_rl import (
    MODULATIONS,
    RULES,
    BinaryLinear,
    MetaplasticAdam,
    PlasticLinear,
    PlasticLSTMCell,
    PlasticRNNCell,
    PlasticSpikingCell,
    StochasticBinaryLinear,
)
from plastic_rl.state import flatten_state

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

STEPS, BATCH, INPUTS, HIDDEN = 12, 3, 5, 7


def _episode(module, xs):
    """Outputs of every step and the final state of a stateful module over ``xs`` ``(T, B, in)``."""
    outs, state = [], None
    for x in xs:
        out, state = module(x, state)
        outs.append(out)
    return torch.stack(outs), state


def _cpu_and_gpu(module, xs, stateful=True):
    """Run ``module`` (float64, CPU) and its GPU copy on ``xs``; backpropagate the same scalar through both."""
    module = module.double()
    gpu = copy.deepcopy(module).cuda()
    results = []
    for m, x in ((module, xs.double()), (gpu, xs.double().cuda())):
        if stateful:
            out, state = _episode(m, x)
            leaves = flatten_state(state)
        else:
            out, leaves = m(x), []
        (out.sin().sum() + sum(t.sum() for t in leaves)).backward()
        grads = {name: p.grad for name, p in m.named_parameters() if p.grad is not None}
        results.append((out, leaves, grads))
    return results


def _assert_same(cpu, gpu):
    (out_c, state_c, grads_c), (out_g, state_g, grads_g) = cpu, gpu
    assert out_g.is_cuda
    torch.testing.assert_close(out_g.cpu(), out_c, rtol=1e-9, atol=1e-10)
    assert len(state_c) == len(state_g)
    for a, b in zip(state_c, state_g):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-9, atol=1e-10)
    assert grads_c and set(grads_c) == set(grads_g)
    for name in grads_c:
        torch.testing.assert_close(grads_g[name].cpu(), grads_c[name], rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("cls, modulation, rule", list(itertools.product(
    [PlasticRNNCell, PlasticLSTMCell, PlasticLinear], MODULATIONS, RULES)))
def test_plastic_cells_match_the_cpu(cls, modulation, rule):
    torch.manual_seed(0)
    module = cls(INPUTS, HIDDEN, modulation=modulation, rule=rule)
    xs = torch.randn(STEPS, BATCH, INPUTS)
    _assert_same(*_cpu_and_gpu(module, xs))


class _Unroll(nn.Module):
    """A cell over a whole sequence, so that ``functional_call`` can swap its parameters for per-row ones."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, xs):
        return _episode(self.cell, xs)[0]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("modulation", MODULATIONS)
def test_per_row_parameters_match_the_cpu(modulation, rule):
    """An ES population's layout: every batch row carries its own plastic parameters."""
    torch.manual_seed(1)
    unroll = _Unroll(PlasticRNNCell(INPUTS, HIDDEN, modulation=modulation, rule=rule)).double()
    rows = {f"cell.plasticity.{name}": p.detach().unsqueeze(0) + 0.1 * torch.randn(BATCH, *p.shape, dtype=p.dtype)
            for name, p in unroll.cell.plasticity.named_parameters()}
    xs = torch.randn(STEPS, BATCH, INPUTS, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        m = copy.deepcopy(unroll).to(device)
        params = {name: value.clone().to(device).requires_grad_() for name, value in rows.items()}
        outs = functional_call(m, params, (xs.to(device),))
        outs.sin().sum().backward()
        results.append((outs.cpu(), {name: p.grad.cpu() for name, p in params.items()}))
    (out_c, grads_c), (out_g, grads_g) = results
    torch.testing.assert_close(out_g, out_c, rtol=1e-9, atol=1e-10)
    for name in grads_c:
        torch.testing.assert_close(grads_g[name], grads_c[name], rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("modulation", ["none", "simple"])
def test_spiking_cell_matches_the_cpu(modulation):
    torch.manual_seed(3)
    module = PlasticSpikingCell(INPUTS, HIDDEN, modulation=modulation)
    xs = 2.0 * torch.rand(STEPS, BATCH, INPUTS)
    _assert_same(*_cpu_and_gpu(module, xs))


@pytest.mark.parametrize("binary_activations", [False, True])
def test_binary_linear_matches_the_cpu(binary_activations):
    torch.manual_seed(4)
    module = BinaryLinear(INPUTS, HIDDEN, binary_activations=binary_activations)
    _assert_same(*_cpu_and_gpu(module, torch.randn(BATCH, INPUTS), stateful=False))


def test_stochastic_binary_linear_matches_the_cpu():
    torch.manual_seed(5)
    module = StochasticBinaryLinear(INPUTS, HIDDEN)
    _assert_same(*_cpu_and_gpu(module, torch.randn(BATCH, INPUTS), stateful=False))


def test_metaplastic_adam_steps_match_the_cpu():
    torch.manual_seed(6)
    weights = [torch.randn(HIDDEN, INPUTS, dtype=torch.float64), torch.randn(HIDDEN, dtype=torch.float64)]
    grads = [[torch.randn_like(w) for w in weights] for _ in range(20)]
    finals = []
    for device in ("cpu", "cuda"):
        params = [torch.nn.Parameter(w.clone().to(device)) for w in weights]
        optimizer = MetaplasticAdam(params, lr=0.05, meta=2.0)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.to(device)
            optimizer.step()
        finals.append([p.detach().cpu() for p in params])
    for a, b in zip(*finals):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
