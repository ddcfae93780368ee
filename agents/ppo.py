"""PlasticPPO: stable-baselines3's PPO with plastic (and static) policies from the plastic core.

Read top to bottom:

1. :class:`PlasticActorCriticPolicy` and its three names — ``"PlasticLstmPolicy"``,
   ``"PlasticRnnPolicy"``, ``"PlasticMlpPolicy"`` — an SB3 policy around the core's
   :class:`~plastic_rl.policies.RecurrentActorCritic` / :class:`~plastic_rl.policies.MLPActorCritic`.
   ``policy_kwargs`` use the core's names (``hidden_size``, ``modulation``, ``rule``,
   ``clip``, ...); ``plastic=False`` builds the static twin whose width matches the
   plastic network's parameter count.
2. :class:`SequenceRolloutBuffer` — SB3's ``RolloutBuffer`` plus the policy state at
   the start of each *sequence*, and minibatches of whole sequences.
3. :class:`PlasticPPO` — SB3's ``PPO``: its ``train()`` (clipped loss, value loss,
   entropy, KL early stop, logging) is used unchanged; only ``collect_rollouts``
   (which carries the state) and the model set-up are new.

How the plastic traces are handled (DESIGN.md §4)
-------------------------------------------------
The traces (and an RNN/LSTM's hidden state) are recurrent state. During the
rollout the state of each env is carried from step to step and zeroed at
``episode_start``. The buffer does **not** store a state per step: a plastic
LSTM of hidden 64 (with its critic's LSTM state) is 4,352 floats, and 2,048
steps × 8 envs of it would be 285 MB. It stores the state only at the start of
every sequence of ``sequence_length`` consecutive steps of one env
(``n_steps / sequence_length`` states per env and rollout: 17.8 MB for the
example above at the default ``sequence_length=16``), and the update re-runs each
sequence from that stored state with the current weights, zeroing the state again
at every episode start inside it. A minibatch is ``batch_size / sequence_length``
whole sequences stepped together in one batched forward per time step, which is
what makes the update fast: the update costs ``sequence_length`` sequential steps
per minibatch, whatever the batch. ``sequence_length = n_steps`` is CleanRL's
scheme (the state at the start of the rollout, whole env sequences per
minibatch); shorter sequences truncate backpropagation at their start (the
forward pass is still exact: it starts from the stored state, as R2D2's stored
states) and run faster. A stateless policy (the static MLP: no traces, no hidden
state) needs no sequences: its samples are shuffled one by one as in SB3's PPO.

Everything an SB3 user does works: ``learn(progress_bar=True)``, callbacks,
``save()`` / ``PlasticPPO.load()``, ``predict(obs, state, episode_start,
deterministic)`` (``state`` is the actor's state as an ``(n_envs, actor_state_size)`` array), ``evaluate_policy``,
the logger and TensorBoard, ``make_vec_env`` with ``SubprocVecEnv``, ``VecNormalize``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar, Dict, Generator, NamedTuple, Optional, Tuple, Type

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch import Tensor, nn

from plastic_rl import state as state_ops
from plastic_rl.plasticity import PLASTICITY_FIELDS
from plastic_rl.policies import MLPActorCritic, PolicyOutput, RecurrentActorCritic

CRITICS = ("separate", "shared")
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

__all__ = [
    "PlasticActorCriticPolicy", "PlasticLstmPolicy", "PlasticRnnPolicy", "PlasticSpikingPolicy", "PlasticMlpPolicy",
    "SequenceBatch", "SequenceRolloutSamples", "SequenceRolloutBuffer", "PlasticPPO",
]


# ------------------------------------------------------------------------------------------------ critics
class CriticState(NamedTuple):
    """State of :class:`RecurrentCritic`: batch-first; ``c`` is ``(batch, 0)`` for an RNN."""

    h: Tensor
    c: Tensor


class RecurrentCritic(nn.Module):
    """The separate critic of a recurrent policy: torch's (non-plastic) ``nn.LSTM`` / ``nn.RNN`` and a linear value head.

    It learns only values, so it needs no plasticity; using torch's fused recurrent
    layer lets :meth:`run` process a whole sequence in one call (split only where an
    episode starts inside it), instead of one Python-level step per time step.

    :param obs_size: input features.
    :param hidden_size: recurrent units.
    :param cell: ``"lstm"`` or ``"rnn"`` (tanh).
    """

    def __init__(self, obs_size: int, hidden_size: int, cell: str) -> None:
        super().__init__()
        self.cell, self.hidden_size = cell, hidden_size
        self.rnn = nn.LSTM(obs_size, hidden_size) if cell == "lstm" else nn.RNN(obs_size, hidden_size, nonlinearity="tanh")
        self.value_head = nn.Linear(hidden_size, 1)

    def initial_state(self, batch_size: int) -> CriticState:
        """Zero hidden (and cell) state for ``batch_size`` episodes."""
        weight = self.value_head.weight
        h = torch.zeros(batch_size, self.hidden_size, device=weight.device, dtype=weight.dtype)
        return CriticState(h, h.clone() if self.cell == "lstm" else h[:, :0])

    def _call(self, x: Tensor, state: CriticState) -> Tuple[Tensor, CriticState]:
        if self.cell == "lstm":
            out, (h, c) = self.rnn(x, (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous()))
            return out, CriticState(h[0], c[0])
        out, h = self.rnn(x, state.h.unsqueeze(0).contiguous())
        return out, CriticState(h[0], state.c)

    def forward(self, x: Tensor, state: CriticState) -> Tuple[Tensor, CriticState]:
        """One step: ``(value (batch,), new_state)``.

        The cell function on the layer's own weights (``torch.lstm_cell`` / ``torch.rnn_tanh_cell``, what
        ``nn.LSTMCell`` / ``nn.RNNCell`` call): for one step it costs a fraction of ``nn.LSTM``'s
        sequence machinery, and a rollout calls it once per env step.
        """
        rnn = self.rnn
        weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
        if self.cell == "lstm":
            h, c = torch.lstm_cell(x, (state.h, state.c), *weights)
            state = CriticState(h, c)
        else:
            h = torch.rnn_tanh_cell(x, state.h, *weights)
            state = CriticState(h, state.c)
        return self.value_head(h).squeeze(-1), state

    def run(self, x: Tensor, starts: Tensor, any_start: list, state: CriticState) -> Tensor:
        """Values ``(L, B)`` of a time-first sequence ``x`` ``(L, B, F)``, zeroing rows where ``starts``."""
        outputs, begin = [], 0
        cuts = [t for t in range(1, len(any_start)) if any_start[t]] + [len(any_start)]
        for end in cuts:
            if any_start[begin]:
                state = _zero_rows(state, starts[begin])
            out, state = self._call(x[begin:end], state)
            outputs.append(out)
            begin = end
        return self.value_head(torch.cat(outputs)).squeeze(-1)


class FeedForwardCritic(nn.Module):
    """The separate critic of an MLP policy: the core's non-plastic (stateless) MLP, its value head read out.

    :param core: a non-plastic :class:`~plastic_rl.policies.MLPActorCritic` with a value head.
    """

    def __init__(self, core: nn.Module) -> None:
        super().__init__()
        self.core = core
        self.value_head = core.value_head

    def initial_state(self, batch_size: int):
        """The core's (zero-width) state."""
        return self.core.initial_state(batch_size)

    def forward(self, x: Tensor, state) -> Tuple[Tensor, Any]:
        """One step: ``(value (batch,), state)``."""
        output, state = self.core(x, state)
        return output.value, state

    def run(self, x: Tensor, starts: Tensor, any_start: list, state) -> Tensor:
        """Values ``(L, B)`` of a time-first sequence: stateless, so all steps in one batch."""
        length, n = x.shape[:2]
        output, _ = self.core(x.reshape(length * n, -1), self.core.initial_state(length * n))
        return output.value.view(length, n)


# ---------------------------------------------------------------------------------------------- 1. policies
def _zero_rows(state, episode_starts: Tensor):
    """``state`` with the rows where ``episode_starts`` is 1 zeroed (``plastic_rl.state.reset_state`` with
    the keep-mask built once per step, not once per tensor: this runs at every step of the update)."""
    keep = 1.0 - episode_starts.to(torch.float32)
    return state_ops.map_state(lambda t: t * keep.view(-1, *([1] * (t.dim() - 1))).to(t.dtype), state)


#: Rules-only policies draw their weights per episode from a seed carried in the state; the seeds ride in the
#: float32 flat state of the rollout buffer, which holds integers exactly below 2**24.
_SEED_MODULUS = 2 ** 24


def _next_episode_seeds(seeds: Tensor) -> Tensor:
    """The seeds of the next episodes: one step of a full-period linear congruential generator modulo 2**24."""
    return torch.remainder(seeds.to(torch.int64) * 1103515245 + 12345, _SEED_MODULUS).to(seeds.dtype)


class SequenceBatch(NamedTuple):
    """Whole sequences for the update, time first: what :meth:`PlasticActorCriticPolicy.evaluate_actions` re-runs."""

    observations: Tensor  #: (L, B, *obs_shape)
    episode_starts: Tensor  #: (L, B), 1 where the step starts a new episode (the state is zeroed before it)
    states: Tensor  #: (B, state_size) flattened policy state entering each sequence's first step


class PlasticActorCriticPolicy(BasePolicy):
    """An SB3 actor-critic policy whose network is a plastic-core policy.

    The core policy (``self.core``) keeps its per-episode state outside itself;
    this class passes that state in and out as SB3's recurrent policies do.

    :param observation_space: a ``Box`` or ``Discrete`` observation space.
    :param action_space: a ``Box`` (Gaussian actions) or ``Discrete`` action space.
    :param lr_schedule: learning-rate schedule (its value at progress 1 builds the optimizer).
    :param use_sde: must be False (no state-dependent exploration).
    :param plastic: False builds the static twin (no alpha, η or modulator).
    :param critic: ``"separate"`` (default): the value comes from a second, non-plastic network of the
        same kind and size (:class:`RecurrentCritic`, torch's LSTM/RNN, for recurrent policies;
        :class:`FeedForwardCritic` for MLP policies), as SB3's ``MlpPolicy`` and sb3-contrib's
        ``MlpLstmPolicy`` keep the critic apart; ``"shared"``: the value head reads the actor's own features (Backpropamine's A2C), so
        value-loss gradients flow back through the actor's recurrence and traces.
    :param match_parameters: with ``plastic=False``, widen the twin to the plastic network's parameter count.
    :param ortho_init: SB3's initialisation of the output heads (orthogonal, gain 0.01 for
        the action head and 1 for the value head, zero biases); the hidden layers keep the core's.
    :param normalize_images: divide image observations by 255.
    :param optimizer_class: the optimizer (Adam, with SB3's PPO default eps 1e-5).
    :param optimizer_kwargs: extra optimizer arguments.
    :param core_kwargs: arguments of the core policy, by the core's names.
    """

    #: the core class and the fixed arguments the named subclasses give it
    core_class: ClassVar[Type[nn.Module]] = RecurrentActorCritic
    core_defaults: ClassVar[Dict[str, Any]] = {}

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        use_sde: bool = False,
        plastic: bool = True,
        critic: str = "separate",
        match_parameters: bool = True,
        ortho_init: bool = True,
        normalize_images: bool = True,
        optimizer_class: Type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: Optional[Dict[str, Any]] = None,
        **core_kwargs: Any,
    ) -> None:
        if optimizer_kwargs is None:
            optimizer_kwargs = {"eps": 1e-5} if optimizer_class is torch.optim.Adam else {}
        super().__init__(
            observation_space, action_space, normalize_images=normalize_images,
            optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs,
        )
        if use_sde:
            raise ValueError("use_sde must be False for plastic policies (gSDE is not supported).")
        if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
            raise ValueError(f"observation_space must be a Box or Discrete space for {type(self).__name__}; got {observation_space}.")
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}; got {critic!r}.")
        self.plastic, self.critic_kind, self.match_parameters, self.ortho_init = plastic, critic, match_parameters, ortho_init
        #: rules-only (``random_weights=True``): the actor's weights are redrawn at every episode start, from a
        #: per-env seed chain kept in the training state, so that the update replays exactly the rollout's weights
        self.rules_only = bool(core_kwargs.get("random_weights", False))
        self.core_kwargs = dict(core_kwargs)
        separate = critic == "separate"
        #: the actor (the policy that is evaluated, exported and compared); with a separate critic it has no value head
        self.core = self._build_core(observation_space, action_space, plastic, match_parameters, core_kwargs, value_head=not separate)
        #: the separate critic (a non-plastic network of the actor's kind and configured size), or None
        self.critic = self._build_critic(observation_space, action_space, core_kwargs) if separate else None
        if ortho_init:
            self._init_heads()
        self._state_template = self.initial_state(1)
        self.state_size = int(state_ops.flatten_state(self._state_template).shape[1])
        self._actor_template = self.core.initial_state(1)
        #: size of the flattened actor state, the ``state`` that :meth:`predict` takes and returns
        self.actor_state_size = int(state_ops.flatten_state(self._actor_template).shape[1])
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    # --- construction
    @classmethod
    def _build_core(cls, observation_space, action_space, plastic: bool, match_parameters: bool, core_kwargs: Dict[str, Any],
                    value_head: bool = True) -> nn.Module:
        signature = set(inspect.signature(cls.core_class).parameters)
        allowed = (signature | set(PLASTICITY_FIELDS)) - {"obs_size", "action_size", "action_type", "plastic", "value_head", "fields"}
        allowed -= set(cls.core_defaults)
        unknown = sorted(set(core_kwargs) - allowed)
        if unknown:
            raise ValueError(
                f"policy_kwargs of {cls.__name__} got unknown argument {unknown[0]!r}; allowed: "
                f"{', '.join(sorted(allowed | {'plastic', 'match_parameters', 'ortho_init', 'optimizer_class', 'optimizer_kwargs'}))}."
            )
        if isinstance(action_space, spaces.Discrete):
            action_size, action_type = int(action_space.n), "discrete"
        elif isinstance(action_space, spaces.Box):
            action_size, action_type = int(np.prod(action_space.shape)), "continuous"
        else:
            raise ValueError(f"action_space must be a Box or Discrete space for {cls.__name__}; got {action_space}.")
        kwargs = dict(
            obs_size=int(get_flattened_obs_dim(observation_space)), action_size=action_size, action_type=action_type,
            value_head=value_head, **cls.core_defaults, **core_kwargs,
        )
        if plastic:
            return cls.core_class(**kwargs, plastic=True)
        if not match_parameters:
            return cls.core_class(**kwargs, plastic=False)
        # The static twin: same architecture without plasticity, widened to the plastic one's parameter count.
        return cls.core_class.matching(cls.core_class(**kwargs, plastic=True), plastic=False)

    @classmethod
    def _build_critic(cls, observation_space, action_space, core_kwargs: Dict[str, Any]) -> nn.Module:
        # The critic learns values only: a plain network, even for the rules-only actor.
        critic_kwargs = {k: v for k, v in core_kwargs.items() if k != "random_weights"}
        reference = cls._build_core(observation_space, action_space, False, False, critic_kwargs)
        if isinstance(reference, RecurrentActorCritic):
            config = reference.config
            return RecurrentCritic(config["obs_size"], config["hidden_size"], config["cell"])
        return FeedForwardCritic(reference)

    def _action_layer(self) -> nn.Module:
        return self.core.action_head if isinstance(self.core, RecurrentActorCritic) else self.core.layers[-1]

    def _init_heads(self) -> None:
        # SB3's PPO heads: a near-uniform initial policy and an unscaled value read-out.
        value_head = (self.critic if self.critic is not None else self.core).value_head
        with torch.no_grad():
            for layer, gain in ((self._action_layer(), 0.01), (value_head, 1.0)):
                if not hasattr(layer, "weight"):  # a rules-only action layer: its weights are drawn every episode
                    continue
                nn.init.orthogonal_(layer.weight, gain=gain)
                if layer.bias is not None:
                    layer.bias.zero_()

    def _get_constructor_parameters(self) -> Dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            lr_schedule=self._dummy_schedule, plastic=self.plastic, critic=self.critic_kind, match_parameters=self.match_parameters,
            ortho_init=self.ortho_init, optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs,
            **self.core_kwargs,
        )
        return data

    # --- state
    @property
    def is_stateless(self) -> bool:
        """True when the policy keeps nothing between steps (the static MLP): no sequences are needed."""
        return self.state_size == 0

    @property
    def log_std(self) -> Tensor:
        """Log std of Gaussian actions (SB3's PPO logs ``train/std`` from it); AttributeError for discrete actions."""
        if self.core.action_type != "continuous":
            raise AttributeError("log_std exists only for Box action spaces")
        return self.core.log_std

    def initial_state(self, batch_size: int):
        """The state entering ``batch_size`` new episodes: the actor's, or ``(actor's, critic's)`` with a separate
        critic; for a rules-only actor, ``(that, seeds)`` with the ``(batch,)`` episode seeds its weights come from."""
        actor = self.core.initial_state(batch_size)
        inner = actor if self.critic is None else (actor, self.critic.initial_state(batch_size))
        if not self.rules_only:
            return inner
        device = next(self.core.parameters()).device
        seeds = torch.randint(0, _SEED_MODULUS, (batch_size,), device=device).to(torch.float32)  # global RNG (seeded by SB3)
        return self._start_episodes((inner, seeds), torch.ones(batch_size, device=device), advance=False)

    def actor_state(self, state):
        """The actor's part of ``state`` (what the exported core policy would carry)."""
        if self.rules_only:
            state = state[0]
        return state if self.critic is None else state[0]

    def _start_episodes(self, state, starts: Tensor, advance: bool = True):
        """``state`` with new episodes started in the rows where ``starts`` is 1: zeroed, and for a rules-only
        actor its weights drawn from the next seed of each row's chain (so a re-run draws the same weights).

        :param state: the training state (see :meth:`initial_state`).
        :param starts: ``(batch,)`` 0/1.
        :param advance: move each starting row to the next seed first (False: draw from the current seeds).
        """
        if not self.rules_only:
            return _zero_rows(state, starts)
        inner, seeds = state
        inner = _zero_rows(inner, starts)
        if self.critic is None:
            return self._draw_actor_rows(inner, seeds, starts, advance)
        actor, seeds = self._draw_actor_rows(inner[0], seeds, starts, advance)
        return (actor, inner[1]), seeds

    def _draw_actor_rows(self, actor, seeds: Tensor, starts: Tensor, advance: bool = True):
        """Rules-only: the actor state with fresh episodes (zero traces, weights drawn from each row's next seed)
        in the rows where ``starts`` is 1; returns ``(actor, seeds)``."""
        if advance:
            seeds = torch.where(starts.bool(), _next_episode_seeds(seeds), seeds)
        flat = state_ops.flatten_state(actor)
        fresh = torch.zeros_like(flat)
        for row in starts.nonzero().flatten().tolist():
            generator = torch.Generator(device=seeds.device).manual_seed(int(seeds[row]))
            fresh[row] = state_ops.flatten_state(self.core.initial_state(1, generator))[0]
        return state_ops.unflatten_state(torch.where(starts.bool().view(-1, 1), fresh, flat), actor), seeds

    def flatten_state(self, state) -> Tensor:
        """``state`` as one ``(batch, state_size)`` tensor."""
        return state_ops.flatten_state(state)

    def unflatten_state(self, flat: Tensor):
        """Inverse of :meth:`flatten_state`."""
        return state_ops.unflatten_state(flat, self._state_template)

    # --- forward passes
    def _features(self, obs: Tensor) -> Tensor:
        x = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        return x.reshape(x.shape[0], -1).float()

    def _networks(self, x: Tensor, state) -> Tuple[PolicyOutput, Any]:
        """One step of the actor (and the separate critic) on features ``x``."""
        if self.rules_only:
            output, inner = self._networks_without_seeds(x, state[0])
            return output, (inner, state[1])
        return self._networks_without_seeds(x, state)

    def _networks_without_seeds(self, x: Tensor, state) -> Tuple[PolicyOutput, Any]:
        if self.critic is None:
            return self.core(x, state)
        output, actor_state = self.core(x, state[0])
        value, critic_state = self.critic(x, state[1])
        return PolicyOutput(output.action_params, value), (actor_state, critic_state)

    def _step(self, obs: Tensor, state, episode_starts: Optional[Tensor]):
        if episode_starts is not None and bool(episode_starts.any()):
            state = self._start_episodes(state, episode_starts)
        return self._networks(self._features(obs), state)

    def forward(self, obs: Tensor, state, episode_starts: Optional[Tensor] = None, deterministic: bool = False):
        """One rollout step for a batch of envs.

        :param obs: ``(n_envs, *obs_shape)``.
        :param state: the core state entering this step (zeroed here where ``episode_starts``).
        :param episode_starts: ``(n_envs,)``, 1 where ``obs`` is the first of an episode.
        :param deterministic: take the distribution's mode.
        :return: ``(actions, values, log_probs, new_state)``.
        """
        output, state = self._step(obs, state, episode_starts)
        params = output.action_params
        actions = self._mode(output) if deterministic else self._sample(params)
        return actions, output.value, self._log_prob(params, actions), state

    # The core's action distribution (``core.distribution``: Categorical over logits, or a diagonal Normal
    # with the state-independent ``log_std``), computed here without torch.distributions objects: building
    # and validating them cost about three times the arithmetic at every rollout step (measured: 0.65-0.9 ms
    # against 0.22 ms per step for Ant's 8-d Gaussian). A test checks equality with ``core.distribution``.
    def _mode(self, output: PolicyOutput) -> Tensor:
        if self.core.action_type == "discrete":
            return output.action_params.argmax(dim=-1)
        return output.action_params

    def _sample(self, params: Tensor) -> Tensor:
        if self.core.action_type == "discrete":
            return torch.multinomial(torch.softmax(params, dim=-1), 1).squeeze(-1)
        return params + self.core.log_std.exp() * torch.randn_like(params)

    def _log_prob(self, params: Tensor, actions: Tensor) -> Tensor:
        if self.core.action_type == "discrete":
            return torch.log_softmax(params, dim=-1).gather(-1, actions.long().reshape(-1, 1)).squeeze(-1)
        log_std = self.core.log_std
        z = (actions - params) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)

    def _entropy(self, params: Tensor) -> Tensor:
        if self.core.action_type == "discrete":
            log_p = torch.log_softmax(params, dim=-1)
            return -(log_p.exp() * log_p).sum(-1)
        return (0.5 + _LOG_SQRT_2PI + self.core.log_std).sum().expand(params.shape[0])

    def predict_values(self, obs: Tensor, state=None, episode_starts: Optional[Tensor] = None) -> Tensor:
        """``V(obs)`` given the state entering this step, shape ``(n, 1)`` as SB3 expects."""
        if state is None:
            state = self.initial_state(obs.shape[0])
        output, _ = self._step(obs, state, episode_starts)
        return output.value.unsqueeze(-1)

    def evaluate_actions(self, obs: SequenceBatch | Tensor, actions: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Values, log-probabilities and entropies of ``actions``, recomputed with the current weights.

        :param obs: a :class:`SequenceBatch` (time-first whole sequences; ``actions`` then lists
            their steps in the same time-major order, ``t * B + b``), or a plain ``(n, *obs_shape)``
            batch of independent first steps (what a stateless policy needs).
        :param actions: the actions taken, ``(L * B,)`` (discrete) or ``(L * B, action_dim)``.
        """
        if isinstance(obs, SequenceBatch):
            params, values = self._run_sequences(obs)
        else:
            output, _ = self._networks(self._features(obs), self.initial_state(obs.shape[0]))
            params, values = output.action_params, output.value
        return values, self._log_prob(params, actions), self._entropy(params)

    def _run_sequences(self, batch: SequenceBatch) -> Tuple[Tensor, Tensor]:
        length, n = batch.episode_starts.shape
        x = self._features(batch.observations.reshape(length * n, *batch.observations.shape[2:])).view(length, n, -1)
        state, seeds = self.unflatten_state(batch.states), None
        if self.rules_only:
            state, seeds = state
        starts = batch.episode_starts
        any_start = starts.any(dim=1).tolist()  # one host sync instead of one per step
        if self.critic is not None:  # the critic takes the whole sequence in one call
            values = self.critic.run(x, starts, any_start, state[1]).reshape(-1)
            state = state[0]
        if isinstance(self.core, RecurrentActorCritic) and seeds is None:  # input projection and heads batched
            output, _ = self.core.run_sequence(x, state, starts)
            return output.action_params, values if self.critic is not None else output.value
        params, value_steps = [], []
        for t in range(length):
            if any_start[t]:
                if seeds is None:
                    state = _zero_rows(state, starts[t])
                else:  # the very weights the rollout drew for the episode starting here
                    state, seeds = self._draw_actor_rows(state, seeds, starts[t])
            output, state = self.core(x[t], state)
            params.append(output.action_params)
            value_steps.append(output.value)
        if self.critic is None:  # the shared value head, read at every step
            values = torch.cat(value_steps)
        return torch.cat(params), values

    def _predict(self, observation: Tensor, deterministic: bool = False) -> Tensor:
        # SB3's stateless entry point: a first step from the zero state.
        output, _ = self.core(self._features(observation), self.core.initial_state(observation.shape[0]))
        return self._mode(output) if deterministic else self._sample(output.action_params)

    def predict(
        self,
        observation: np.ndarray,
        state: Optional[np.ndarray] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = False,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Actions for ``observation`` and the state to pass with the next call (SB3's recurrent convention).

        Only the actor runs (no critic): the returned state is the actor's, flattened.

        :param observation: one observation or a batch ``(n_envs, *obs_shape)``.
        :param state: the ``(n_envs, actor_state_size)`` array returned by the previous call; None starts fresh.
        :param episode_start: ``(n_envs,)``, true where an episode starts (its state is zeroed).
        :param deterministic: the distribution's mode instead of a sample.
        """
        self.set_training_mode(False)
        obs_tensor, vectorized = self.obs_to_tensor(observation)
        n = obs_tensor.shape[0]
        with torch.no_grad():
            if state is None:
                core_state = self.core.initial_state(n)
            else:
                flat = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=self.device)
                if flat.shape != (n, self.actor_state_size):
                    raise ValueError(f"state must have shape ({n}, {self.actor_state_size}) (n_envs, actor_state_size); got {tuple(flat.shape)}.")
                core_state = state_ops.unflatten_state(flat, self._actor_template)
            if episode_start is not None:
                starts = torch.as_tensor(np.asarray(episode_start, dtype=np.float32).reshape(n), device=self.device)
                if bool(starts.any()):
                    core_state = _zero_rows(core_state, starts)
            output, core_state = self.core(self._features(obs_tensor), core_state)
            actions = self._mode(output) if deterministic else self._sample(output.action_params)
        actions = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if isinstance(self.action_space, spaces.Box):
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, self.flatten_state(core_state).cpu().numpy()


class PlasticLstmPolicy(PlasticActorCriticPolicy):
    """A plastic LSTM (the core's :class:`~plastic_rl.cells.PlasticLSTMCell`) with linear policy and value heads."""

    core_class = RecurrentActorCritic
    core_defaults = {"cell": "lstm"}


class PlasticRnnPolicy(PlasticActorCriticPolicy):
    """Backpropamine's plastic RNN cell with linear policy and value heads."""

    core_class = RecurrentActorCritic
    core_defaults = {"cell": "rnn"}


class PlasticSpikingPolicy(PlasticActorCriticPolicy):
    """Plastic LIF neurons (the core's :class:`~plastic_rl.spiking.LeakyReadoutSpikingCell`, SpikePropamine):
    binary spikes forward, surrogate gradient backward; the heads read a non-spiking leaky readout.
    The separate critic (the default) is a tanh ``nn.RNN``."""

    core_class = RecurrentActorCritic
    core_defaults = {"cell": "spiking"}


class PlasticMlpPolicy(PlasticActorCriticPolicy):
    """A stack of plastic linear layers (the quadruped network); with ``plastic=False`` a plain, stateless MLP."""

    core_class = MLPActorCritic
    core_defaults = {}


# ------------------------------------------------------------------------------------------ 2. the buffer
class SequenceRolloutSamples(NamedTuple):
    """A minibatch in the field names SB3's ``PPO.train`` reads; flat fields are time-major (``t * B + b``)."""

    observations: SequenceBatch | Tensor
    actions: Tensor
    old_values: Tensor
    old_log_prob: Tensor
    advantages: Tensor
    returns: Tensor


class SequenceRolloutBuffer(RolloutBuffer):
    """SB3's rollout buffer plus the policy state at the start of each sequence; yields whole sequences.

    The rollout of ``buffer_size`` steps of each env is cut into
    ``buffer_size / sequence_length`` sequences per env. Only the (flattened) state
    entering each sequence is stored: ``(buffer_size / sequence_length, n_envs,
    state_size)`` floats, never a state per step.

    :param buffer_size: steps per env per rollout (PPO's ``n_steps``).
    :param observation_space: observation space.
    :param action_space: action space.
    :param device: torch device of the samples.
    :param gae_lambda: GAE λ.
    :param gamma: discount.
    :param n_envs: number of envs.
    :param sequence_length: steps per sequence (must divide ``buffer_size``); 1 for a stateless policy.
    :param state_size: size of the flattened policy state.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        sequence_length: int = 1,
        state_size: int = 0,
    ) -> None:
        if buffer_size % sequence_length:
            raise ValueError(f"n_steps ({buffer_size}) must be a multiple of sequence_length ({sequence_length}).")
        self.sequence_length, self.state_size = int(sequence_length), int(state_size)
        self.sequences_per_env = buffer_size // sequence_length
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda=gae_lambda, gamma=gamma, n_envs=n_envs)

    def reset(self) -> None:
        super().reset()
        self.sequence_states = torch.zeros(self.sequences_per_env, self.n_envs, self.state_size, device=self.device)

    def add_sequence_state(self, flat_state: Tensor) -> None:
        """Store the ``(n_envs, state_size)`` state entering step ``self.pos`` (a sequence start)."""
        if self.pos % self.sequence_length:
            raise RuntimeError(f"step {self.pos} does not start a sequence of length {self.sequence_length}.")
        self.sequence_states[self.pos // self.sequence_length] = flat_state.detach().to(self.device)

    @property
    def state_storage_bytes(self) -> int:
        """Bytes held for recurrent state (the sequence-start states only)."""
        return self.sequence_states.numel() * self.sequence_states.element_size()

    def _time_major(self, array: np.ndarray) -> Tensor:
        """``(buffer_size, n_envs, ...)`` -> ``(L, n_sequences, ...)`` with sequence index ``chunk * n_envs + env``."""
        length, chunks = self.sequence_length, self.sequences_per_env
        tensor = self.to_torch(array)
        tensor = tensor.reshape(chunks, length, self.n_envs, *array.shape[2:]).transpose(0, 1)
        return tensor.reshape(length, chunks * self.n_envs, *array.shape[2:])

    def get(self, batch_size: Optional[int] = None) -> Generator[SequenceRolloutSamples, None, None]:
        """Shuffled minibatches of ``batch_size / sequence_length`` whole sequences (all of them if None)."""
        assert self.full, "the rollout is not complete"
        length = self.sequence_length
        n_sequences = self.sequences_per_env * self.n_envs
        per_batch = n_sequences if batch_size is None else max(1, batch_size // length)
        obs = self._time_major(self.observations)
        actions = self._time_major(self.actions.astype(np.float32, copy=False))
        flat = {name: self._time_major(getattr(self, name)) for name in ("values", "log_probs", "advantages", "returns", "episode_starts")}
        states = self.sequence_states.reshape(n_sequences, self.state_size)
        order = torch.randperm(n_sequences, device=states.device)
        for start in range(0, n_sequences, per_batch):
            idx = order[start:start + per_batch]
            seq_obs = obs[:, idx]
            if self.state_size == 0:  # a stateless policy: independent steps, a plain batch as in SB3's PPO
                observations: SequenceBatch | Tensor = seq_obs[0]
            else:
                observations = SequenceBatch(seq_obs, flat["episode_starts"][:, idx], states[idx])
            yield SequenceRolloutSamples(
                observations,
                actions[:, idx].reshape(-1, *actions.shape[2:]),
                flat["values"][:, idx].reshape(-1),
                flat["log_probs"][:, idx].reshape(-1),
                flat["advantages"][:, idx].reshape(-1),
                flat["returns"][:, idx].reshape(-1),
            )


# ------------------------------------------------------------------------------------------- 3. the algorithm
class PlasticPPO(PPO):
    """PPO (stable-baselines3) for plastic-core policies; arguments as SB3's ``PPO`` plus ``sequence_length``.

    :param policy: ``"PlasticLstmPolicy"``, ``"PlasticRnnPolicy"``, ``"PlasticMlpPolicy"`` or a subclass of
        :class:`PlasticActorCriticPolicy`.
    :param env: the env (or its id).
    :param sequence_length: steps per sequence re-run in the update (must divide ``n_steps`` and
        ``batch_size``); ignored by stateless policies, whose steps are shuffled one by one.
    :param kwargs: every other argument of ``stable_baselines3.PPO`` (``n_steps``, ``batch_size``,
        ``n_epochs``, ``learning_rate``, ``gamma``, ``gae_lambda``, ``clip_range``, ``ent_coef``,
        ``max_grad_norm``, ``policy_kwargs``, ``tensorboard_log``, ``seed``, ``device``, ...).
    """

    policy_aliases: ClassVar[Dict[str, Type[BasePolicy]]] = {
        "PlasticLstmPolicy": PlasticLstmPolicy,
        "PlasticRnnPolicy": PlasticRnnPolicy,
        "PlasticSpikingPolicy": PlasticSpikingPolicy,
        "PlasticMlpPolicy": PlasticMlpPolicy,
    }
    policy: PlasticActorCriticPolicy
    rollout_buffer: SequenceRolloutBuffer

    def __init__(self, policy: str | Type[PlasticActorCriticPolicy], env, sequence_length: int = 16, **kwargs: Any) -> None:
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
            raise ValueError(f"sequence_length must be a positive integer; got {sequence_length!r}.")
        if isinstance(policy, str) and policy not in self.policy_aliases:
            raise ValueError(f"policy must be one of {', '.join(self.policy_aliases)}; got {policy!r}.")
        self.sequence_length = sequence_length
        self._last_state = None
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, PlasticActorCriticPolicy):
            raise ValueError(f"policy must be a PlasticActorCriticPolicy; got {type(self.policy).__name__}.")
        length = 1 if self.policy.is_stateless else self.sequence_length
        if self.n_steps % length:
            raise ValueError(f"n_steps ({self.n_steps}) must be a multiple of sequence_length ({length}).")
        if self.batch_size % length:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of sequence_length ({length}): a minibatch holds whole sequences.")
        self.rollout_buffer = SequenceRolloutBuffer(
            self.n_steps, self.observation_space, self.action_space, device=self.device, gamma=self.gamma,
            gae_lambda=self.gae_lambda, n_envs=self.n_envs, sequence_length=length, state_size=self.policy.state_size,
        )
        self._last_state = None

    def _excluded_save_params(self) -> list:
        # The running state belongs to the envs of this process; a loaded model starts from zero state.
        return super()._excluded_save_params() + ["_last_state"]

    def _running_state(self, n_envs: int):
        if self._last_state is None or state_ops.batch_size_of(self._last_state) != n_envs:
            self._last_state = self.policy.initial_state(n_envs)
        return self._last_state

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int) -> bool:
        """SB3's rollout loop, carrying each env's policy state and storing it at every sequence start."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        callback.on_rollout_start()
        state = self._running_state(env.num_envs)
        stateless = self.policy.is_stateless
        while n_steps < n_rollout_steps:
            with torch.no_grad():
                if not stateless and n_steps % rollout_buffer.sequence_length == 0:
                    rollout_buffer.add_sequence_state(self.policy.flatten_state(state))
                obs_tensor = obs_as_tensor(self._last_obs, self.device)
                starts = torch.as_tensor(self._last_episode_starts, dtype=torch.float32, device=self.device)
                actions, values, log_probs, state = self.policy(obs_tensor, state, starts)
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)
            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                self._last_state = state
                return False
            self._update_info_buffer(infos, dones)
            n_steps += 1
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            # Bootstrap truncated episodes (SB3 issue #633) with the value of the terminal
            # observation, seen through the state that episode had reached.
            for idx, done in enumerate(dones):
                if done and infos[idx].get("terminal_observation") is not None and infos[idx].get("TimeLimit.truncated", False):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with torch.no_grad():
                        row_state = state_ops.index_state(state, slice(idx, idx + 1))
                        terminal_value = self.policy.predict_values(terminal_obs, row_state)[0]
                    rewards[idx] += self.gamma * terminal_value
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones
        self._last_state = state
        with torch.no_grad():
            starts = torch.as_tensor(dones, dtype=torch.float32, device=self.device)
            values = self.policy.predict_values(obs_as_tensor(new_obs, self.device), state, starts)
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def learn(self, total_timesteps: int, callback=None, log_interval: int = 1, tb_log_name: str = "PlasticPPO",
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> "PlasticPPO":
        """SB3's ``learn``; a fresh start (``reset_num_timesteps``) also zeroes the running policy state.

        :param total_timesteps: env steps to train for (counted over all envs).
        :param callback: SB3 callback(s).
        :param log_interval: rollouts between log dumps.
        :param tb_log_name: TensorBoard run name.
        :param reset_num_timesteps: start counting from zero (and reset the envs).
        :param progress_bar: show SB3's progress bar.
        """
        if reset_num_timesteps:
            self._last_state = None
        return super().learn(total_timesteps, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
                             reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)
