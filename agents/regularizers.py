"""Weight regularizers against forgetting: EWC and L2 to the weights of earlier tasks.

After task ``k`` is learned, a consolidation stores the weights ``θ*_k`` and an
importance per weight ``F_k``; while later tasks are learned the loss gains

    (λ / 2) Σ_k Σ_i F_k,i (θ_i − θ*_k,i)²

- EWC (Kirkpatrick et al. 2017): ``F_k`` is the diagonal Fisher information of the
  policy on task ``k``, estimated from episodes of that task as the mean squared
  gradient of each episode's action log-likelihood (divided by the episode length,
  so that ``λ`` does not depend on it);
- L2: ``F_k = 1`` for every weight.

Either can be limited to some tensors (``regularizer_params``, name patterns): the
others get importance 0 (e.g. only the biases, which MetaplasticAdam leaves to plain
Adam).

Unlike the policy, the regularizer is told where a task ends: that is what EWC
needs (Continual World's EWC baseline does the same).
"""

from __future__ import annotations

import fnmatch
from typing import Dict, Iterable, List, NamedTuple, Sequence

import torch
from torch import Tensor, nn

__all__ = ["REGULARIZERS", "Consolidation", "consolidation_penalty", "fisher_diagonal", "l2_consolidation",
           "regularized_names", "restrict_consolidation"]

REGULARIZERS = ("none", "ewc", "l2")


class Consolidation(NamedTuple):
    """What is kept of one finished task: its weights and their importance (name -> tensor)."""

    anchor: Dict[str, Tensor]
    importance: Dict[str, Tensor]


def consolidation_penalty(model: nn.Module, consolidations: Iterable[Consolidation], strength: float) -> Tensor:
    """``(strength / 2) Σ_k Σ_i F_k,i (θ_i − θ*_k,i)²`` over the named parameters of ``model``.

    :param model: the policy.
    :param consolidations: one per finished task.
    :param strength: λ.
    """
    params = dict(model.named_parameters())
    total = torch.zeros((), device=next(model.parameters()).device)
    for c in consolidations:
        for name, anchor in c.anchor.items():
            total = total + (c.importance[name] * (params[name] - anchor).pow(2)).sum()
    return 0.5 * strength * total


def _anchor(model: nn.Module) -> Dict[str, Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def l2_consolidation(model: nn.Module) -> Consolidation:
    """The current weights with importance 1 everywhere.

    :param model: the policy after a task.
    """
    anchor = _anchor(model)
    return Consolidation(anchor, {name: torch.ones_like(a) for name, a in anchor.items()})


def restrict_consolidation(consolidation: Consolidation, names: Iterable[str]) -> Consolidation:
    """``consolidation`` with importance 0 outside ``names``: the penalty then pulls only those tensors back.

    :param consolidation: a task's anchor and importance.
    :param names: the parameter names the penalty keeps covering.
    """
    keep = set(names)
    importance = {n: (f if n in keep else torch.zeros_like(f)) for n, f in consolidation.importance.items()}
    return Consolidation(consolidation.anchor, importance)


def regularized_names(names: Iterable[str], patterns: Sequence[str]) -> List[str]:
    """The names that match any of the shell-style ``patterns``; a pattern that matches none is an error.

    :param names: parameter names.
    :param patterns: e.g. ``["*.bias"]``.
    """
    names = list(names)
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ValueError(f"regularizer_params pattern {pattern!r} matches no parameter; the parameters are: "
                             f"{', '.join(names)}.")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def fisher_diagonal(model: nn.Module, episode_log_likelihoods: Tensor, episode_length: int) -> Consolidation:
    """EWC's consolidation: the current weights and the diagonal Fisher from per-episode log-likelihoods.

    :param model: the policy after a task.
    :param episode_log_likelihoods: ``(E,)`` ``Σ_t log π(a_t | history)`` of ``E`` episodes of the task,
        with their graph (actions sampled from the policy itself, so this is the Fisher, not the empirical one).
    :param episode_length: steps per episode (the squared gradients are divided by it).
    """
    anchor = _anchor(model)
    names = list(anchor)
    params = [dict(model.named_parameters())[n] for n in names]
    fisher: List[Tensor] = [torch.zeros_like(p) for p in params]
    count = episode_log_likelihoods.shape[0]
    for e in range(count):
        grads = torch.autograd.grad(episode_log_likelihoods[e], params, retain_graph=e < count - 1, allow_unused=True)
        for f, g in zip(fisher, grads):
            if g is not None:
                f.add_(g.detach().pow(2))
    scale = 1.0 / (count * episode_length)
    return Consolidation(anchor, {n: f * scale for n, f in zip(names, fisher)})
