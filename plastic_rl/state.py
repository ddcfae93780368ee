"""Helpers for states: nested (Named)tuples of batch-first tensors.

Every stateful module in plastic_rl keeps its per-episode state out of its
attributes; the state is a NamedTuple of tensors (or a tuple of them, for
stacked layers) with the batch in dimension 0. These functions operate on any
such structure, so trainers can store, slice, detach, reset and flatten states
without knowing which module produced them.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

import torch
from torch import Tensor

State = Any  # a Tensor, or a (Named)tuple of States


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    """Apply ``fn`` to every tensor of ``state``, keeping its (Named)tuple structure."""
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple):
        mapped = [map_state(fn, s) for s in state]
        return type(state)(*mapped) if hasattr(state, "_fields") else tuple(mapped)
    raise TypeError(f"state must be a Tensor or a tuple of Tensors; got {type(state).__name__}.")


def state_tensors(state: State) -> List[Tensor]:
    """All tensors of ``state`` in a fixed depth-first order."""
    if isinstance(state, Tensor):
        return [state]
    return [t for s in state for t in state_tensors(s)]


def batch_size_of(state: State) -> int:
    """The batch size (dimension 0) shared by every tensor of ``state``."""
    return state_tensors(state)[0].shape[0]


def check_batch_size(state: State, batch_size: int, name: str = "state") -> None:
    """Raise ``ValueError`` if any tensor of ``state`` does not have ``batch_size`` rows."""
    for t in state_tensors(state):
        if t.dim() == 0 or t.shape[0] != batch_size:
            got = "a scalar" if t.dim() == 0 else f"batch size {t.shape[0]}"
            raise ValueError(f"{name} must have batch size {batch_size} (that of the input); got {got}.")


def reset_state(state: State, done: Tensor) -> State:
    """Zero the rows of ``state`` whose episode ended (``done[b]`` true), leaving the others untouched.

    :param state: any state structure with batch size ``B``.
    :param done: ``(B,)`` bool or 0/1 tensor.
    """
    done = torch.as_tensor(done)
    batch = batch_size_of(state)
    if done.shape != (batch,):
        raise ValueError(f"done must have shape ({batch},) to match the state's batch size; got {tuple(done.shape)}.")

    def zero_rows(t: Tensor) -> Tensor:
        keep = (~done.to(device=t.device, dtype=torch.bool)).to(t.dtype)
        return t * keep.view(-1, *([1] * (t.dim() - 1)))

    return map_state(zero_rows, state)


def detach_state(state: State) -> State:
    """Cut the autograd graph of every tensor of ``state`` (truncated BPTT, rollout storage)."""
    return map_state(Tensor.detach, state)


def index_state(state: State, index) -> State:
    """Select batch rows (an int slice, a bool mask or an index tensor) from every tensor of ``state``."""
    return map_state(lambda t: t[index], state)


def flatten_state(state: State) -> Tensor:
    """Concatenate a state into one ``(batch, D)`` tensor (e.g. to store it in a rollout buffer)."""
    tensors = state_tensors(state)
    batch = tensors[0].shape[0]
    return torch.cat([t.reshape(batch, -1) for t in tensors], dim=1)


def unflatten_state(flat: Tensor, template: State) -> State:
    """Inverse of :func:`flatten_state`: split ``flat`` into the shapes of ``template`` (any batch size)."""
    tensors = state_tensors(template)
    sizes = [t[0].numel() for t in tensors]
    if flat.dim() != 2 or flat.shape[1] != sum(sizes):
        raise ValueError(f"flat state must have shape (batch, {sum(sizes)}); got {tuple(flat.shape)}.")
    pieces: Tuple[Tensor, ...] = torch.split(flat, sizes, dim=1)
    it = iter(p.reshape(flat.shape[0], *t.shape[1:]) for p, t in zip(pieces, tensors))
    return map_state(lambda _t: next(it), template)
