"""The policies ES searches, and how EvoTorch runs them.

- :class:`EvoTorchPolicy` — a plastic-core policy in EvoTorch's stateful protocol
  ``forward(x, h=None) -> (action, h)``: the traces travel in ``h``.
- :func:`build_policy` — the searched network for a :class:`~plastic_rl.agents.es.Config`.
- :class:`PopulationPolicy` — EvoTorch's ``Policy`` for the whole population in one
  batched forward (one weight set per batch row), without ``vmap``.
- :func:`make_problem` — EvoTorch's ``VecGymNE`` over the flat parameters of a policy.
- :func:`policy_with` — a copy of a policy holding a flat parameter vector.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import numpy as np
import torch
from evotorch.neuroevolution.net.vecrl import Policy
from torch import Tensor, nn

from plastic_rl import state as state_ops
from plastic_rl.config import ConfigError
from plastic_rl.policies import MLPActorCritic, RecurrentActorCritic

from plastic_rl.agents.evotorch_internals import PopulationVecGymNE

if TYPE_CHECKING:
    from plastic_rl.agents.es import Config


class EvoTorchPolicy(nn.Module):
    """A plastic-core policy in EvoTorch's stateful protocol: ``forward(x, h=None) -> (action, h)``.

    EvoTorch recognises a recurrent policy by this signature, keeps ``h`` itself,
    passes ``h=None`` at the first step after new parameters, and zeroes the rows
    of ``h`` whose episode ended (``Policy.reset(done)``); for the plastic-core
    policies a zero state *is* the initial state (zero traces, zero hidden). So
    the traces live only in ``h`` — this module stores nothing between calls.

    Under :class:`PopulationPolicy` (what :func:`make_problem` uses) ``x`` is the
    population's batch ``(popsize, obs)`` and every parameter has a leading
    ``popsize`` dimension; under EvoTorch's own ``vmap``-ed ``Policy`` ``x`` is a
    single observation ``(obs,)``. Both work.

    :param policy: a plastic-core policy built with ``value_head=False``; its
        deterministic action (``action_params``) is the action.
    """

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, x: Tensor, h: Any = None) -> Tuple[Tensor, Any]:
        """One step; ``h=None`` starts an episode. Returns ``(action, new_h)``."""
        single = x.dim() == 1  # under vmap each population member sees one unbatched observation
        out, h = self.policy(x.unsqueeze(0) if single else x, h)
        action = out.action_params
        return (action.squeeze(0) if single else action), h


def build_policy(config: "Config", obs_size: int, action_size: int) -> nn.Module:
    """The searched policy: a plastic (or static) MLP or recurrent policy without a value head.

    Actions must lie in Ant's [-1, 1] box: the MLP ends in tanh; the recurrent
    policy's linear head is clipped by EvoTorch (and by the evaluator) to the action space.

    :param config: the run's config.
    :param obs_size: observation size.
    :param action_size: action dimension.
    """
    # No value head and no log std: ES uses the deterministic action, so searching either would be wasted.
    common = dict(modulation=config.modulation, rule=config.rule, alpha_scale=config.alpha_scale, plastic=config.plastic, value_head=False,
                  log_std_init=None, random_weights=config.random_weights, binary=config.binary,
                  binary_plasticity=config.binary_plasticity)
    if config.policy == "mlp":
        return MLPActorCritic(
            obs_size, action_size, "continuous", hidden_sizes=tuple(config.hidden_sizes), width=config.width,
            output_activation="tanh", **common,
        )
    return RecurrentActorCritic(obs_size, action_size, "continuous", hidden_size=config.hidden_size, cell=config.cell, **common)


def env_spaces(env_id: str, env_kwargs: Dict[str, Any]) -> Tuple[int, int]:
    """(observation size, action size) of ``env_id`` built with ``env_kwargs``; one sentence if ES cannot use it.

    :param env_id: a registered gymnasium env id.
    :param env_kwargs: keyword arguments of ``gym.make``.
    """
    import gymnasium as gym

    import plastic_rl.envs  # noqa: F401  (registers plastic_rl/*)

    if "max_episode_steps" in env_kwargs:
        raise ConfigError("config field 'env_kwargs' must not set max_episode_steps; set the config field 'episode_length' instead.")
    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"config field 'env_id' must name a registered gymnasium env; {env_id!r} failed ({err}).") from None
    except (OSError, TypeError, ValueError) as err:
        raise ConfigError(f"config field 'env_kwargs' is not accepted by {env_id!r}: {err}") from None
    try:
        if not isinstance(env.observation_space, gym.spaces.Box):
            raise ConfigError(f"ES needs a Box observation space; {env_id!r} has {env.observation_space}.")
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ConfigError(
                f"ES searches continuous-action policies; {env_id!r} has a {type(env.action_space).__name__} action space "
                "(use a Box-action env, or the a2c/ppo trainers for discrete actions)."
            )
        return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    finally:
        env.close()


def _env_spec(env_id: str) -> str:
    # "module:env_id" makes gym.make import the module first, so that Ray actors
    # (fresh processes) register plastic_rl/* before building their envs.
    return f"plastic_rl.envs:{env_id}" if env_id.startswith("plastic_rl/") else env_id


class PopulationPolicy(Policy):
    """EvoTorch's ``Policy`` for the whole population in one batched forward, without ``vmap``.

    EvoTorch ``vmap``s the policy over the population's parameter vectors; for a
    plastic policy (a dozen small ops per layer) that costs more than the
    arithmetic. The plastic core accepts one set of weights per batch row
    (:func:`plastic_rl.plasticity.linear`, :func:`~plastic_rl.plasticity.per_sample`),
    so here the ``(popsize, n)`` parameter matrix is cut into ``(popsize, *shape)``
    tensors and the policy runs once per step: row ``b`` of the batch is population
    member ``b``'s episode. The tensors are set, once per population, as the
    parameters of a private copy of the module (``torch.func.functional_call`` would
    swap them in and out at every step, a third of the forward's time at popsize 10). Resetting a finished
    episode zeroes its rows of ``h`` out of place (no deep copy of ``h``).
    Outputs equal ``Policy``'s (a test checks it). A 1-D parameter vector (one
    solution) goes through ``Policy`` unchanged.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__(net)
        named = list(self.wrapped_module.named_parameters())
        self._names = [name for name, _ in named]
        self._shapes = [tuple(p.shape) for _, p in named]
        self._numels = [p.numel() for _, p in named]
        self._per_member: Optional[Dict[str, Tensor]] = None
        # The module the population runs through: a copy whose parameters are replaced by the
        # (popsize, *shape) tensors of each new population.
        self._population_module = copy.deepcopy(self.wrapped_module)
        self._owners = []
        for name in self._names:
            *path, leaf = name.split(".")
            owner = self._population_module
            for part in path:
                owner = getattr(owner, part)
            self._owners.append((owner, leaf))
        self._h: Any = None

    def _batched(self) -> bool:
        return self.parameters is not None and self.parameters.ndim == 2

    def set_parameters(self, parameters: Tensor, indices=None, *, reset: bool = True):
        super().set_parameters(parameters, indices, reset=reset)
        self._per_member = None  # rebuilt from the (possibly partly overwritten) matrix at the next call

    def __call__(self, x: Tensor) -> Tensor:
        if not self._batched():
            return super().__call__(x)
        if self._per_member is None:
            # EvoTorch hands the solutions over as a ReadOnlyTensor, whose Python-level
            # __torch_function__ would run on every op of the forward (half its time).
            flat = self.parameters.as_subclass(torch.Tensor)
            chunks = torch.split(flat, self._numels, dim=1)
            self._per_member = {
                name: chunk.reshape(flat.shape[0], *shape)
                for name, chunk, shape in zip(self._names, chunks, self._shapes)
            }
            for (owner, leaf), name in zip(self._owners, self._names):
                # A Parameter view of the solutions (no copy): the module sees it as its own weight.
                owner._parameters[leaf] = nn.Parameter(self._per_member[name], requires_grad=False)
        action, self._h = self._population_module(x, self._h)
        return action

    def reset(self, indices=None, *, copy: bool = True):
        if not self._batched():
            return super().reset(indices, copy=copy)
        if indices is None:
            self._h = None  # every episode starts over
            return
        if self._h is None:
            return
        mask = torch.as_tensor(indices, device=self.parameters.device)
        if mask.dtype != torch.bool:
            rows, mask = mask, torch.zeros(self.parameters.shape[0], dtype=torch.bool, device=mask.device)
            mask[rows] = True
        if bool(mask.any()):
            self._h = state_ops.reset_state(self._h, mask)

    @property
    def h(self) -> Any:
        return self._h if self._batched() else super().h


def make_problem(config: "Config", policy: nn.Module):
    """EvoTorch's ``VecGymNE`` over the flat parameters of ``policy``.

    ``VecGymNE`` (rather than ``GymNE``) steps one env per population member and
    runs *one* batched forward per step for all of them (here through
    :class:`PopulationPolicy`, which needs no ``vmap``); ``num_actors > 1``
    splits the population over Ray actors, each with its own vector env.

    :param config: the run's config.
    :param policy: the policy whose parameters are searched (wrapped in :class:`EvoTorchPolicy`).
    """
    adapter = EvoTorchPolicy(policy)
    for p in adapter.parameters():
        p.requires_grad_(False)  # ES needs no autograd: no graph is built in the forward
    return PopulationVecGymNE(
        _env_spec(config.env_id),
        adapter,
        env_config={**config.env_kwargs, "max_episode_steps": config.episode_length},
        observation_normalization=config.observation_normalization,
        num_episodes=config.num_episodes,
        decrease_rewards_by=config.decrease_rewards_by,
        device=config.device,
        num_actors=config.num_actors if config.num_actors > 1 else None,
        policy_factory=PopulationPolicy,
        shared_episodes=config.shared_episodes,
    )


def policy_with(policy: nn.Module, flat: Tensor) -> nn.Module:
    """A copy of ``policy`` whose parameters are the flat vector ``flat`` (EvoTorch's parameter order)."""
    twin = copy.deepcopy(policy)
    nn.utils.vector_to_parameters(flat.detach().to(next(twin.parameters()).device).float(), twin.parameters())
    return twin
