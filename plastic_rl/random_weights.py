"""Rules-only plastic layers (Najarro & Risi 2020): random weights every episode, only the plasticity learned.

A :class:`RandomWeightLinear` has no fixed weight matrix. At the start of every
episode its weights ``W0`` are drawn at random, ``U(-1/sqrt(in), 1/sqrt(in))``
per entry (torch's ``nn.Linear`` range), and the layer computes

    ``y = act((W0 + A ⊙ Hebb) x)``

with the trace ``Hebb`` updated by the layer's plasticity rule (per-synapse ABCD
in Najarro & Risi's set-up, any rule and modulation here). What an optimizer
learns is only the plasticity: ``alpha``, the rule's coefficients and ``η`` or
the neuromodulator. The network has to wire itself within the episode.

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

from plastic_rl.cells import ACTIVATIONS, PlasticLinear
from plastic_rl.plasticity import PlasticityConfig, Traces, check_positive_int, linear

__all__ = ["RandomWeightLinear", "RandomWeightState", "draw_weights"]


class RandomWeightState(NamedTuple):
    """State of :class:`RandomWeightLinear`: this episode's random weights and the plastic traces."""

    weight: Tensor  #: (batch, out, in) drawn at the start of the episode
    hebb: Tensor  #: (batch, out, in)
    eligibility: Tensor  #: (batch, out, in) for retroactive modulation, else (batch, 0)
    theta: Tensor  #: (batch, out) BCM threshold, else (batch, 0)


def draw_weights(
    batch_size: int, out_features: int, in_features: int, device=None, dtype=None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """``batch_size`` weight matrices ``U(-1/sqrt(in), 1/sqrt(in))``, shape ``(batch, out, in)``.

    :param batch_size: number of episodes.
    :param out_features: rows of each matrix.
    :param in_features: columns of each matrix (sets the range).
    :param device: device of the result (that of ``generator`` when one is given).
    :param dtype: dtype of the result.
    :param generator: explicit random generator; None uses torch's global one.
    """
    bound = 1.0 / math.sqrt(in_features)
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
        done = torch.as_tensor(done, device=state.weight.device).bool()
        fresh = self.initial_state(done.shape[0], generator)
        pick = lambda new, old: torch.where(done.view(-1, *([1] * (old.dim() - 1))), new, old)  # noqa: E731
        return RandomWeightState(*(pick(new, old) for new, old in zip(fresh, state)))

    def _redraw_zero_rows(self, state: RandomWeightState) -> RandomWeightState:
        """Draw weights for rows that are all zero (a fresh episode after a trainer's zero reset)."""
        fresh = state.weight.reshape(state.weight.shape[0], -1).abs().amax(dim=1) == 0
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
