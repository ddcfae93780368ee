"""Spiking plastic cells (SpikePropamine, Schmidgall et al. 2021).

Leaky integrate-and-fire (LIF) neurons whose recurrent weights are plastic,
``W + A ⊙ Hebb``, with the same rules and modulations as the rate cells and
through the same :class:`~plastic_rl.plasticity.Plasticity` object. One call is
one simulation step::

    I_t  = W_in x_t + b + (W + A ⊙ Hebb_{t-1}) s_{t-1}      # input current (x_t fed directly as current)
    u_t  = β v_{t-1} + I_t                                 # leaky integration (β = ``decay``)
    s_t  = H(u_t − ϑ)                                      # binary spikes (ϑ = ``threshold``)
    v_t  = u_t − ϑ s_t   ("subtract")   or   u_t (1 − s_t)   ("zero")
    x̄_t  = (1 − λ) x̄_{t-1} + λ s_t                         # low-pass filtered spike train (λ = ``trace_rate``)
    Hebb_t = rule(pre = x̄_{t-1}, post = x̄_t)                # Plasticity.update, neuromodulator reads x̄_t

Pre- and post-synaptic neurons of the recurrent matrix are the same neurons,
so one filtered train serves both: the presynaptic trace ``x̄_{t-1}`` holds the
spikes up to ``s_{t-1}`` (those that crossed the synapse at this step), the
postsynaptic ``x̄_t`` those up to ``s_t``. With ``trace_rate = 1`` the rule sees
the raw spikes (``pre = s_{t-1}``, ``post = s_t``).

Training by gradient uses a surrogate gradient: the forward pass emits exact
0/1 spikes; the backward pass replaces the Heaviside's derivative by that of a
fast sigmoid, ``1 / (slope |u − ϑ| + 1)²`` (SuperSpike, Zenke & Ganguli 2018).
By default the reset is detached from the graph (as snnTorch does), which
Zenke & Vogels (2021) found to train better; ``detach_reset=False`` keeps it.
Evolution strategies use the forward pass only, so for them the surrogate is
irrelevant and the cell runs as is.

:class:`LeakyReadoutSpikingCell` adds what an actor-critic needs: a non-spiking
leaky integrator ``z_t = κ z_{t-1} + (1 − κ) s_t`` of the spikes, returned as the
cell's output. Linear policy and value heads on ``z`` are exactly non-spiking
leaky-integrator output neurons driven by the spikes (a linear map commutes with
the filter), so ``RecurrentActorCritic(cell="spiking")`` decodes actions and
values from smooth membrane potentials rather than from single 0/1 steps.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from plastic_rl.cells import _make_plasticity, _StatefulModule, _uniform_
from plastic_rl.plasticity import PlasticityConfig, Traces, check_choice, check_positive_int, linear

RESETS = ("subtract", "zero")

__all__ = ["SpikingState", "ReadoutSpikingState", "PlasticSpikingCell", "LeakyReadoutSpikingCell", "spike", "RESETS"]


class _FastSigmoidSpike(torch.autograd.Function):
    """Heaviside ``H(u) = [u > 0]`` forward, fast-sigmoid derivative ``1 / (slope |u| + 1)²`` backward."""

    # setup_context style, so torch.func.vmap (EvoTorch's vmapped population forward) can run it.
    generate_vmap_rule = True

    @staticmethod
    def forward(u: Tensor, slope: float) -> Tensor:
        return (u > 0).to(u.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        u, slope = inputs
        ctx.slope = slope
        ctx.save_for_backward(u)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        (u,) = ctx.saved_tensors
        return grad_spikes / (ctx.slope * u.abs() + 1.0).pow(2), None


def spike(u: Tensor, slope: float) -> Tensor:
    """Binary spikes ``[u > 0]`` with the fast-sigmoid surrogate gradient of slope ``slope``.

    :param u: membrane potential minus threshold, any shape.
    :param slope: steepness of the surrogate; larger is closer to the true (zero almost everywhere) derivative.
    """
    if torch.is_grad_enabled() and u.requires_grad:
        return _FastSigmoidSpike.apply(u, slope)
    return (u > 0).to(u.dtype)


class SpikingState(NamedTuple):
    """State of :class:`PlasticSpikingCell`; ``trace`` and the plastic fields are ``(batch, 0)`` when unused."""

    v: Tensor  #: (batch, hidden) membrane potential after the reset
    spikes: Tensor  #: (batch, hidden) spikes of the last step, 0 or 1
    trace: Tensor  #: (batch, hidden) low-pass filtered spike train (plastic cells only)
    hebb: Tensor  #: (batch, hidden, hidden) [post, pre]
    eligibility: Tensor  #: (batch, hidden, hidden) for retroactive modulation
    theta: Tensor  #: (batch, hidden) BCM threshold


class ReadoutSpikingState(NamedTuple):
    """State of :class:`LeakyReadoutSpikingCell`: :class:`SpikingState` plus the leaky readout."""

    v: Tensor
    spikes: Tensor
    trace: Tensor
    readout: Tensor  #: (batch, hidden) leaky integral of the spikes, the cell's output
    hebb: Tensor
    eligibility: Tensor
    theta: Tensor


def _check_fraction(name: str, value: Any, low: float, high: float, low_open: bool, high_open: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}.")


class PlasticSpikingCell(_StatefulModule):
    """Recurrent layer of LIF neurons with plastic recurrent weights ``W + A ⊙ Hebb`` (SpikePropamine).

    See the module docstring for the equations. The output of a step is the
    binary spike vector ``s_t``. With ``alpha = 0`` (or ``plastic=False``) it is an
    ordinary recurrent LIF layer.

    :param input_size: number of input features (fed directly as input current).
    :param hidden_size: number of LIF neurons.
    :param plastic: if False, no plasticity parameters are created (the non-plastic baseline).
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param decay: membrane decay β per step, in [0, 1).
    :param threshold: firing threshold ϑ > 0.
    :param reset: ``"subtract"`` (v − ϑ after a spike) or ``"zero"`` (v = 0 after a spike).
    :param surrogate_slope: slope of the fast-sigmoid surrogate gradient (> 0).
    :param trace_rate: rate λ in (0, 1] of the low-pass filter of the spike trains the rule reads.
    :param detach_reset: if True (default), no gradient flows through the reset.
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``
        (``modulation``, ``rule``, ``clip``, ``modulator_fanout``, ``alpha_init``, ``alpha_scale``, ``binary_plasticity``, ``eta_init``, ``bcm_tau``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        plastic: bool = True,
        plasticity: Optional[PlasticityConfig] = None,
        decay: float = 0.8,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate_slope: float = 5.0,
        trace_rate: float = 0.5,
        detach_reset: bool = True,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        _check_fraction("decay", decay, 0.0, 1.0, low_open=False, high_open=True)
        _check_fraction("trace_rate", trace_rate, 0.0, 1.0, low_open=True, high_open=False)
        for name, value in (("threshold", threshold), ("surrogate_slope", surrogate_slope)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number; got {value!r}.")
        check_choice("reset", reset, RESETS)
        if not isinstance(detach_reset, bool):
            raise ValueError(f"detach_reset must be True or False; got {detach_reset!r}.")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.decay, self.threshold, self.reset = float(decay), float(threshold), reset
        self.surrogate_slope, self.trace_rate, self.detach_reset = float(surrogate_slope), float(trace_rate), detach_reset
        # Input weights uniform in ±threshold, not ±1/sqrt(fan) as in the rate cells: one input
        # feature of size 1 can then fire a resting neuron, so sparse and one-hot inputs show up in
        # the spikes from the first step (with 1/sqrt(fan) they stay silent and get almost no
        # surrogate gradient).
        self.weight_ih = nn.Parameter(nn.init.uniform_(torch.empty(hidden_size, input_size), -threshold, threshold))
        self.weight_hh = nn.Parameter(_uniform_(torch.empty(hidden_size, hidden_size), hidden_size))
        self.bias = nn.Parameter(_uniform_(torch.empty(hidden_size), hidden_size))
        self.plasticity = _make_plasticity(plastic, hidden_size, hidden_size, plasticity, fields)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, decay={self.decay}, threshold={self.threshold}, "
            f"reset={self.reset!r}, surrogate_slope={self.surrogate_slope}, trace_rate={self.trace_rate}"
        )

    def initial_state(self, batch_size: int) -> SpikingState:
        """Resting membranes, no spikes, zero traces for ``batch_size`` episodes."""
        check_positive_int("batch_size", batch_size)
        device, dtype = self._device_dtype()
        zeros = lambda width: torch.zeros(batch_size, width, device=device, dtype=dtype)  # noqa: E731
        trace = zeros(self.hidden_size if self.plasticity is not None else 0)
        return SpikingState(zeros(self.hidden_size), zeros(self.hidden_size), trace, *self._traces(batch_size))

    def forward(self, x: Tensor, state: Optional[SpikingState] = None):
        """One simulation step. Returns ``(spikes, new_state)``; ``state=None`` starts a new episode."""
        state = self._prepare(x, state, type(self).__name__)
        pre_spikes = state.spikes
        current = linear(x, self.weight_ih, self.bias) + linear(pre_spikes, self.weight_hh)
        traces = Traces(state.hebb, state.eligibility, state.theta)
        if self.plasticity is not None:
            current = current + self.plasticity.contribution(pre_spikes, traces)
        u = self.decay * state.v + current
        spikes = spike(u - self.threshold, self.surrogate_slope)
        fired = spikes.detach() if self.detach_reset else spikes
        v = u - self.threshold * fired if self.reset == "subtract" else u * (1 - fired)
        if self.plasticity is None:
            return spikes, state._replace(v=v, spikes=spikes)
        trace = (1 - self.trace_rate) * state.trace + self.trace_rate * spikes
        traces = self.plasticity.update(pre=state.trace, post=trace, traces=traces)
        return spikes, SpikingState(v, spikes, trace, *traces)


class LeakyReadoutSpikingCell(PlasticSpikingCell):
    """:class:`PlasticSpikingCell` whose output is a non-spiking leaky integral of its spikes.

    ``z_t = κ z_{t-1} + (1 − κ) s_t`` (κ = ``readout_decay``); the spikes, traces and
    parameters are those of :class:`PlasticSpikingCell`. This is the cell behind
    ``RecurrentActorCritic(cell="spiking")``: its linear heads on ``z`` are leaky
    integrator output neurons, so actions and values change smoothly even though
    each neuron's output is 0 or 1 at every step.

    :param input_size: number of input features.
    :param hidden_size: number of LIF neurons.
    :param readout_decay: κ in [0, 1); 0 reads the current spikes only.
    :param kwargs: every other argument of :class:`PlasticSpikingCell` (``plastic``, ``plasticity``,
        ``decay``, ``threshold``, ``reset``, ``surrogate_slope``, ``trace_rate``, ``detach_reset``,
        and the plasticity fields).
    """

    def __init__(self, input_size: int, hidden_size: int, readout_decay: float = 0.5, **kwargs: Any) -> None:
        super().__init__(input_size, hidden_size, **kwargs)
        _check_fraction("readout_decay", readout_decay, 0.0, 1.0, low_open=False, high_open=True)
        self.readout_decay = float(readout_decay)

    def initial_state(self, batch_size: int) -> ReadoutSpikingState:
        """:class:`PlasticSpikingCell`'s initial state plus a zero readout."""
        s = super().initial_state(batch_size)
        return ReadoutSpikingState(s.v, s.spikes, s.trace, torch.zeros_like(s.v), s.hebb, s.eligibility, s.theta)

    def forward(self, x: Tensor, state: Optional[ReadoutSpikingState] = None):
        """One step. Returns ``(readout z_t, new_state)``; ``state=None`` starts a new episode."""
        state = self._prepare(x, state, type(self).__name__)
        spikes, s = super().forward(x, SpikingState(state.v, state.spikes, state.trace, state.hebb, state.eligibility, state.theta))
        readout = self.readout_decay * state.readout + (1 - self.readout_decay) * spikes
        return readout, ReadoutSpikingState(s.v, s.spikes, s.trace, readout, s.hebb, s.eligibility, s.theta)
