"""Rules-only plastic modules (Najarro & Risi 2020): random weights every episode, only the plasticity learned.

A :class:`RandomWeightLinear` has no fixed weight matrix. At the start of every
episode its weights ``W0`` are drawn at random, ``U(-1/sqrt(in), 1/sqrt(in))``
per entry (torch's ``nn.Linear`` range), and the layer computes

    ``y = act((W0 + A ⊙ Hebb) x)``

with the trace ``Hebb`` updated by the layer's plasticity rule (per-synapse ABCD
in Najarro & Risi's set-up, any rule and modulation here). What an optimizer
learns is only the plasticity: ``alpha``, the rule's coefficients and ``η`` or
the neuromodulator. The network has to wire itself within the episode.
:class:`RandomWeightRNNCell` is the recurrent counterpart (Backpropamine's
plastic Elman cell with random input and recurrent weights each episode, no bias).

The episode's weights are part of the state (:class:`RandomWeightState`, batch
first like every state), never a module attribute. They come from

- ``initial_state(batch, generator=g)`` / ``reset_state(state, done, generator=g)``:
  drawn with the explicit ``torch.Generator`` ``g`` (the same seed gives the same
  weights), or with torch's global generator when ``g`` is None;
- the zero state: every trainer resets a finished episode by zeroing its rows
  (``plastic_rl.state.reset_state``, EvoTorch's own reset), and ``state=None``
  starts one. A row whose weights are all zero is a fresh episode, so the forward
  draws its weights with torch's global generator, which the trainers seed (ES per
  generation, A2C/PPO at the start of the run).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor

from plastic_rl.cells import ACTIVATIONS, PlasticLinear, PlasticRNNCell
from plastic_rl.plasticity import PlasticityConfig, Traces, check_positive_int, linear

__all__ = ["RandomWeightLinear", "RandomWeightRNNCell", "RandomRNNState", "RandomWeightState", "draw_weights"]


class RandomWeightState(NamedTuple):
    """State of :class:`RandomWeightLinear`: this episode's random weights and the plastic traces."""

    weight: Tensor  #: (batch, out, in) drawn at the start of the episode
    hebb: Tensor  #: (batch, out, in)
    eligibility: Tensor  #: (batch, out, in) for retroactive modulation, else (batch, 0)
    theta: Tensor  #: (batch, out) BCM threshold, else (batch, 0)


class RandomRNNState(NamedTuple):
    """State of :class:`RandomWeightRNNCell`: hidden units, this episode's random weights and the traces."""

    h: Tensor  #: (batch, hidden)
    weight_ih: Tensor  #: (batch, hidden, input) drawn at the start of the episode
    weight_hh: Tensor  #: (batch, hidden, hidden) drawn at the start of the episode
    hebb: Tensor  #: (batch, hidden, hidden) [post, pre]
    eligibility: Tensor
    theta: Tensor


def draw_weights(
    batch_size: int, out_features: int, in_features: int, device=None, dtype=None,
    generator: Optional[torch.Generator] = None, fan: Optional[int] = None,
) -> Tensor:
    """``batch_size`` weight matrices ``U(-1/sqrt(fan), 1/sqrt(fan))``, shape ``(batch, out, in)``.

    :param batch_size: number of episodes.
    :param out_features: rows of each matrix.
    :param in_features: columns of each matrix.
    :param device: device of the result (that of ``generator`` when one is given).
    :param dtype: dtype of the result.
    :param generator: explicit random generator; None uses torch's global one.
    :param fan: sets the range (default ``in_features``, as ``nn.Linear``; recurrent cells use the hidden size).
    """
    bound = 1.0 / math.sqrt(fan or in_features)
    u = torch.rand(batch_size, out_features, in_features, generator=generator, device=device, dtype=dtype)
    return (2.0 * u - 1.0) * bound


class RandomWeightLinear(PlasticLinear):
    """Plastic layer without fixed weights: ``y = act((W0 + A ⊙ Hebb) x)``, ``W0`` random per episode.

    It has no ``weight`` or ``bias`` parameter, only the plasticity's (it must be
    plastic: without plasticity nothing would be learned).

    :param in_features: input size.
    :param out_features: output size.
    :param activation: ``"tanh"``, ``"relu"``, ``"sigmoid"`` or ``"identity"``.
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "tanh",
        plasticity: Optional[PlasticityConfig] = None,
        **fields: Any,
    ) -> None:
        super().__init__(in_features, out_features, activation=activation, plastic=True, bias=False,
                         plasticity=plasticity, **fields)
        del self.weight  # drawn per episode into the state instead

    def initial_state(self, batch_size: int, generator: Optional[torch.Generator] = None) -> RandomWeightState:
        """Fresh random weights and zero traces for ``batch_size`` episodes.

        :param batch_size: number of episodes.
        :param generator: explicit random generator (on the parameters' device); None uses torch's global one.
        """
        check_positive_int("batch_size", batch_size)
        alpha = self.plasticity.alpha
        weight = draw_weights(batch_size, self.out_features, self.in_features, alpha.device, alpha.dtype, generator)
        return RandomWeightState(weight, *self._traces(batch_size))

    def reset_state(self, state: RandomWeightState, done: Tensor, generator: Optional[torch.Generator] = None) -> RandomWeightState:
        """New random weights and zero traces for the rows whose episode ended (``done[b]`` true).

        :param state: the current state.
        :param done: ``(batch,)`` bool or 0/1 tensor.
        :param generator: explicit random generator; None uses torch's global one.
        """
        return _where_done(done, self.initial_state(torch.as_tensor(done).shape[0], generator), state)

    def _redraw_zero_rows(self, state: RandomWeightState) -> RandomWeightState:
        """Draw weights for rows that are all zero (a fresh episode after a trainer's zero reset)."""
        fresh = _zero_rows(state.weight)
        if not bool(fresh.any()):
            return state
        return state._replace(weight=torch.where(
            fresh.view(-1, 1, 1),
            draw_weights(fresh.shape[0], self.out_features, self.in_features, state.weight.device, state.weight.dtype),
            state.weight,
        ))

    def forward(self, x: Tensor, state: Optional[RandomWeightState] = None):
        """One step. Returns ``(y, new_state)``; ``state=None`` (or a zeroed row) starts an episode with new weights."""
        state = self._prepare(x, state, "RandomWeightLinear")
        state = self._redraw_zero_rows(state)
        traces = Traces(state.hebb, state.eligibility, state.theta)
        y = ACTIVATIONS[self.activation](linear(x, state.weight) + self.plasticity.contribution(x, traces))
        return y, RandomWeightState(state.weight, *self.plasticity.update(pre=x, post=y, traces=traces))


class RandomWeightRNNCell(PlasticRNNCell):
    """Plastic Elman cell without fixed weights: ``h_t = tanh(W_in x_t + (W + A ⊙ Hebb) h_{t-1})``.

    ``W_in`` and ``W`` are drawn ``U(-1/sqrt(hidden), 1/sqrt(hidden))`` (torch's RNN
    range) at the start of every episode and travel in the state; there is no bias.
    Only the plasticity's parameters are learned (the policy's read-out heads stay
    ordinary learned layers).

    :param input_size: number of input features.
    :param hidden_size: number of recurrent units.
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``.
    """

    def __init__(self, input_size: int, hidden_size: int, plasticity: Optional[PlasticityConfig] = None, **fields: Any) -> None:
        super().__init__(input_size, hidden_size, plastic=True, plasticity=plasticity, **fields)
        del self.weight_ih, self.weight_hh, self.bias  # drawn per episode into the state instead

    #: No input projection ahead of time: the input weights live in the state and change at every episode start.
    project_input = None

    def initial_state(self, batch_size: int, generator: Optional[torch.Generator] = None) -> RandomRNNState:
        """Zero hidden units and traces, fresh random weights, for ``batch_size`` episodes.

        :param batch_size: number of episodes.
        :param generator: explicit random generator (on the parameters' device); None uses torch's global one.
        """
        check_positive_int("batch_size", batch_size)
        device, dtype = self._device_dtype()
        n, m = self.hidden_size, self.input_size
        return RandomRNNState(
            torch.zeros(batch_size, n, device=device, dtype=dtype),
            draw_weights(batch_size, n, m, device, dtype, generator, fan=n),
            draw_weights(batch_size, n, n, device, dtype, generator, fan=n),
            *self._traces(batch_size),
        )

    def reset_state(self, state: RandomRNNState, done: Tensor, generator: Optional[torch.Generator] = None) -> RandomRNNState:
        """New random weights, zero hidden units and traces for the rows whose episode ended.

        :param state: the current state.
        :param done: ``(batch,)`` bool or 0/1 tensor.
        :param generator: explicit random generator; None uses torch's global one.
        """
        return _where_done(done, self.initial_state(torch.as_tensor(done).shape[0], generator), state)

    def forward(self, x: Tensor, state: Optional[RandomRNNState] = None):
        """One step. Returns ``(h_t, new_state)``; ``state=None`` (or a zeroed row) starts an episode with new weights."""
        state = self._prepare(x, state, "RandomWeightRNNCell")
        fresh = _zero_rows(state.weight_hh)
        if bool(fresh.any()):
            new = self.initial_state(fresh.shape[0])
            state = state._replace(weight_ih=torch.where(fresh.view(-1, 1, 1), new.weight_ih, state.weight_ih),
                                   weight_hh=torch.where(fresh.view(-1, 1, 1), new.weight_hh, state.weight_hh))
        h_prev = state.h
        traces = Traces(state.hebb, state.eligibility, state.theta)
        pre_activation = linear(x, state.weight_ih) + linear(h_prev, state.weight_hh)
        h = torch.tanh(pre_activation + self.plasticity.contribution(h_prev, traces))
        traces = self.plasticity.update(pre=h_prev, post=h, traces=traces)
        return h, RandomRNNState(h, state.weight_ih, state.weight_hh, *traces)


def _zero_rows(weight: Tensor) -> Tensor:
    """``(batch,)`` bool: the rows whose weights are all zero (a fresh episode after a trainer's zero reset)."""
    return weight.reshape(weight.shape[0], -1).abs().amax(dim=1) == 0


def _where_done(done: Tensor, fresh: NamedTuple, state: NamedTuple):
    """``fresh``'s rows where ``done``, ``state``'s elsewhere, field by field."""
    done = torch.as_tensor(done, device=state[0].device).bool()
    pick = lambda new, old: torch.where(done.view(-1, *([1] * (old.dim() - 1))), new, old)  # noqa: E731
    return type(state)(*(pick(new, old) for new, old in zip(fresh, state)))
