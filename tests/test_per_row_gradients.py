"""Gradients with one set of plastic parameters per batch row (the ES population's layout).

``plasticity.linear`` and ``per_sample`` let every batch row carry its own alpha, η and
modulator weights. The fused backwards (``_PlasticMatVec``, ``_RetroactiveUpdate``) must
then return one gradient per row, not a sum over the batch: each row's gradient is
checked against the same row run alone with ordinary (shared) parameters.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from plastic_rl.plasticity import Plasticity


class _Unroll(nn.Module):
    """A few steps of a plastic connection: y = tanh(drive + (alpha ⊙ hebb) x), traces updated from (x, y)."""

    def __init__(self, plasticity: Plasticity) -> None:
        super().__init__()
        self.plasticity = plasticity

    def forward(self, pre_seq, drive_seq):
        traces = self.plasticity.initial_traces(pre_seq.shape[1])
        loss = 0.0
        for pre, drive in zip(pre_seq, drive_seq):
            post = torch.tanh(drive + self.plasticity.contribution(pre, traces))
            loss = loss + (post * drive).sum()
            traces = self.plasticity.update(pre, post, traces)
        return loss + traces.hebb.pow(2).sum()


@pytest.mark.parametrize("rule", ["hebbian", "oja"])
@pytest.mark.parametrize("modulation", ["none", "simple", "retroactive"])
def test_per_row_parameters_get_each_rows_own_gradient(modulation, rule):
    torch.manual_seed(0)
    batch, n_in, n_out, steps = 3, 4, 5, 6
    unroll = _Unroll(Plasticity(n_in, n_out, modulation=modulation, rule=rule, clip=0.5, eta_init=0.3)).double()
    shared = dict(unroll.named_parameters())
    # One parameter set per row: the shared values, perturbed differently in each row.
    rows = {name: (p.detach().unsqueeze(0) + 0.3 * torch.randn(batch, *p.shape, dtype=p.dtype)).requires_grad_()
            for name, p in shared.items()}
    pre = 2 * torch.randn(steps, batch, n_in, dtype=torch.float64)
    drive = 2 * torch.randn(steps, batch, n_out, dtype=torch.float64)

    functional_call(unroll, rows, (pre, drive)).backward()

    for b in range(batch):
        alone = {name: value[b].detach().clone().requires_grad_() for name, value in rows.items()}
        functional_call(unroll, alone, (pre[:, b : b + 1], drive[:, b : b + 1])).backward()
        for name in rows:
            torch.testing.assert_close(rows[name].grad[b], alone[name].grad, msg=f"{name}, row {b}")
