"""Plastic recurrent cells and the plastic linear layer.

Every module is functional about its per-episode state::

    state = module.initial_state(batch_size)   # NamedTuple of batch-first tensors
    out, state = module(x, state)              # one time step
    state = module.reset_state(state, done)    # zero the rows whose episode ended

With ``plastic=False`` a module has no plasticity parameters at all (no alpha,
η or modulator) and is the ordinary network: an Elman cell, ``nn.LSTMCell``, or
``nn.Linear`` + activation. Its state keeps the same fields, with zero-width
traces, so trainers treat both alike.

With ``binary=True`` the fixed weights are binarized: the forward uses
``sign(W_h) / sqrt(fan_in)`` of the real hidden weights ``W_h`` (straight-through
gradient, :func:`plastic_rl.binary.binarize`), while the plastic term
``alpha ⊙ Hebb`` stays real-valued on top of them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from plastic_rl import state as state_ops
from plastic_rl.binary import binarize
from plastic_rl.plasticity import Plasticity, PlasticityConfig, Traces, check_choice, check_positive_int, linear, plasticity_config

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


class RNNState(NamedTuple):
    """State of :class:`PlasticRNNCell`; trace fields are ``(batch, 0)`` when unused."""

    h: Tensor  #: (batch, hidden)
    hebb: Tensor  #: (batch, hidden, hidden) [post, pre]
    eligibility: Tensor  #: (batch, hidden, hidden) for retroactive modulation
    theta: Tensor  #: (batch, hidden) BCM threshold


class LSTMState(NamedTuple):
    """State of :class:`PlasticLSTMCell`; trace fields are ``(batch, 0)`` when unused."""

    h: Tensor  #: (batch, hidden)
    c: Tensor  #: (batch, hidden)
    hebb: Tensor  #: (batch, hidden, hidden) plastic h→g weights [post g, pre h]
    eligibility: Tensor
    theta: Tensor


class LinearState(NamedTuple):
    """State of :class:`PlasticLinear`; trace fields are ``(batch, 0)`` when unused."""

    hebb: Tensor  #: (batch, out, in)
    eligibility: Tensor
    theta: Tensor


def _uniform_(tensor: Tensor, fan: int) -> Tensor:
    # torch's default RNN initialisation: U(-1/sqrt(hidden), 1/sqrt(hidden)).
    bound = 1.0 / math.sqrt(fan)
    return nn.init.uniform_(tensor, -bound, bound)


class _StatefulModule(nn.Module):
    """Shared state plumbing: device/dtype discovery, batch checks, reset."""

    plasticity: Optional[Plasticity]
    binary: bool = False
    binary_scale: Optional[float] = None  # magnitude of a binary weight; None: 1 / sqrt(fan_in)

    def _weight(self, weight: Tensor) -> Tensor:
        """The fixed weight the forward uses: ``weight`` itself, or (``binary``) ``sign(weight) / sqrt(fan_in)``.

        The ``1 / sqrt(fan_in)`` keeps a binary layer's pre-activation at the scale of
        the real-valued initialisation (no batch norm in a policy); ``binary_scale``,
        where a layer sets it, replaces it. The gradient goes straight through to the
        real hidden weight. ``weight`` may carry a leading batch dimension (one weight
        set per episode, the ES population forward).
        """
        if not self.binary:
            return weight
        scale = self.binary_scale if self.binary_scale is not None else 1.0 / math.sqrt(weight.shape[-1])
        return binarize(weight) * scale

    def _device_dtype(self):
        p = next(self.parameters())
        return p.device, p.dtype

    def _empty_traces(self, batch_size: int) -> Traces:
        device, dtype = self._device_dtype()
        zero = torch.zeros(batch_size, 0, device=device, dtype=dtype)
        return Traces(zero, zero, zero)

    def _traces(self, batch_size: int) -> Traces:
        if self.plasticity is None:
            return self._empty_traces(batch_size)
        return self.plasticity.initial_traces(batch_size)

    def _prepare(self, x: Tensor, state, name: str):
        if x.dim() != 2:
            raise ValueError(f"{name} input must have shape (batch, features); got {tuple(x.shape)}.")
        if state is None:
            return self.initial_state(x.shape[0])
        state_ops.check_batch_size(state, x.shape[0])
        return state

    @staticmethod
    def reset_state(state, done: Tensor):
        """Zero the rows of ``state`` whose episode ended (``done[b]`` true)."""
        return state_ops.reset_state(state, done)

    @property
    def is_plastic(self) -> bool:
        return self.plasticity is not None


def _make_plasticity(
    plastic: bool, in_features: int, out_features: int, plasticity: Optional[PlasticityConfig], fields: dict
) -> Optional[Plasticity]:
    # The config is built (and so validated) even for the non-plastic baseline, so a typo is caught there too.
    config = plasticity_config(plasticity, **fields)
    return Plasticity(in_features, out_features, config) if plastic else None


class PlasticRNNCell(_StatefulModule):
    """Backpropamine's plastic recurrent cell.

    ``h_t = tanh(W_in x_t + b + (W + A ⊙ Hebb_{t-1}) h_{t-1})``, the trace updated
    from pre ``h_{t-1}`` and post ``h_t``, the neuromodulator read from ``h_t``.
    With ``alpha = 0`` (or ``plastic=False``) this is exactly an Elman RNN cell.

    :param input_size: number of input features.
    :param hidden_size: number of recurrent units.
    :param plastic: if False, no plasticity parameters are created (the non-plastic baseline).
    :param binary: binarize ``weight_ih`` and ``weight_hh`` (see the module docstring); the bias stays real.
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``
        (``modulation``, ``rule``, ``clip``, ``modulator_fanout``, ``alpha_init``, ``alpha_scale``, ``binary_plasticity``, ``eta_init``, ``bcm_tau``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        plastic: bool = True,
        plasticity: Optional[PlasticityConfig] = None,
        binary: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.binary = bool(binary)
        self.weight_ih = nn.Parameter(_uniform_(torch.empty(hidden_size, input_size), hidden_size))
        self.weight_hh = nn.Parameter(_uniform_(torch.empty(hidden_size, hidden_size), hidden_size))
        self.bias = nn.Parameter(_uniform_(torch.empty(hidden_size), hidden_size))
        self.plasticity = _make_plasticity(plastic, hidden_size, hidden_size, plasticity, fields)

    def initial_state(self, batch_size: int) -> RNNState:
        """Zero hidden state and traces for ``batch_size`` episodes."""
        check_positive_int("batch_size", batch_size)
        device, dtype = self._device_dtype()
        return RNNState(torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype), *self._traces(batch_size))

    def project_input(self, x: Tensor) -> Tensor:
        """``W_in x + b`` for inputs of any leading shape (e.g. a whole ``(L, B, F)`` sequence in one matmul)."""
        return linear(x, self._weight(self.weight_ih), self.bias)

    def forward(self, x: Tensor, state: Optional[RNNState] = None, projected_input: Optional[Tensor] = None):
        """One step. Returns ``(h_t, new_state)``; ``state=None`` starts a new episode.

        :param projected_input: ``project_input(x)`` if already computed (the sequence runner of
            :class:`~plastic_rl.policies.RecurrentActorCritic` projects a whole sequence at once).
        """
        state = self._prepare(x, state, "PlasticRNNCell")
        h_prev = state.h
        if projected_input is None:
            projected_input = self.project_input(x)
        pre_activation = projected_input + linear(h_prev, self._weight(self.weight_hh))
        if self.plasticity is None:
            h = torch.tanh(pre_activation)
            return h, state._replace(h=h)
        traces = Traces(state.hebb, state.eligibility, state.theta)
        h = torch.tanh(pre_activation + self.plasticity.contribution(h_prev, traces))
        traces = self.plasticity.update(pre=h_prev, post=h, traces=traces)
        return h, RNNState(h, *traces)


class PlasticLSTMCell(_StatefulModule):
    """LSTM cell whose recurrent weights into the cell candidate ``g`` are plastic.

    ``g = tanh(W_xg x + b + (W_hg + A ⊙ Hebb) h_{t-1})``, ``Δ = outer(g, h_{t-1})``,
    the neuromodulator read from ``h_t``. Parameter names and gate order (i, f, g, o)
    follow ``torch.nn.LSTMCell``; with ``alpha = 0`` the cell equals it exactly.

    :param input_size: number of input features.
    :param hidden_size: number of LSTM units.
    :param plastic: if False, no plasticity parameters are created (a plain LSTM cell).
    :param binary: binarize ``weight_ih`` and ``weight_hh`` (see the module docstring); the biases stay real.
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``
        (``modulation``, ``rule``, ``clip``, ``modulator_fanout``, ``alpha_init``, ``alpha_scale``, ``binary_plasticity``, ``eta_init``, ``bcm_tau``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        plastic: bool = True,
        plasticity: Optional[PlasticityConfig] = None,
        binary: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.binary = bool(binary)
        h4 = 4 * hidden_size
        self.weight_ih = nn.Parameter(_uniform_(torch.empty(h4, input_size), hidden_size))
        self.weight_hh = nn.Parameter(_uniform_(torch.empty(h4, hidden_size), hidden_size))
        self.bias_ih = nn.Parameter(_uniform_(torch.empty(h4), hidden_size))
        self.bias_hh = nn.Parameter(_uniform_(torch.empty(h4), hidden_size))
        self.plasticity = _make_plasticity(plastic, hidden_size, hidden_size, plasticity, fields)

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zero ``h``, ``c`` and traces for ``batch_size`` episodes."""
        check_positive_int("batch_size", batch_size)
        device, dtype = self._device_dtype()
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return LSTMState(zeros, zeros.clone(), *self._traces(batch_size))

    def project_input(self, x: Tensor) -> Tensor:
        """``W_ih x + b_ih`` (all four gates) for inputs of any leading shape (e.g. a whole sequence in one matmul)."""
        return linear(x, self._weight(self.weight_ih), self.bias_ih)

    def forward(self, x: Tensor, state: Optional[LSTMState] = None, projected_input: Optional[Tensor] = None):
        """One step. Returns ``(h_t, new_state)``; ``state=None`` starts a new episode.

        :param projected_input: ``project_input(x)`` if already computed (the sequence runner of
            :class:`~plastic_rl.policies.RecurrentActorCritic` projects a whole sequence at once).
        """
        state = self._prepare(x, state, "PlasticLSTMCell")
        h_prev = state.h
        if projected_input is None:
            projected_input = self.project_input(x)
        gates = projected_input + linear(h_prev, self._weight(self.weight_hh), self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)
        traces = Traces(state.hebb, state.eligibility, state.theta)
        if self.plasticity is not None:
            g = g + self.plasticity.contribution(h_prev, traces)
        g = torch.tanh(g)
        c = torch.sigmoid(f) * state.c + torch.sigmoid(i) * g
        h = torch.sigmoid(o) * torch.tanh(c)
        if self.plasticity is not None:
            traces = self.plasticity.update(pre=h_prev, post=g, traces=traces, modulator_signal=h)
        return h, LSTMState(h, c, *traces)


class PlasticLinear(_StatefulModule):
    """Feed-forward plastic layer ``y = act((W + A ⊙ Hebb) x + b)``.

    The trace is built from this layer's own input (pre) and output (post) within
    the episode; the neuromodulator reads the output.

    :param in_features: input size.
    :param out_features: output size.
    :param activation: ``"tanh"``, ``"relu"``, ``"sigmoid"`` or ``"identity"``.
    :param plastic: if False, no plasticity parameters are created (``nn.Linear`` + activation).
    :param bias: whether the layer has a bias.
    :param binary: binarize ``weight`` (see the module docstring); the bias stays real.
    :param binary_scale: with ``binary``, the magnitude of every binary weight (default ``1 / sqrt(in_features)``).
        An action layer wants small first actions (SB3 initializes its action layer at gain 0.01), which
        a binary layer can only get from a small scale.
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``
        (``modulation``, ``rule``, ``clip``, ``modulator_fanout``, ``alpha_init``, ``alpha_scale``, ``binary_plasticity``, ``eta_init``, ``bcm_tau``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "tanh",
        plastic: bool = True,
        bias: bool = True,
        plasticity: Optional[PlasticityConfig] = None,
        binary: bool = False,
        binary_scale: Optional[float] = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        check_choice("activation", activation, tuple(ACTIVATIONS))
        if binary_scale is not None and not (isinstance(binary_scale, (int, float)) and math.isfinite(binary_scale)
                                             and binary_scale > 0):
            raise ValueError(f"binary_scale must be a positive number or None (1 / sqrt(in_features)); got {binary_scale!r}.")
        self.in_features, self.out_features = in_features, out_features
        self.binary = bool(binary)
        self.binary_scale = float(binary_scale) if binary_scale is not None else None
        self.activation = activation
        linear = nn.Linear(in_features, out_features, bias=bias)  # borrow torch's initialisation
        self.weight = nn.Parameter(linear.weight.detach().clone())
        self.bias = nn.Parameter(linear.bias.detach().clone()) if bias else None
        self.plasticity = _make_plasticity(plastic, in_features, out_features, plasticity, fields)

    def initial_state(self, batch_size: int) -> LinearState:
        """Zero traces for ``batch_size`` episodes."""
        check_positive_int("batch_size", batch_size)
        return LinearState(*self._traces(batch_size))

    def forward(self, x: Tensor, state: Optional[LinearState] = None):
        """One step. Returns ``(y, new_state)``; ``state=None`` starts a new episode."""
        state = self._prepare(x, state, "PlasticLinear")
        pre_activation = linear(x, self._weight(self.weight), self.bias)
        act = ACTIVATIONS[self.activation]
        if self.plasticity is None:
            return act(pre_activation), state
        traces = Traces(*state)
        y = act(pre_activation + self.plasticity.contribution(x, traces))
        return y, LinearState(*self.plasticity.update(pre=x, post=y, traces=traces))
