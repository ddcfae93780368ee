"""Binarized layers: deterministic ±1 weights with a straight-through estimator, and stochastic binary synapses.

- :class:`BinaryLinear` (Courbariaux et al. 2016, as used by Laborieux et al. 2021):
  the forward uses ``sign(W_h)`` of a real-valued *hidden* weight ``W_h``; the
  gradient passes straight through to ``W_h``. With ``binary_activations`` the
  layer's input is binarized too, with the hardtanh straight-through estimator
  (no gradient where ``|x| > 1``). ``W_h`` is an ordinary parameter: nothing swaps
  ``.data`` in and out, so ``state_dict()`` always holds the real hidden values.
- :class:`StochasticBinaryLinear` (Baldassi et al. 2018): every synapse is a
  random ±1 weight with mean ``m = tanh(h)``; training runs the mean-field
  network (the pre-activation's mean ``Σ m x`` and variance ``Σ (1 − m²) x²``),
  and a deployed network uses fixed ±1 weights, ``sign(h)`` or one sample.

:func:`binarize` and :func:`binarize_activation` are the two straight-through
sign functions on their own, for modules (the plastic cells) that binarize their
weights in place of an ``nn.Linear``. Both accept any shape, including one
weight matrix per batch row (the ES population forward).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from plastic_rl.plasticity import check_positive_int, linear

__all__ = ["BinaryLinear", "StochasticBinaryLinear", "binarize", "binarize_activation", "sign"]


def sign(x: Tensor) -> Tensor:
    """±1 of ``x``, with ``sign(0) = +1`` (``torch.sign`` would give 0, which is not a binary weight)."""
    return torch.where(x >= 0, torch.ones((), dtype=x.dtype, device=x.device), -torch.ones((), dtype=x.dtype, device=x.device))


class _SignSTE(torch.autograd.Function):
    """``sign(w)`` forward; the identity backward (the weight straight-through estimator)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(weight: Tensor) -> Tensor:
        return sign(weight)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        pass

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


class _SignHardtanhSTE(torch.autograd.Function):
    """``sign(x)`` forward; backward of hardtanh: the gradient passes where ``|x| <= 1``, zero elsewhere."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return sign(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarize(weight: Tensor) -> Tensor:
    """``sign(weight)`` (±1) whose gradient flows unchanged to ``weight`` (straight-through estimator).

    :param weight: the real-valued hidden weight, any shape.
    """
    if torch.is_grad_enabled() and weight.requires_grad:
        return _SignSTE.apply(weight)
    return sign(weight)


def binarize_activation(x: Tensor) -> Tensor:
    """``sign(x)`` (±1) with the hardtanh straight-through gradient (zero where ``|x| > 1``).

    :param x: activations, any shape.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _SignHardtanhSTE.apply(x)
    return sign(x)


def _check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number; got {scale!r}.")
    return float(scale)


class BinaryLinear(nn.Module):
    """A linear layer with ±1 weights ``y = scale · sign(W_h) x + b`` over a real hidden weight ``W_h``.

    ``W_h`` (``self.weight``) and the bias are ordinary parameters, initialised as
    ``nn.Linear``'s; the optimizer updates ``W_h`` with the gradient of the binary
    forward (straight-through), so ``|W_h|`` is free to grow — which is what
    :class:`~plastic_rl.metaplastic.MetaplasticAdam` reads as a synapse's importance.
    The bias stays real-valued.

    :param in_features: input size.
    :param out_features: output size.
    :param bias: whether the layer has a (real-valued) bias.
    :param binary_activations: binarize the layer's *input* too (``sign(x)``, hardtanh
        straight-through gradient), as a fully binarized network does between layers.
    :param scale: a fixed factor on ``sign(W_h) x``; ``1 / sqrt(in_features)`` keeps the
        pre-activation of a network without batch norm at the scale of a real-valued
        layer's (the default 1.0 is the plain binary layer, for use before batch norm).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        binary_activations: bool = False,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.binary_activations = bool(binary_activations)
        self.scale = _check_scale(scale)
        reference = nn.Linear(in_features, out_features, bias=bias)  # borrow torch's initialisation
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone()) if bias else None

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"binary_activations={self.binary_activations}, scale={self.scale:g}"
        )

    @property
    def binary_weight(self) -> Tensor:
        """The ±1 weights the forward uses (detached): what a deployed binary network stores."""
        return sign(self.weight.detach())

    def forward(self, x: Tensor) -> Tensor:
        """``scale · sign(W_h) x + b`` (``x`` binarized first if ``binary_activations``)."""
        if self.binary_activations:
            x = binarize_activation(x)
        weight = binarize(self.weight)
        if self.scale != 1.0:
            weight = weight * self.scale
        return linear(x, weight, self.bias)


class StochasticBinaryLinear(nn.Module):
    """Stochastic binary synapses (Baldassi et al. 2018): weight ``w_ji = ±1`` with mean ``m_ji = tanh(h_ji)``.

    The learned quantities are the real fields ``h`` (``self.field``). For an input
    ``x`` and independent synapses the pre-activation ``z = Σ_i w_ji x_i + b_j`` has

    - mean ``μ_j = Σ_i m_ji x_i + b_j`` and
    - variance ``σ²_j = Σ_i (1 − m_ji²) x_i²``  (:meth:`moments`).

    Training runs the *mean-field* network: with ``sign_activation=False`` the
    forward returns ``μ`` (a linear layer with weights ``tanh(h)``); with
    ``sign_activation=True`` it returns the mean of a sign unit under the
    central-limit (Gaussian) approximation of ``z``, ``E[sign z] = erf(μ / √(2σ²))``,
    so the synapses' randomness enters the training signal.

    :meth:`deploy` switches the layer to a fixed network of ±1 weights: ``"sign"``
    (``sign(h)``, the most probable weights) or ``"sample"`` (one draw with
    ``P(w = +1) = (1 + m) / 2``); the forward is then ``w x + b`` (and ``sign`` of
    it with ``sign_activation``). ``deploy(None)`` returns to the mean field.
    The deployed weights are a non-persistent buffer: ``state_dict()`` holds only ``h``
    and the bias.

    :param in_features: input size.
    :param out_features: output size.
    :param bias: whether the layer has a real-valued bias.
    :param sign_activation: the layer's units are sign units (see above).
    :param field_init: ``h`` starts as ``field_init · N(0, 1)``.
    """

    #: variance floor inside the square root, so a layer whose synapses are all certain stays finite.
    eps: float = 1e-8

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        sign_activation: bool = False,
        field_init: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        if not (field_init > 0 and math.isfinite(field_init)):
            raise ValueError(f"field_init must be a positive finite number; got {field_init!r}.")
        self.in_features, self.out_features = in_features, out_features
        self.sign_activation = bool(sign_activation)
        self.field = nn.Parameter(field_init * torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("deployed_weight", None, persistent=False)

    def extra_repr(self) -> str:
        mode = "mean-field" if self.deployed_weight is None else "deployed ±1"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"sign_activation={self.sign_activation}, mode={mode}"
        )

    @property
    def mean_weight(self) -> Tensor:
        """``m = tanh(h)``, the expected value of every ±1 synapse."""
        return torch.tanh(self.field)

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of the pre-activation ``z = w x + b`` over the random ±1 weights.

        :param x: ``(batch, in_features)`` input.
        :return: ``(mean, variance)``, each ``(batch, out_features)``.
        """
        m = self.mean_weight
        mean = nn.functional.linear(x, m, self.bias)
        variance = nn.functional.linear(x.pow(2), 1 - m.pow(2))
        return mean, variance

    def sample_weight(self, generator: Optional[torch.Generator] = None, num_samples: Optional[int] = None) -> Tensor:
        """Draws of the ±1 weights: ``+1`` with probability ``(1 + tanh h) / 2``, every synapse independently.

        :param generator: the random generator (default: torch's global one).
        :param num_samples: if given, that many independent draws stacked in a leading
            dimension, ``(num_samples, out, in)``; otherwise one ``(out, in)`` draw.
        """
        p_plus = (1 + self.mean_weight.detach()) / 2
        shape = p_plus.shape if num_samples is None else (num_samples, *p_plus.shape)
        if num_samples is not None:
            check_positive_int("num_samples", num_samples)
        u = torch.rand(shape, generator=generator, device=p_plus.device, dtype=p_plus.dtype)
        return sign(p_plus - u)  # u < p_plus ⇔ +1 (u == p_plus has probability 0)

    def deploy(self, mode: Optional[str] = "sign", generator: Optional[torch.Generator] = None) -> "StochasticBinaryLinear":
        """Fix the layer's weights to ±1 (``"sign"`` or ``"sample"``), or return to the mean field (``None``).

        :param mode: ``"sign"`` (``sign(h)``), ``"sample"`` (one random draw) or ``None``.
        :param generator: the random generator for ``"sample"``.
        :return: ``self``.
        """
        if mode is None:
            self.deployed_weight = None
        elif mode == "sign":
            self.deployed_weight = sign(self.field.detach())
        elif mode == "sample":
            self.deployed_weight = self.sample_weight(generator)
        else:
            raise ValueError(f"mode must be one of 'sign', 'sample' or None; got {mode!r}.")
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Mean-field output (training), or the deployed ±1 network's output after :meth:`deploy`."""
        if self.deployed_weight is not None:
            z = nn.functional.linear(x, self.deployed_weight, self.bias)
            return sign(z) if self.sign_activation else z
        mean, variance = self.moments(x)
        if not self.sign_activation:
            return mean
        return torch.erf(mean / torch.sqrt(2 * variance + self.eps))
