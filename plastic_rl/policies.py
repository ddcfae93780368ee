"""Actor-critic policies built from the plastic modules.

Two families, each with a plastic and a non-plastic form (``plastic=False``
creates no alpha, η or modulator at all):

- :class:`RecurrentActorCritic` — a plastic RNN or LSTM cell with linear policy and
  value heads (Backpropamine's maze network).
- :class:`MLPActorCritic` — a stack of :class:`~plastic_rl.cells.PlasticLinear`
  layers (the quadruped network).

Both follow the same functional protocol as the cells::

    state = policy.initial_state(batch_size)
    out, state = policy(obs, state)          # out.action_params, out.value
    dist = policy.distribution(out)          # Categorical or diagonal Normal
    action, state = policy.act(obs, state, deterministic=True)

and keep their constructor arguments in ``policy.config`` so that
:func:`build_policy` rebuilds the same architecture from a checkpoint.

For fair comparisons, :meth:`matching` builds a twin (e.g. the non-plastic one)
whose width is chosen so that its parameter count is as close as possible to a
reference policy's.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from plastic_rl import state as state_ops
from plastic_rl.cells import ACTIVATIONS, PlasticLinear, PlasticLSTMCell, PlasticRNNCell
from plastic_rl.plasticity import PlasticityConfig, check_choice, check_positive_int, linear, plasticity_config
from plastic_rl.random_weights import RandomWeightLinear, RandomWeightRNNCell
from plastic_rl.spiking import LeakyReadoutSpikingCell

ACTION_TYPES = ("discrete", "continuous")
# "spiking": LIF neurons (SpikePropamine) whose spikes are decoded by a non-spiking leaky readout.
CELLS = {"rnn": PlasticRNNCell, "lstm": PlasticLSTMCell, "spiking": LeakyReadoutSpikingCell}


class PolicyOutput(NamedTuple):
    """What a policy returns for one time step."""

    action_params: Tensor  #: logits (batch, n_actions) or Gaussian mean (batch, action_dim)
    value: Optional[Tensor]  #: (batch,) state-value estimate, None without a value head


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def match_parameter_count(build: Callable[[int], nn.Module], target: int, max_width: int = 4096) -> int:
    """The width ``w`` for which ``count_parameters(build(w))`` is closest to ``target``.

    Parameter counts grow monotonically with width, so a bisection suffices.

    :param build: makes a module of a given width.
    :param target: the parameter count to match.
    :param max_width: largest width searched.
    """
    lo, hi = 1, max_width
    while lo < hi:
        mid = (lo + hi) // 2
        if count_parameters(build(mid)) < target:
            lo = mid + 1
        else:
            hi = mid
    candidates = [w for w in (lo - 1, lo) if w >= 1]
    return min(candidates, key=lambda w: abs(count_parameters(build(w)) - target))


class _ActorCriticBase(nn.Module):
    """Heads, distributions and state plumbing shared by both policy families."""

    config: Dict[str, Any]

    def _init_heads(self, features: int, action_size: int, action_type: str, value_head: bool, log_std_init: Optional[float]):
        self.action_type = action_type
        self.action_size = action_size
        if action_type == "continuous" and log_std_init is not None:
            # State-independent log std, as in SB3's diagonal Gaussian policies. None builds a
            # deterministic policy without it (evolution strategies would otherwise search it in vain).
            self.log_std = nn.Parameter(torch.full((action_size,), float(log_std_init)))
        self.value_head = nn.Linear(features, 1) if value_head else None

    def _value(self, features: Tensor) -> Optional[Tensor]:
        if self.value_head is None:
            return None
        return linear(features, self.value_head.weight, self.value_head.bias).squeeze(-1)

    def distribution(self, output: PolicyOutput) -> Distribution:
        """The action distribution: ``Categorical`` over logits, or a diagonal ``Normal``."""
        if self.action_type == "discrete":
            return Categorical(logits=output.action_params)
        if not hasattr(self, "log_std"):
            raise ValueError("this policy was built with log_std_init=None: it has only its deterministic action (act(..., deterministic=True)).")
        std = self.log_std.exp().expand_as(output.action_params)
        return Independent(Normal(output.action_params, std), 1)

    def act(self, obs: Tensor, state=None, deterministic: bool = False):
        """Sample (or, if ``deterministic``, take the mode of) an action. Returns ``(action, state)``."""
        output, state = self(obs, state)
        if deterministic:
            if self.action_type == "discrete":
                return output.action_params.argmax(dim=-1), state
            return output.action_params, state
        return self.distribution(output).sample(), state

    @staticmethod
    def reset_state(state, done: Tensor):
        """Zero the rows of ``state`` whose episode ended (``done[b]`` true)."""
        return state_ops.reset_state(state, done)

    @classmethod
    def matching(cls, reference: nn.Module, width_argument: str, **overrides):
        """A policy of this class whose ``width_argument`` makes its parameter count match ``reference``.

        :param reference: the policy whose parameter count is matched (e.g. the plastic one).
        :param width_argument: the constructor argument searched (``hidden_size`` or ``width``).
        :param overrides: constructor arguments that differ from ``reference.config`` (e.g. ``plastic=False``).
        """
        kwargs = {**reference.config, **overrides}
        width = match_parameter_count(lambda w: cls(**{**kwargs, width_argument: w}), count_parameters(reference))
        return cls(**{**kwargs, width_argument: width})


def _check_action(action_size: int, action_type: str) -> None:
    check_positive_int("action_size", action_size)
    check_choice("action_type", action_type, ACTION_TYPES)


class RecurrentActorCritic(_ActorCriticBase):
    """A (plastic) RNN/LSTM cell with linear policy and value heads.

    :param obs_size: observation size.
    :param action_size: number of discrete actions, or the continuous action dimension.
    :param action_type: ``"discrete"`` or ``"continuous"``.
    :param hidden_size: recurrent units.
    :param cell: ``"rnn"`` (Backpropamine's plastic Elman cell), ``"lstm"``, or ``"spiking"``
        (:class:`~plastic_rl.spiking.LeakyReadoutSpikingCell`: plastic LIF neurons; the heads read a
        non-spiking leaky integral of the spikes, i.e. they are leaky-integrator output neurons).
    :param plastic: False builds the non-plastic baseline (no alpha, η, modulator).
    :param value_head: False drops the critic (e.g. for evolution strategies, which would otherwise search it).
    :param log_std_init: initial log std of continuous actions; None builds no log std (a deterministic policy, as ES uses).
    :param random_weights: the rules-only variant: the cell is a
        :class:`~plastic_rl.random_weights.RandomWeightRNNCell` whose input and recurrent weights are drawn
        at random at the start of every episode (they travel in the state); the plasticity and the read-out
        heads are learned. Needs ``plastic`` and ``cell="rnn"``.
    :param binary: binarized hidden layer: the cell's input and recurrent weights are ``sign(W_h) / sqrt(fan_in)``
        of real hidden weights (straight-through gradient; the plastic term stays real-valued); the heads stay
        real-valued. Needs ``cell`` ``"rnn"`` or ``"lstm"`` and fixed weights (not ``random_weights``).
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``
        (``modulation``, ``rule``, ``clip``, ``modulator_fanout``, ``alpha_init``, ``alpha_scale``, ``binary_plasticity``, ``eta_init``, ``bcm_tau``).
    """

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        action_type: str = "discrete",
        hidden_size: int = 100,
        cell: str = "rnn",
        plastic: bool = True,
        value_head: bool = True,
        log_std_init: Optional[float] = 0.0,
        random_weights: bool = False,
        plasticity: Optional[PlasticityConfig] = None,
        binary: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("obs_size", obs_size)
        _check_action(action_size, action_type)
        check_choice("cell", cell, tuple(CELLS))
        if binary and (random_weights or cell not in ("rnn", "lstm")):
            raise ValueError("binary=True needs cell 'rnn' or 'lstm' with learned fixed weights (random_weights=False); "
                             f"got cell={cell!r}, random_weights={random_weights!r}.")
        if random_weights and (not plastic or cell != "rnn"):
            raise ValueError("random_weights=True needs plastic=True and cell='rnn' (the rules-only variant of the "
                             f"plastic Elman cell); got plastic={plastic!r}, cell={cell!r}.")
        config = plasticity_config(plasticity, **fields)
        # Flat and plain, so that build_policy(**config) rebuilds it and checkpoints load with weights_only=True.
        self.config = dict(
            obs_size=obs_size, action_size=action_size, action_type=action_type, hidden_size=hidden_size,
            cell=cell, plastic=plastic, value_head=value_head, log_std_init=log_std_init,
            random_weights=bool(random_weights), binary=bool(binary), **config.as_dict(),
        )
        if random_weights:
            self.cell = RandomWeightRNNCell(obs_size, hidden_size, plasticity=config)
        elif binary:
            self.cell = CELLS[cell](obs_size, hidden_size, plastic=plastic, plasticity=config, binary=True)
        else:
            self.cell = CELLS[cell](obs_size, hidden_size, plastic=plastic, plasticity=config)
        self.action_head = nn.Linear(hidden_size, action_size)
        self._init_heads(hidden_size, action_size, action_type, value_head, log_std_init)

    @classmethod
    def matching(cls, reference: nn.Module, **overrides) -> "RecurrentActorCritic":
        """Twin of ``reference`` (e.g. ``plastic=False``) with ``hidden_size`` chosen to match its parameter count."""
        return super().matching(reference, "hidden_size", **overrides)

    def initial_state(self, batch_size: int, generator: Optional[torch.Generator] = None):
        """The cell's zero state for ``batch_size`` episodes (rules-only: with this episode's random weights).

        :param batch_size: number of episodes.
        :param generator: rules-only: the generator of the random weights (None: torch's global one).
        """
        if self.config.get("random_weights"):
            return self.cell.initial_state(batch_size, generator)
        return self.cell.initial_state(batch_size)

    def reset_state(self, state, done: Tensor, generator: Optional[torch.Generator] = None):
        """Start new episodes in the rows whose episode ended (``done[b]`` true): zero state (rules-only: new weights).

        :param state: the current state.
        :param done: ``(batch,)`` bool or 0/1 tensor.
        :param generator: rules-only: the generator of the new weights (None: torch's global one).
        """
        if self.config.get("random_weights"):
            return self.cell.reset_state(state, done, generator)
        return state_ops.reset_state(state, done)

    def forward(self, obs: Tensor, state=None) -> Tuple[PolicyOutput, Any]:
        """One step: ``(PolicyOutput(action_params, value), new_state)``; ``state=None`` starts an episode."""
        h, state = self.cell(obs, state)
        return PolicyOutput(linear(h, self.action_head.weight, self.action_head.bias), self._value(h)), state

    def run_sequence(self, x: Tensor, state, starts: Optional[Tensor] = None) -> Tuple[PolicyOutput, Any]:
        """Every step of a time-first sequence ``x`` ``(L, B, F)`` from ``state``: what ``L`` calls of
        :meth:`forward` give, with the outputs stacked time-major (``(L * B, ...)``, row ``t * B + b``).

        Only the recurrence runs step by step: the input projection (for cells with a
        ``project_input``: the RNN and LSTM cells with fixed weights) and the heads are applied to
        the whole sequence in one matmul each, which is what
        makes re-running stored sequences (PlasticPPO's update) cheaper than ``L`` forwards.

        :param x: inputs, time first.
        :param state: the state entering step 0.
        :param starts: ``(L, B)``, 1 where a new episode starts at that step (the state is zeroed before it).
        :return: ``(PolicyOutput, state after the last step)``.
        """
        length, batch = x.shape[:2]
        project = getattr(self.cell, "project_input", None)
        projected = project(x) if project is not None else None
        restart = starts.any(dim=1).tolist() if starts is not None else [False] * length  # one host sync, not L
        hidden = []
        for t in range(length):
            if restart[t]:
                state = self.reset_state(state, starts[t])
            if projected is None:
                h, state = self.cell(x[t], state)
            else:
                h, state = self.cell(x[t], state, projected_input=projected[t])
            hidden.append(h)
        h = torch.cat(hidden)
        return PolicyOutput(linear(h, self.action_head.weight, self.action_head.bias), self._value(h)), state


class MLPActorCritic(_ActorCriticBase):
    """A stack of (plastic) linear layers with a policy output and an optional value head.

    Every hidden layer and the action layer are :class:`PlasticLinear` (plastic
    unless ``plastic=False``); the value head is an ordinary linear read-out of
    the last hidden layer. The state is a tuple with one ``LinearState`` per layer.

    :param obs_size: observation size.
    :param action_size: number of discrete actions, or the continuous action dimension.
    :param action_type: ``"discrete"`` or ``"continuous"``.
    :param hidden_sizes: sizes of the hidden layers; ignored if ``width`` is given.
    :param width: if given, every hidden layer has this size (``len(hidden_sizes)`` layers);
        used by :meth:`matching`.
    :param activation: hidden activation (``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"identity"``).
    :param output_activation: activation of the action layer (``"tanh"`` bounds actions to [-1, 1]).
    :param plastic: False builds the static baseline.
    :param value_head: False drops the critic (evolution strategies).
    :param log_std_init: initial log std of continuous actions; None builds no log std (a deterministic policy, as ES uses).
    :param random_weights: the rules-only variant (Najarro & Risi 2020): every layer is a
        :class:`~plastic_rl.random_weights.RandomWeightLinear` whose weights are drawn at random at the
        start of every episode (they travel in the state); only the plasticity is learned. Needs ``plastic``.
    :param binary: binarized hidden layers: their weights are ``sign(W_h) / sqrt(fan_in)`` of real hidden weights
        (straight-through gradient; the plastic term stays real-valued); the action layer and the value head stay
        real-valued. Not with ``random_weights``.
    :param binary_output: with ``binary``, binarize the action layer too (the value head stays real-valued). In a
        real-valued layer ``|W|`` is the output's scale, so MetaplasticAdam's outward drift of consolidated weights
        saturates the actions; in a binarized one only ``sign(W)`` acts, and ``|W|`` is free to mean consolidation.
    :param binary_output_scale: with ``binary_output``, the magnitude of every binary action weight (default
        ``1 / sqrt(fan_in)``, as the hidden layers). That default makes the first actions large; a scale near
        the size a real-valued action layer reaches (e.g. 0.03 for PPO on Ant) keeps them small.
    :param plasticity: the plasticity hyper-parameters (:class:`~plastic_rl.plasticity.PlasticityConfig`).
    :param fields: :class:`~plastic_rl.plasticity.PlasticityConfig` fields overriding ``plasticity``
        (``modulation``, ``rule``, ``clip``, ``modulator_fanout``, ``alpha_init``, ``alpha_scale``, ``binary_plasticity``, ``eta_init``, ``bcm_tau``).
    """

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        action_type: str = "continuous",
        hidden_sizes: Sequence[int] = (64, 64),
        width: Optional[int] = None,
        activation: str = "tanh",
        output_activation: str = "identity",
        plastic: bool = True,
        value_head: bool = True,
        log_std_init: Optional[float] = 0.0,
        random_weights: bool = False,
        plasticity: Optional[PlasticityConfig] = None,
        binary: bool = False,
        binary_output: bool = False,
        binary_output_scale: Optional[float] = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        check_positive_int("obs_size", obs_size)
        _check_action(action_size, action_type)
        check_choice("output_activation", output_activation, tuple(ACTIVATIONS))
        if binary_output and not binary:
            raise ValueError("binary_output=True binarizes the action layer as well as the hidden layers; it needs binary=True.")
        if binary_output_scale is not None and not binary_output:
            raise ValueError("binary_output_scale sets the binary action layer's weight magnitude; it needs binary_output=True.")
        if binary and random_weights:
            raise ValueError("binary=True needs learned fixed weights to binarize; it cannot be combined with random_weights=True.")
        if random_weights and not plastic:
            raise ValueError("random_weights=True needs plastic=True: with weights drawn at random every episode "
                             "and no plasticity there is nothing to learn.")
        hidden_sizes = tuple(hidden_sizes)
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer; got an empty sequence.")
        if width is not None:
            check_positive_int("width", width)
            hidden_sizes = (width,) * len(hidden_sizes)
        for size in hidden_sizes:
            check_positive_int("hidden_sizes", size)
        config = plasticity_config(plasticity, **fields)
        self.config = dict(
            obs_size=obs_size, action_size=action_size, action_type=action_type, hidden_sizes=list(hidden_sizes),
            width=None, activation=activation, output_activation=output_activation, plastic=plastic,
            value_head=value_head, log_std_init=log_std_init, random_weights=bool(random_weights), binary=bool(binary),
            binary_output=bool(binary_output), binary_output_scale=binary_output_scale, **config.as_dict(),
        )
        sizes = (obs_size,) + hidden_sizes + (action_size,)
        activations = [activation] * len(hidden_sizes) + [output_activation]
        if random_weights:
            self.layers = nn.ModuleList(
                RandomWeightLinear(sizes[k], sizes[k + 1], activation=activations[k], plasticity=config)
                for k in range(len(sizes) - 1)
            )
        else:
            self.layers = nn.ModuleList(
                PlasticLinear(sizes[k], sizes[k + 1], activation=activations[k], plastic=plastic, plasticity=config,
                              binary=binary and (k < len(hidden_sizes) or binary_output),  # the action layer: binary_output
                              binary_scale=binary_output_scale if k == len(hidden_sizes) else None)
                for k in range(len(sizes) - 1)
            )
        self._init_heads(hidden_sizes[-1], action_size, action_type, value_head, log_std_init)

    @classmethod
    def matching(cls, reference: nn.Module, **overrides) -> "MLPActorCritic":
        """Twin of ``reference`` (e.g. ``plastic=False``) with equal hidden widths matching its parameter count."""
        return super().matching(reference, "width", **overrides)

    def initial_state(self, batch_size: int, generator: Optional[torch.Generator] = None) -> Tuple:
        """One zero ``LinearState`` per layer (rules-only: a ``RandomWeightState`` with this episode's weights).

        :param batch_size: number of episodes.
        :param generator: rules-only: the generator of the random weights (None: torch's global one).
        """
        if self.config.get("random_weights"):
            return tuple(layer.initial_state(batch_size, generator) for layer in self.layers)
        return tuple(layer.initial_state(batch_size) for layer in self.layers)

    def reset_state(self, state, done: Tensor, generator: Optional[torch.Generator] = None):
        """Start new episodes in the rows whose episode ended (``done[b]`` true): zero traces (rules-only: new weights).

        :param state: the current state (one entry per layer).
        :param done: ``(batch,)`` bool or 0/1 tensor.
        :param generator: rules-only: the generator of the new weights (None: torch's global one).
        """
        if self.config.get("random_weights"):
            return tuple(layer.reset_state(s, done, generator) for layer, s in zip(self.layers, state))
        return state_ops.reset_state(state, done)

    def forward(self, obs: Tensor, state=None) -> Tuple[PolicyOutput, Any]:
        """One step: ``(PolicyOutput(action_params, value), new_state)``; ``state=None`` starts an episode."""
        if state is None:
            state = self.initial_state(obs.shape[0])
        elif len(state) != len(self.layers):
            raise ValueError(f"state must hold one entry per layer ({len(self.layers)}); got {len(state)}.")
        x, new_state, hidden = obs, [], obs
        for layer, layer_state in zip(self.layers, state):
            hidden = x
            x, layer_state = layer(x, layer_state)
            new_state.append(layer_state)
        return PolicyOutput(x, self._value(hidden)), tuple(new_state)


POLICIES = {"recurrent": RecurrentActorCritic, "mlp": MLPActorCritic}


def build_policy(kind: str, **config) -> _ActorCriticBase:
    """Build a policy from its kind and ``config`` (as stored in ``policy.config``).

    :param kind: ``"recurrent"`` or ``"mlp"``.
    :param config: constructor arguments.
    """
    check_choice("policy kind", kind, tuple(POLICIES))
    return POLICIES[kind](**config)


def policy_kind(policy: nn.Module) -> str:
    """The :func:`build_policy` kind of ``policy``."""
    for kind, cls in POLICIES.items():
        if isinstance(policy, cls):
            return kind
    raise TypeError(f"policy must be one of {', '.join(c.__name__ for c in POLICIES.values())}; got {type(policy).__name__}.")


def export_policy(policy: nn.Module) -> Dict[str, Any]:
    """A checkpoint-safe record of ``policy``: its kind, constructor config and CPU weights.

    The record holds only plain Python values and tensors, so it loads with
    ``torch.load(..., weights_only=True)`` and needs none of the training code's objects.
    """
    return {
        "kind": policy_kind(policy),
        "config": dict(policy.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()},
    }


def load_policy(record: Dict[str, Any], device: Any = "cpu") -> _ActorCriticBase:
    """Rebuild the policy saved by :func:`export_policy` (on ``device``)."""
    missing = {"kind", "config", "state_dict"} - set(record)
    if missing:
        raise ValueError(f"policy record must have the keys kind, config and state_dict; missing {', '.join(sorted(missing))}.")
    policy = build_policy(record["kind"], **record["config"])
    policy.load_state_dict(record["state_dict"])
    return policy.to(device)
