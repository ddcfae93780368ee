"""``MetaplasticAdam``: Adam whose steps toward zero shrink as a hidden weight grows (Laborieux et al. 2021).

In a binarized network the sign of a hidden weight ``W_h`` is the synapse and
``|W_h|`` is how firmly it is set. Metaplasticity makes a firmly set synapse hard
to flip: wherever Adam's step would *shrink* ``|W_h|`` (``sign(W_h) · m_t > 0``,
``m_t`` the first moment, since the step is ``−lr · m̂_t / (√v̂_t + ε)``), the first
moment used in the step is multiplied by

    f_meta = 1 − tanh²(meta · |W_h|),

which tends to 0 as ``|W_h|`` grows. Steps that grow ``|W_h|`` are untouched, so
consolidation is free and forgetting is hard. Only tensors of dimension > 1
(weight matrices) are treated this way; biases, batch-norm scales and other 1-D
parameters get plain Adam. ``meta`` is set per parameter group, and ``meta = 0``
is exactly ``torch.optim.Adam`` (same state, same arithmetic, bit for bit).

As in the reference implementation, f_meta scales the moment *used in the
step*; the stored running moments are Adam's own, so a state dict moves freely
between this optimizer and ``torch.optim.Adam``.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["MetaplasticAdam", "metaplastic_factor", "meta_for_name", "meta_param_groups"]


def metaplastic_factor(weight: Tensor, meta: float) -> Tensor:
    """``f_meta = 1 − tanh²(meta · |weight|)``, elementwise.

    :param weight: the hidden weights.
    :param meta: the metaplasticity strength ``m`` (0 gives 1 everywhere).
    """
    return 1 - torch.tanh(meta * weight.abs()).pow(2)


def meta_for_name(name: str, meta: float, meta_groups: Optional[Mapping[str, float]] = None) -> float:
    """The m a parameter called ``name`` gets: the first pattern of ``meta_groups`` it matches, else ``meta``.

    :param name: the parameter's name, as ``module.named_parameters()`` gives it (e.g. ``core.layers.2.weight``).
    :param meta: the m of parameters no pattern matches.
    :param meta_groups: shell-style patterns (``fnmatch``: ``*``, ``?``, ``[...]``) to m, tried in order.
    """
    for pattern, value in (meta_groups or {}).items():
        if fnmatch.fnmatchcase(name, pattern):
            return float(value)
    return float(meta)


def meta_param_groups(
    named_parameters: Iterable[Tuple[str, Tensor]], meta: float, meta_groups: Optional[Mapping[str, float]] = None
) -> List[Dict[str, Any]]:
    """Parameter groups for :class:`MetaplasticAdam` with an m chosen by parameter name.

    One m for a whole network treats every weight matrix alike, but how large a
    consolidated weight is depends on the layer: a binarized layer's hidden
    weights grow to ~0.3, while a real-valued output layer initialized at a small
    scale (SB3's action layer: gain 0.01) stays near 0.03, where f_meta ≈ 1 for any
    moderate m. ``meta_groups`` sets another m for the tensors it names.

    :param named_parameters: ``(name, parameter)`` pairs, e.g. ``policy.named_parameters()``.
    :param meta: the m of every parameter no pattern matches.
    :param meta_groups: shell-style name patterns to m, tried in order (the first match wins).
    :returns: one group per pattern that matched (with its ``meta``), then the unmatched parameters (``meta``),
        empty groups left out; the order is fixed by the patterns and the parameters' order.
    :raises ValueError: a pattern that matches no parameter (the message lists the names), or an m that is
        not a finite number >= 0.
    """
    meta_groups = dict(meta_groups or {})
    named = list(named_parameters)
    for pattern, value in meta_groups.items():
        if not isinstance(pattern, str) or not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0):
            raise ValueError(f"meta_groups must map parameter-name patterns to numbers >= 0; got {pattern!r}: {value!r}.")
    buckets: Dict[Optional[str], List[Tensor]] = {pattern: [] for pattern in meta_groups}
    buckets[None] = []
    for name, param in named:
        owner = next((pattern for pattern in meta_groups if fnmatch.fnmatchcase(name, pattern)), None)
        buckets[owner].append(param)
    unused = [pattern for pattern in meta_groups if not buckets[pattern]]
    if unused:
        names = ", ".join(name for name, _ in named)
        raise ValueError(f"meta_groups pattern {unused[0]!r} matches no parameter (the first match wins, so an earlier "
                         f"pattern may have taken them); the parameters are: {names}.")
    groups = [{"params": params, "meta": float(meta_groups[pattern])} for pattern, params in buckets.items()
              if pattern is not None]
    if buckets[None]:
        groups.append({"params": buckets[None], "meta": float(meta)})
    return groups


def _check_hyperparameters(lr: float, betas: Tuple[float, float], eps: float, weight_decay: float, meta: float) -> None:
    if not (isinstance(lr, (int, float)) and lr >= 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite number >= 0; got {lr!r}.")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0.0 <= b < 1.0 for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1); got {betas!r}.")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}.")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}.")
    if not (isinstance(meta, (int, float)) and not isinstance(meta, bool) and meta >= 0 and math.isfinite(meta)):
        raise ValueError(f"meta must be a finite number >= 0 (0 = plain Adam); got {meta!r}.")


class MetaplasticAdam(torch.optim.Optimizer):
    """Adam with Laborieux et al.'s metaplastic attenuation of steps that shrink ``|W|``.

    :param params: parameters or parameter groups (a group may set its own ``meta``).
    :param lr: step size.
    :param betas: decay rates of the first and second moments.
    :param eps: added to the denominator.
    :param weight_decay: L2 penalty added to the gradient (as ``torch.optim.Adam``'s, not AdamW's).
    :param meta: metaplasticity strength ``m`` for tensors of dimension > 1; 0 is plain Adam.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        meta: float = 0.0,
    ) -> None:
        _check_hyperparameters(lr, betas, eps, weight_decay, meta)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, meta=meta))
        for group in self.param_groups:
            _check_hyperparameters(group["lr"], group["betas"], group["eps"], group["weight_decay"], group["meta"])

    @torch.no_grad()
    def step(self, closure=None):
        """One optimization step.

        :param closure: optional; re-evaluates the model and returns the loss, which ``step`` returns.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay, meta = group["lr"], group["eps"], group["weight_decay"], group["meta"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError("MetaplasticAdam does not support sparse gradients.")
                grad = param.grad
                state = self.state[param]
                if len(state) == 0:
                    # The same state layout as torch.optim.Adam (step as a CPU float tensor).
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t += 1
                if weight_decay != 0:
                    grad = grad.add(param, alpha=weight_decay)
                # The operations and their order are torch.optim.Adam's single-tensor path,
                # so that meta = 0 reproduces it bit for bit.
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = step_t.item()
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2**0.5
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                moment = exp_avg
                if meta != 0 and param.dim() > 1:
                    # The step is -step_size * moment / denom: it shrinks |W| where sign(W) * moment > 0.
                    shrinks = torch.sign(param) * exp_avg > 0
                    moment = torch.where(shrinks, exp_avg * metaplastic_factor(param, meta), exp_avg)
                param.addcdiv_(moment, denom, value=-step_size)
        return loss
