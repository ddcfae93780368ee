"""Learning rules, neuromodulation and trace updates shared by every plastic module.

Orientation convention (the same as ``torch.nn.Linear``): a plastic connection
matrix has shape ``(out, in)`` = ``(post, pre)``; the per-episode trace ``hebb``
has shape ``(batch, out, in)``; the plastic contribution to a pre-activation is
``((alpha * hebb) @ pre)`` per batch row.

A module owns a :class:`Plasticity` object, which holds the learned plasticity
parameters (alpha, eta, modulator, rule coefficients) and knows how to turn
(pre, post, old traces) into new traces. Only the parameters the configuration
uses are created, so evolution strategies never search dead dimensions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, NamedTuple, Optional

import torch
from torch import Tensor, nn

MODULATIONS = ("none", "simple", "retroactive")
RULES = ("hebbian", "oja", "bcm", "abcd")


def check_choice(name: str, value: object, allowed: tuple) -> None:
    """Raise ``ValueError`` naming ``name`` and the allowed values if ``value`` is not one of them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


def check_positive_int(name: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")


@dataclasses.dataclass(frozen=True)
class PlasticityConfig:
    """The plasticity hyper-parameters of one plastic connection matrix, shared by every plastic module.

    Cells, layers and policies take these as keyword arguments (``modulation="simple", clip=1.0``)
    or as one ``plasticity=PlasticityConfig(...)`` object; either way they reach :class:`Plasticity`
    as this one frozen record, so a new field is added here and nowhere else.
    """

    modulation: str = "simple"  #: "none", "simple" or "retroactive" (see :class:`Plasticity`)
    rule: str = "hebbian"  #: "hebbian", "oja", "bcm" or "abcd"
    clip: float = 1.0  #: traces are clipped to [-clip, clip]
    modulator_fanout: bool = False  #: fan the scalar modulator out to one rate per post-neuron (Backpropamine's modfanout)
    alpha_init: float = 0.01  #: alpha starts at alpha_init * U[0, 1]
    #: alpha is stored as its parameter divided by alpha_scale (alpha = alpha_scale * parameter), so that an
    #: optimizer or search step of a given size moves alpha alpha_scale times as far as it moves a weight.
    #: For ES, whose σ and step are the same for every parameter: PGPE's σ 0.02 is 4x alpha's initial
    #: scale, and the plastic walk search drifted alpha up 14x (results/es_walk/alpha_scale.json).
    #: 1.0 (the default) stores alpha itself.
    alpha_scale: float = 1.0
    #: binarize the plasticity coefficients as BinaryLinear binarizes weights: alpha = alpha_scale * sign(parameter)
    #: and the neuromodulator's weights sign(w) / sqrt(fan_in), each with a straight-through gradient to its real
    #: hidden value (the modulator's bias, η and the ABCD coefficients stay real). Under MetaplasticAdam a hidden
    #: value can then grow without changing what the network computes; real-valued alpha and modulator weights
    #: ratchet outwards there and the policy collapses (README, "Continual RL over task sequences").
    #: Every alpha then starts at +alpha_scale, and its hidden value at (alpha_init / alpha_scale) * U[0, 1], as
    #: without binarization: a smaller alpha_scale starts the hidden values larger (U[0, 1] at 0.01), which the
    #: forward does not see but an optimizer does (a sign takes longer to flip; MetaplasticAdam consolidates it).
    binary_plasticity: bool = False
    eta_init: float = 0.01  #: initial value of the learned η (plasticity rate or eligibility decay)
    bcm_tau: float = 0.1  #: rate of the BCM threshold's running mean (not learned)

    def __post_init__(self) -> None:
        check_choice("modulation", self.modulation, MODULATIONS)
        check_choice("rule", self.rule, RULES)
        for name in ("clip", "alpha_init", "alpha_scale", "eta_init", "bcm_tau"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number; got {value!r}.")
        if not self.clip > 0:
            raise ValueError(f"clip must be a positive number; got {self.clip!r}.")
        if not self.alpha_scale > 0:
            raise ValueError(f"alpha_scale must be a positive number; got {self.alpha_scale!r}.")
        if not 0 < self.bcm_tau <= 1:
            raise ValueError(f"bcm_tau must be in (0, 1]; got {self.bcm_tau!r}.")
        for name in ("modulator_fanout", "binary_plasticity"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}.")

    def as_dict(self) -> Dict[str, Any]:
        """The fields as a plain dict (e.g. to store in a policy's ``config``)."""
        return dataclasses.asdict(self)


PLASTICITY_FIELDS = tuple(f.name for f in dataclasses.fields(PlasticityConfig))


def plasticity_config(plasticity: Optional[PlasticityConfig] = None, **fields: Any) -> PlasticityConfig:
    """One :class:`PlasticityConfig` from an optional base and keyword overrides.

    :param plasticity: a base config (default: :class:`PlasticityConfig`'s defaults).
    :param fields: fields of :class:`PlasticityConfig` that override the base.
    """
    unknown = sorted(set(fields) - set(PLASTICITY_FIELDS))
    if unknown:
        raise TypeError(f"unknown plasticity argument {unknown[0]!r}; allowed: {', '.join(PLASTICITY_FIELDS)}.")
    base = plasticity if plasticity is not None else PlasticityConfig()
    if not isinstance(base, PlasticityConfig):
        raise TypeError(f"plasticity must be a PlasticityConfig; got {type(base).__name__}.")
    return dataclasses.replace(base, **fields) if fields else base


class _ClampedOuterUpdate(torch.autograd.Function):
    """``clamp(hebb + m ⊙ outer(post, pre), -clip, clip)`` with a hand-written backward.

    This is the hot spot of full-episode BPTT: autograd would store and revisit
    several ``(batch, out, in)`` tensors per step (the outer product, its scaled
    copy, the clamp mask). The backward here needs only the output (to find the
    clipped entries) and computes the small gradients with two batched
    vector-matrix products, without materialising any other ``(batch, out, in)``
    tensor. ``m`` is ``(batch, 1)`` (one rate per episode) or ``(batch, out)``.
    """

    # setup_context style + out-of-place ops, so torch.func.vmap (e.g. EvoTorch's own
    # vmapped population forward) can run it too.
    generate_vmap_rule = True

    @staticmethod
    def forward(hebb: Tensor, m: Tensor, post: Tensor, pre: Tensor, clip: float) -> Tensor:
        # addcmul: one pass fewer over (batch, out, in) than hebb + outer product.
        # (Out-of-place clamp: EvoTorch may hand in read-only tensors.)
        return torch.clamp(torch.addcmul(hebb, (m * post).unsqueeze(2), pre.unsqueeze(1)), -clip, clip)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, m, post, pre, clip = inputs
        ctx.clip = clip
        ctx.save_for_backward(output, m, post, pre)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        out, m, post, pre = ctx.saved_tensors
        # Entries that hit the clip pass no gradient (as torch.clamp's backward,
        # up to entries exactly at ±clip before clipping, a measure-zero set).
        grad_u = torch.ops.aten.hardtanh_backward(grad_out, out, -ctx.clip, ctx.clip)
        # v_j = Σ_i grad_u[j, i] pre_i ; w_i = Σ_j (m post)_j grad_u[j, i]
        v = torch.bmm(pre.unsqueeze(1), grad_u.transpose(1, 2)).squeeze(1)
        w = torch.bmm((m * post).unsqueeze(1), grad_u).squeeze(1)
        grad_m = grad_post = None
        if ctx.needs_input_grad[1]:
            grad_m = post * v if m.shape[1] != 1 else (post * v).sum(1, keepdim=True)
        if ctx.needs_input_grad[2]:
            grad_post = m * v
        return grad_u, grad_m, grad_post, w, None


class _PlasticMatVec(torch.autograd.Function):
    """``y = (alpha ⊙ hebb) pre`` per batch row, with a backward that reuses one outer product.

    Autograd would save ``alpha ⊙ hebb`` (a ``(batch, out, in)`` tensor per step)
    and compute its gradient through a slow matrix-vector kernel; here only
    ``hebb`` (already kept by the trace update) is referenced.
    """

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def forward(alpha: Tensor, hebb: Tensor, pre: Tensor) -> Tensor:
        # pre^T (alpha ⊙ hebb)^T: torch's batched vector-matrix kernel is ~8x faster
        # on CPU than the matrix-vector one.
        return torch.bmm(pre.unsqueeze(1), (alpha * hebb).transpose(1, 2)).squeeze(1)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        alpha, hebb, pre = ctx.saved_tensors
        grad_alpha = grad_hebb = grad_pre = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            outer = grad_y.unsqueeze(2) * pre.unsqueeze(1)
            if ctx.needs_input_grad[0]:
                # alpha is shared by the batch (out, in), or one per row (batch, out, in) as in the ES population
                grad_alpha = (outer * hebb).sum_to_size(alpha.shape)
            if ctx.needs_input_grad[1]:
                grad_hebb = outer * alpha
        if ctx.needs_input_grad[2]:
            grad_pre = torch.bmm(grad_y.unsqueeze(1), alpha * hebb).squeeze(1)
        return grad_alpha, grad_hebb, grad_pre


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``nn.functional.linear`` that also accepts one weight matrix per batch row.

    With ``weight`` ``(out, in)`` it is ``F.linear``. With ``weight`` ``(batch, out, in)``
    and ``bias`` ``(batch, out)`` row ``b`` of ``x`` goes through its own weights:
    this is how a whole ES population (one parameter vector per episode) runs in
    one batched forward without ``vmap`` (see ``plastic_rl.agents.es.PopulationPolicy``).
    """
    if weight.dim() == 2:
        return nn.functional.linear(x, weight, bias)
    y = torch.bmm(x.unsqueeze(1), weight.transpose(1, 2)).squeeze(1)
    return y if bias is None else y + bias


def per_sample(param: Tensor, ndim: int) -> Tensor:
    """A scalar parameter as is, or a per-batch-row one ``(batch,)`` viewed to broadcast against ``ndim``-d tensors."""
    return param if param.dim() == 0 else param.reshape(-1, *([1] * (ndim - 1)))


def clamped_outer_update(hebb: Tensor, m: Tensor, post: Tensor, pre: Tensor, clip: float) -> Tensor:
    """``clamp(hebb + m ⊙ outer(post, pre), -clip, clip)`` for ``hebb`` ``(B, out, in)``, ``m`` ``(B, 1)`` or ``(B, out)``."""
    return _fused(_ClampedOuterUpdate, hebb, m, post, pre, clip)


def _fused(function, *args):
    """Run ``function`` through autograd only when a gradient is wanted.

    Without one (evaluation, evolution strategies) the plain forward is cheaper:
    no graph bookkeeping, and under ``torch.func.vmap`` no custom-Function machinery.
    """
    if torch.is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return function.apply(*args)
    return function.forward(*args)


class _RetroactiveUpdate(torch.autograd.Function):
    """Retroactive modulation with the Hebbian rule, fused (see :class:`_ClampedOuterUpdate`).

    ``hebb' = clamp(hebb + m ⊙ E, -clip, clip)``, ``E' = (1 - η) E + η outer(post, pre)``.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(hebb, eligibility, m, eta, post, pre, clip: float):
        new_hebb = torch.clamp(torch.addcmul(hebb, m.unsqueeze(2), eligibility), -clip, clip)
        new_elig = eta * (post.unsqueeze(2) * pre.unsqueeze(1)) + (1 - eta) * eligibility
        return new_hebb, new_elig

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, eligibility, m, eta, post, pre, clip = inputs
        ctx.clip = clip
        ctx.save_for_backward(output[0], eligibility, m, eta, post, pre)

    @staticmethod
    def backward(ctx, grad_hebb, grad_elig):
        new_hebb, eligibility, m, eta, post, pre = ctx.saved_tensors
        if grad_hebb is None:
            grad_hebb = torch.zeros_like(new_hebb)
        if grad_elig is None:
            grad_elig = torch.zeros_like(eligibility)
        grad_u = torch.ops.aten.hardtanh_backward(grad_hebb, new_hebb, -ctx.clip, ctx.clip)
        grad_m = (grad_u * eligibility).sum(2)
        if m.shape[1] == 1:
            grad_m = grad_m.sum(1, keepdim=True)
        grad_e = grad_u * m.unsqueeze(2) + (1 - eta) * grad_elig
        # v_j = Σ_i grad_elig[j, i] pre_i ; w_i = Σ_j post_j grad_elig[j, i]
        v = torch.bmm(pre.unsqueeze(1), grad_elig.transpose(1, 2)).squeeze(1)
        w = torch.bmm(post.unsqueeze(1), grad_elig).squeeze(1)
        # η is a scalar shared by the batch, or one per row ((batch, 1, 1), see per_sample)
        grad_eta_rows = (post * v).sum(1) - (grad_elig * eligibility).sum((1, 2))
        grad_eta = grad_eta_rows.sum() if eta.dim() == 0 else grad_eta_rows.reshape(-1, 1, 1).sum_to_size(eta.shape)
        eta_rows = eta if eta.dim() == 0 else eta.reshape(-1, 1)
        return grad_u, grad_e, grad_m, grad_eta, eta_rows * v, eta_rows * w, None


def _binarize(tensor: Tensor) -> Tensor:
    """:func:`plastic_rl.binary.binarize` (sign, straight-through gradient), imported at call time: binary.py imports this module."""
    from plastic_rl.binary import binarize

    return binarize(tensor)


class Traces(NamedTuple):
    """The per-episode plastic state of one plastic weight matrix.

    Unused fields are zero-width tensors ``(batch, 0)`` so that every state is a
    plain tuple of batch-first tensors that can be sliced, stored and reset
    uniformly.
    """

    hebb: Tensor  #: (batch, out, in) Hebbian trace, clipped to [-clip, clip]
    eligibility: Tensor  #: (batch, out, in) for retroactive modulation, else (batch, 0)
    theta: Tensor  #: (batch, out) BCM sliding threshold, else (batch, 0)


class Plasticity(nn.Module):
    """Plastic parameters and trace update of one ``(out, in)`` connection matrix.

    Trace updates, selected by ``modulation`` (``M`` is the neuromodulator, ``Δ`` the rule's product):

    - ``none``:        ``hebb ← clip(hebb + η Δ)``, η a learned scalar
    - ``simple``:      ``hebb ← clip(hebb + M Δ)``
    - ``retroactive``: ``hebb ← clip(hebb + M E_old)``, ``E ← (1 − η) E + η Δ``

    Rules (``x`` = pre, ``y`` = post; indices ``[j, i]`` = ``[post, pre]``):

    - ``hebbian``: ``Δ_ji = y_j x_i``
    - ``oja``:     ``Δ_ji = y_j (x_i − y_j hebb_ji)``
    - ``bcm``:     ``Δ_ji = x_i y_j (y_j − θ_j)``, ``θ ← (1 − τ) θ + τ y²`` (θ from before this step)
    - ``abcd``:    ``Δ_ji = A_ji x_i y_j + B_ji x_i + C_ji y_j + D_ji`` (per-synapse coefficients)

    :param in_features: number of presynaptic units.
    :param out_features: number of postsynaptic units.
    :param plasticity: the hyper-parameters (a :class:`PlasticityConfig`).
    :param modulator_size: size of the signal the neuromodulator reads (usually ``out_features``).
    :param fields: :class:`PlasticityConfig` fields overriding ``plasticity`` (``modulation="retroactive"``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        plasticity: Optional[PlasticityConfig] = None,
        modulator_size: Optional[int] = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        config = plasticity_config(plasticity, **fields)
        self.config = config
        self.in_features = in_features
        self.out_features = out_features
        self.modulation = config.modulation
        self.rule = config.rule
        self.clip = float(config.clip)
        self.bcm_tau = float(config.bcm_tau)
        modulation, rule, alpha_init, eta_init = config.modulation, config.rule, config.alpha_init, config.eta_init
        modulator_fanout = config.modulator_fanout

        self.alpha_scale = float(config.alpha_scale)
        self.binary_plasticity = bool(config.binary_plasticity)
        # The parameter is alpha / alpha_scale; contribution() multiplies it back (see PlasticityConfig.alpha_scale).
        self.alpha = nn.Parameter((alpha_init / self.alpha_scale) * torch.rand(out_features, in_features))
        if modulation in ("none", "retroactive"):
            self.eta = nn.Parameter(torch.tensor(float(eta_init)))
        if modulation in ("simple", "retroactive"):
            size = modulator_size if modulator_size is not None else out_features
            check_positive_int("modulator_size", size)
            self.modulator = nn.Linear(size, 1)
            if modulator_fanout:
                # One learned rate per post-neuron, driven by the single modulator output.
                self.modulator_fanout = nn.Parameter(torch.ones(out_features))
        if rule == "abcd":
            # Najarro & Risi's per-synapse coefficients, small random start.
            bound = 1.0 / math.sqrt(in_features)
            for name in ("rule_a", "rule_b", "rule_c", "rule_d"):
                self.register_parameter(
                    name, nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
                )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"modulation={self.modulation!r}, rule={self.rule!r}, clip={self.clip}"
        )

    # ------------------------------------------------------------------ state
    def initial_traces(self, batch_size: int, device=None, dtype=None) -> Traces:
        """Zero traces for ``batch_size`` episodes, on the parameters' device and dtype by default."""
        device = device if device is not None else self.alpha.device
        dtype = dtype if dtype is not None else self.alpha.dtype
        o, i = self.out_features, self.in_features
        zeros = lambda *shape: torch.zeros(batch_size, *shape, device=device, dtype=dtype)  # noqa: E731
        return Traces(
            hebb=zeros(o, i),
            eligibility=zeros(o, i) if self.modulation == "retroactive" else zeros(0),
            theta=zeros(o) if self.rule == "bcm" else zeros(0),
        )

    # ---------------------------------------------------------------- forward
    def contribution(self, pre: Tensor, traces: Traces) -> Tensor:
        """The plastic part of the pre-activation, ``(alpha ⊙ hebb) @ pre``, shape ``(batch, out)``."""
        return _fused(_PlasticMatVec, self.effective_alpha(), traces.hebb, pre)

    def effective_alpha(self) -> Tensor:
        """alpha as the forward uses it: the parameter times ``alpha_scale`` (the parameter itself at 1);
        with ``binary_plasticity``, ``alpha_scale * sign(parameter)``."""
        if self.binary_plasticity:
            return _binarize(self.alpha) * self.alpha_scale
        return self.alpha if self.alpha_scale == 1.0 else self.alpha * self.alpha_scale

    def modulator_weight(self) -> Tensor:
        """The neuromodulator's weight as the forward uses it: the parameter, or ``sign(w) / sqrt(fan_in)``
        with ``binary_plasticity``."""
        weight = self.modulator.weight
        if self.binary_plasticity:
            return _binarize(weight) / math.sqrt(weight.shape[-1])
        return weight

    def neuromodulator(self, signal: Tensor) -> Tensor:
        """``M = tanh(w_M · signal + b_M)``, shape ``(batch, out)`` (fanned out) or ``(batch, 1)``."""
        m = torch.tanh(linear(signal, self.modulator_weight(), self.modulator.bias))
        if hasattr(self, "modulator_fanout"):
            m = m * self.modulator_fanout
        return m

    def delta(self, pre: Tensor, post: Tensor, traces: Traces) -> Tensor:
        """The rule's product Δ, shape ``(batch, out, in)``."""
        outer = post.unsqueeze(2) * pre.unsqueeze(1)
        if self.rule == "hebbian":
            return outer
        if self.rule == "oja":
            return outer - post.pow(2).unsqueeze(2) * traces.hebb
        if self.rule == "bcm":
            return outer * (post - traces.theta).unsqueeze(2)
        # abcd
        return (
            self.rule_a * outer
            + self.rule_b * pre.unsqueeze(1)
            + self.rule_c * post.unsqueeze(2)
            + self.rule_d
        )

    def update(self, pre: Tensor, post: Tensor, traces: Traces, modulator_signal: Optional[Tensor] = None) -> Traces:
        """New traces after one step with presynaptic ``pre`` and postsynaptic ``post``.

        :param pre: ``(batch, in)`` presynaptic activity.
        :param post: ``(batch, out)`` postsynaptic activity.
        :param traces: the traces before this step.
        :param modulator_signal: what the neuromodulator reads (default: ``post``).
        """
        eligibility, theta = traces.eligibility, traces.theta
        signal = post if modulator_signal is None else modulator_signal
        if self.rule == "hebbian":
            # Backpropamine's case: a rank-one Δ, so the update runs fused.
            if self.modulation == "retroactive":
                m = self.neuromodulator(signal)
                eta = per_sample(self.eta, 3)
                hebb, eligibility = _fused(_RetroactiveUpdate, traces.hebb, eligibility, m, eta, post, pre, self.clip)
            else:
                if self.modulation == "none":
                    m = per_sample(self.eta, 2).expand(post.shape[0], 1)
                else:
                    m = self.neuromodulator(signal)
                hebb = clamped_outer_update(traces.hebb, m.to(post.dtype), post, pre, self.clip)
            return Traces(hebb=hebb, eligibility=eligibility, theta=theta)
        delta = self.delta(pre, post, traces)
        if self.modulation == "none":
            change = per_sample(self.eta, 3) * delta
        else:
            m = self.neuromodulator(signal).unsqueeze(2)
            if self.modulation == "simple":
                change = m * delta
            else:  # retroactive: the update uses E from before this step
                change = m * eligibility
                eta = per_sample(self.eta, 3)
                eligibility = (1 - eta) * eligibility + eta * delta
        hebb = torch.clamp(traces.hebb + change, -self.clip, self.clip)
        if self.rule == "bcm":
            theta = (1 - self.bcm_tau) * theta + self.bcm_tau * post.pow(2)
        return Traces(hebb=hebb, eligibility=eligibility, theta=theta)
