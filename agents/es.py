"""Evolution strategies (EvoTorch) for plastic policies on the quadruped with failing legs.

Read top to bottom, CleanRL style:

1. :class:`Config` — every knob, with its default and what it means.
2. :class:`EvoTorchPolicy` — the adapter that lets EvoTorch drive a plastic-core
   policy: ``forward(x, h=None) -> (action, h)``. The plastic traces travel in
   ``h``, which EvoTorch owns and zeroes at every episode start, so they never
   leak between episodes, solutions or Ray actors.
3. :class:`PopulationPolicy` / :func:`make_problem` / :func:`make_searcher` —
   EvoTorch's ``VecGymNE`` problem (a vector of envs, one *batched* forward per
   step for the whole population: each episode's row runs through its own
   parameter vector, without ``vmap``) and the chosen search algorithm.
4. :func:`searcher_state` / :func:`restore_searcher_state` — the searcher as plain
   tensors, so checkpoints load with ``weights_only=True``.
5. :func:`train` — the generation loop: evaluate, log, checkpoint, resume.

The search is over the flat parameter vector of the policy (the weights, and
for a plastic policy also alpha, η and the neuromodulator); the static twin is
the same network with ``plastic=False``.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from evotorch.neuroevolution import VecGymNE
from evotorch.neuroevolution.net.vecrl import Policy
from torch import Tensor, nn

from plastic_rl import state as state_ops
from plastic_rl.config import ConfigError, config_to_dict, save_config
from plastic_rl.policies import MLPActorCritic, RecurrentActorCritic, export_policy
from plastic_rl.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    SUMMARY_FILE,
    RunDirError,
    MetricsLogger,
    atomic_write_json,
    load_checkpoint,
    plot_curves,
    prepare_run_dir,
    read_metrics,
    save_checkpoint,
    start_over_without_checkpoint,
)

ALGORITHMS = ("pgpe", "cmaes", "snes", "cem", "openai-es")
POLICY_KINDS = ("mlp", "recurrent")
CELLS = ("rnn", "lstm")
MODULATIONS = ("none", "simple", "retroactive")
RULES = ("hebbian", "oja", "bcm", "abcd")
CHECKPOINT_FORMAT = "plastic-rl/es-checkpoint-v1"
CURVE_FILE = "fitness.png"
METRIC_FIELDS = (
    "generation", "env_steps", "wall_time", "mean_fitness", "best_fitness", "center_fitness",
    "best_ever_fitness", "mean_stdev", "steps_per_second",
)
# Config fields a resumed run may change; everything else must match the checkpoint.
# center_learning_rate may change too: a lower step late in a run (the README's limb-failure notes) is a
# resume with a new step; the searcher's state (center, σ, ClipUp velocity) carries over unchanged.
RESUMABLE_FIELDS = ("generations", "num_actors", "ray_address", "device", "center_learning_rate")


# --------------------------------------------------------------------------------------------------- 1. config
@dataclass
class Config:
    """Evolution strategies on the quadruped (``plastic-rl train --preset ant-es``)."""

    # --- environment
    env_id: str = "plastic_rl/AntLegFailure-v0"  # any registered gymnasium env with a Box observation
    env_kwargs: Dict[str, Any] = field(default_factory=lambda: {"failed_legs": "random"})  # passed to gym.make
    episode_length: int = 1000  # steps per episode (the env's time limit)
    num_episodes: int = 1  # episodes per fitness evaluation (fitness = their mean return)
    observation_normalization: bool = True  # EvoTorch's running obs normalization, synced across actors
    # Subtracted from every step's reward during the search (EvoTorch's VecGymNE option): set it to the
    # env's alive bonus (Ant-v5: healthy_reward = 1.0) so that standing still is worth nothing and only
    # moving forward pays. Evaluation always reports the env's own return.
    decrease_rewards_by: Optional[float] = None

    # --- policy (the searched parameter vector)
    policy: str = "mlp"  # mlp (plastic linear layers) or recurrent (a plastic RNN/LSTM cell)
    hidden_sizes: Tuple[int, ...] = (64, 64)  # mlp: hidden layer sizes
    width: Optional[int] = None  # mlp: if set, every hidden layer has this size (parameter-matched twins)
    hidden_size: int = 64  # recurrent: units of the cell
    cell: str = "rnn"  # recurrent: rnn or lstm
    modulation: str = "simple"  # none, simple or retroactive (DESIGN.md §2)
    rule: str = "hebbian"  # hebbian, oja, bcm or abcd
    plastic: bool = True  # False = the static twin (no alpha, η or modulator)

    # --- search
    algorithm: str = "pgpe"  # pgpe (with ClipUp), cmaes (separable for large nets), snes, cem, openai-es
    popsize: int = 20  # solutions per generation (pgpe/openai-es: even, sampled in ± pairs)
    generations: int = 300  # generations to run (on --resume: the new total)
    stdev_init: float = 0.02  # initial search standard deviation per parameter
    center_learning_rate: Optional[float] = None  # pgpe: ClipUp step (default 0.01); openai-es: Adam lr (default 0.01); snes: NES default
    stdev_learning_rate: Optional[float] = None  # pgpe: 0.1; snes: NES default; openai-es: fixed σ (always 0)
    center_eval_episodes: int = 1  # episodes run each generation to report the center's fitness (0 = skip)

    # --- compute
    num_actors: int = 0  # Ray actors evaluating the population (0 or 1 = this process)
    ray_address: Optional[str] = None  # join this Ray cluster (e.g. "auto" or "ray://host:10001")
    device: str = "cpu"  # where the population and the policy forward run
    seed: int = 0

    def __post_init__(self) -> None:
        # One sentence per mistake, naming the field and the allowed values.
        _check_choice("algorithm", self.algorithm, ALGORITHMS)
        _check_choice("policy", self.policy, POLICY_KINDS)
        _check_choice("cell", self.cell, CELLS)
        _check_choice("modulation", self.modulation, MODULATIONS)
        _check_choice("rule", self.rule, RULES)
        for name in ("episode_length", "num_episodes", "popsize", "generations", "hidden_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"config field {name!r} must be a positive integer; got {getattr(self, name)!r}.")
        if self.algorithm in ("pgpe", "openai-es") and self.popsize % 2:
            raise ValueError(f"config field 'popsize' must be even for {self.algorithm} (samples come in ± pairs); got {self.popsize}.")
        if self.algorithm == "cem" and self.popsize < 2:
            raise ValueError(f"config field 'popsize' must be at least 2 for cem; got {self.popsize}.")
        if not self.hidden_sizes or any(int(s) < 1 for s in self.hidden_sizes):
            raise ValueError(f"config field 'hidden_sizes' must be a non-empty list of positive integers; got {self.hidden_sizes!r}.")
        if self.width is not None and self.width < 1:
            raise ValueError(f"config field 'width' must be a positive integer or null; got {self.width!r}.")
        if not (self.stdev_init > 0 and math.isfinite(self.stdev_init)):
            raise ValueError(f"config field 'stdev_init' must be a positive number; got {self.stdev_init!r}.")
        for name in ("center_learning_rate", "stdev_learning_rate"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"config field {name!r} must be a number >= 0 or null (the algorithm's default); got {value!r}.")
        if self.decrease_rewards_by is not None and not math.isfinite(self.decrease_rewards_by):
            raise ValueError(f"config field 'decrease_rewards_by' must be a finite number or null; got {self.decrease_rewards_by!r}.")
        if self.num_actors < 0:
            raise ValueError(f"config field 'num_actors' must be >= 0 (0 or 1 = this process); got {self.num_actors}.")
        if self.center_eval_episodes < 0:
            raise ValueError(f"config field 'center_eval_episodes' must be >= 0; got {self.center_eval_episodes}.")
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"config field 'env_kwargs' must be a mapping of keyword: value; got {self.env_kwargs!r}.")


def _check_choice(name: str, value: Any, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"config field {name!r} must be one of {', '.join(allowed)}; got {value!r}.")


# -------------------------------------------------------------------------------------------- 2. the adapter
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


def build_policy(config: Config, obs_size: int, action_size: int) -> nn.Module:
    """The searched policy: a plastic (or static) MLP or recurrent policy without a value head.

    Actions must lie in Ant's [-1, 1] box: the MLP ends in tanh; the recurrent
    policy's linear head is clipped by EvoTorch (and by the evaluator) to the action space.

    :param config: the run's config.
    :param obs_size: observation size.
    :param action_size: action dimension.
    """
    common = dict(modulation=config.modulation, rule=config.rule, plastic=config.plastic, value_head=False)
    if config.policy == "mlp":
        return MLPActorCritic(
            obs_size, action_size, "continuous", hidden_sizes=tuple(config.hidden_sizes), width=config.width,
            output_activation="tanh", **common,
        )
    return RecurrentActorCritic(obs_size, action_size, "continuous", hidden_size=config.hidden_size, cell=config.cell, **common)


def env_spaces(env_id: str, env_kwargs: Dict[str, Any]) -> Tuple[int, int]:
    """(observation size, action size) of ``env_id`` built with ``env_kwargs``."""
    import gymnasium as gym

    import plastic_rl.envs  # noqa: F401  (registers plastic_rl/*)

    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"config field 'env_id' must name a registered gymnasium env; {env_id!r} failed ({err}).") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config field 'env_kwargs' is not accepted by {env_id!r}: {err}") from None
    try:
        return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    finally:
        env.close()


# ------------------------------------------------------------------------------------ 3. problem and searcher
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
    tensors and the policy runs once with ``torch.func.functional_call``: row ``b``
    of the batch is population member ``b``'s episode. Resetting a finished
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
        action, self._h = torch.func.functional_call(self.wrapped_module, self._per_member, (x, self._h))
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


class PopulationVecGymNE(VecGymNE):
    """``VecGymNE`` whose policy runs the population as one batch (:class:`PopulationPolicy`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._policy = PopulationPolicy(self._policy.wrapped_module)


def make_problem(config: Config, policy: nn.Module):
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
    )


def make_searcher(config: Config, problem, center_init: Tensor):
    """The EvoTorch search algorithm named by ``config.algorithm``, centred on ``center_init``.

    - ``pgpe``: PGPE with the ClipUp optimizer (max speed = 2 × step, as in the ClipUp paper).
    - ``openai-es``: PGPE's symmetric sampling with a fixed σ and Adam on the center,
      which is Salimans et al.'s OpenAI-ES.
    - ``snes``, ``cem``: EvoTorch's SNES and CEM (parenthood ratio 0.5).
    - ``cmaes``: CMA-ES; separable (diagonal covariance) above 1000 parameters,
      because a full covariance is n² numbers (≈2 GB for a 23k-parameter policy).

    :param config: the run's config.
    :param problem: the EvoTorch problem.
    :param center_init: the initial center (the freshly initialised policy's parameters).
    """
    from evotorch.algorithms import CEM, CMAES, PGPE, SNES

    algorithm, popsize, stdev = config.algorithm, config.popsize, config.stdev_init
    if algorithm == "pgpe":
        step = 0.01 if config.center_learning_rate is None else config.center_learning_rate
        return PGPE(
            problem, popsize=popsize, stdev_init=stdev, center_init=center_init,
            center_learning_rate=step, optimizer="clipup", optimizer_config={"max_speed": 2 * step},
            stdev_learning_rate=0.1 if config.stdev_learning_rate is None else config.stdev_learning_rate,
            ranking_method="centered",
        )
    if algorithm == "openai-es":
        return PGPE(
            problem, popsize=popsize, stdev_init=stdev, center_init=center_init,
            center_learning_rate=0.01 if config.center_learning_rate is None else config.center_learning_rate,
            optimizer="adam", stdev_learning_rate=0.0, stdev_max_change=None, ranking_method="centered",
        )
    if algorithm == "snes":
        return SNES(
            problem, popsize=popsize, stdev_init=stdev, center_init=center_init,
            center_learning_rate=config.center_learning_rate, stdev_learning_rate=config.stdev_learning_rate,
        )
    if algorithm == "cem":
        return CEM(problem, popsize=popsize, parenthood_ratio=0.5, stdev_init=stdev, center_init=center_init, stdev_max_change=0.2)
    return CMAES(
        problem, popsize=popsize, stdev_init=stdev, center_init=center_init,
        separable=problem.solution_length > 1000,
    )


def searcher_center(searcher) -> Tensor:
    """The current center (mean) of the search distribution."""
    return torch.as_tensor(searcher.status["center"]).detach().clone().cpu()


def searcher_mean_stdev(searcher) -> float:
    """The mean per-parameter standard deviation of the search distribution."""
    if hasattr(searcher, "_distribution"):
        return float(searcher._distribution.sigma.mean())
    return float(torch.as_tensor(searcher.sigma).mean() * searcher.A.mean())  # CMA-ES: σ · scale of C^½


# ----------------------------------------------------------------------------------------- 4. searcher state
# CMA-ES keeps its whole state in plain attributes; these are the ones a step changes.
_CMAES_STATE = ("m", "sigma", "C", "A", "p_c", "p_sigma", "last_ex")


def searcher_state(searcher) -> Dict[str, Any]:
    """Everything a searcher needs to continue, as tensors and plain values.

    Gaussian searchers (PGPE, SNES, CEM, OpenAI-ES): the distribution's
    parameters (mu, sigma), the center optimizer's state (ClipUp velocity or
    Adam moments), and the last evaluated population — EvoTorch updates the
    distribution from it at the *start* of the next step, so without it a
    resumed run would skip one update. CMA-ES: its center, step size,
    covariance and evolution paths.
    """
    state: Dict[str, Any] = {"steps_count": int(searcher.steps_count)}
    if hasattr(searcher, "_distribution"):
        state["distribution"] = {k: v.detach().cpu().clone() for k, v in searcher._distribution.parameters.items() if isinstance(v, Tensor)}
        optimizer = searcher._optimizer
        if optimizer is not None and hasattr(optimizer, "_velocity"):  # ClipUp
            state["clipup_velocity"] = optimizer._velocity.detach().cpu().clone()
        elif optimizer is not None and hasattr(optimizer, "_optim"):  # a torch optimizer (Adam, SGD)
            state["torch_optimizer"] = optimizer._optim.state_dict()
        population = getattr(searcher, "_population", None)
        if population is not None and not getattr(searcher, "_first_iter", True):
            state["population"] = {
                "values": population.values.detach().cpu().clone(),
                "evals": population.evals.detach().cpu().clone(),
            }
    else:
        state["cmaes"] = {name: _plain(getattr(searcher, name)) for name in _CMAES_STATE}
    return state


def _plain(value: Any) -> Any:
    """A tensor as a detached CPU copy; anything else (None, numbers) as it is."""
    return value.detach().cpu().clone() if isinstance(value, Tensor) else value


def restore_searcher_state(searcher, state: Dict[str, Any]) -> None:
    """Put ``state`` (from :func:`searcher_state`) back into a freshly built searcher of the same config."""
    from evotorch import SolutionBatch

    searcher._steps_count = int(state["steps_count"])
    if hasattr(searcher, "_distribution"):
        dist = searcher._distribution
        searcher._distribution = dist.modified_copy(**{k: v.to(dist.device) for k, v in state["distribution"].items()})
        if "clipup_velocity" in state:
            searcher._optimizer._velocity = state["clipup_velocity"].to(searcher._optimizer._velocity.device)
        if "torch_optimizer" in state:
            optim = searcher._optimizer._optim
            learning_rates = [group["lr"] for group in optim.param_groups]  # the config's, which may have changed
            optim.load_state_dict(state["torch_optimizer"])
            for group, lr in zip(optim.param_groups, learning_rates):
                group["lr"] = lr
        if "population" in state:
            values, evals = state["population"]["values"], state["population"]["evals"]
            batch = SolutionBatch(searcher.problem, popsize=values.shape[0], device=dist.device, empty=True)
            batch.access_values()[:] = values.to(dist.device)
            batch.set_evals(evals[:, 0].to(dist.device) if evals.dim() == 2 else evals.to(dist.device))
            searcher._population = batch
            searcher._first_iter = False
    else:
        for name, value in state["cmaes"].items():
            current = getattr(searcher, name)
            device = current.device if isinstance(current, Tensor) else searcher.problem.device
            setattr(searcher, name, value.to(device) if isinstance(value, Tensor) else value)


def obs_norm_state(problem) -> Optional[Dict[str, Any]]:
    """The problem's observation statistics: mean/stdev (for evaluation) and the raw sums (for resuming)."""
    if not problem.observation_normalization:
        return None
    stats = problem.get_observation_stats()
    if stats is None or stats.count == 0:
        return None
    return {
        "mean": stats.mean.detach().cpu().clone().float(),
        "stdev": stats.stdev.detach().cpu().clone().float(),
        "count": int(stats.count),
        "sum": stats.sum.detach().cpu().clone(),
        "sum_of_squares": stats.sum_of_squares.detach().cpu().clone(),
    }


def restore_obs_norm(problem, state: Optional[Dict[str, Any]]) -> None:
    """Rebuild EvoTorch's ``RunningNorm`` from :func:`obs_norm_state`'s sums (it has no public setter for them)."""
    if state is None or not problem.observation_normalization:
        return
    from evotorch.neuroevolution.net.runningnorm import RunningNorm

    norm = RunningNorm(shape=tuple(state["sum"].shape), dtype=state["sum"].dtype)
    norm._sum, norm._sum_of_squares, norm._count = state["sum"].clone(), state["sum_of_squares"].clone(), int(state["count"])
    problem.set_observation_stats(norm)


def policy_with(policy: nn.Module, flat: Tensor) -> nn.Module:
    """A copy of ``policy`` whose parameters are the flat vector ``flat`` (EvoTorch's parameter order)."""
    import copy

    twin = copy.deepcopy(policy)
    nn.utils.vector_to_parameters(flat.detach().to(next(twin.parameters()).device).float(), twin.parameters())
    return twin


# --------------------------------------------------------------------------------------------------- 5. train
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def init_ray(config: Config) -> bool:
    """Start (or join) Ray when actors are wanted; returns True if this call started it."""
    if config.num_actors <= 1 and config.ray_address is None:
        return False
    import ray

    if ray.is_initialized():
        return False
    if config.ray_address is not None:
        ray.init(address=config.ray_address, log_to_driver=False)
    else:
        # A private, quiet local Ray: no dashboard, no worker logs on the terminal.
        ray.init(num_cpus=max(config.num_actors, 1), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=True)
    return True


def _check_resume(config: Config, checkpoint: Dict[str, Any], run_dir: Path) -> None:
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"cannot resume {str(run_dir)!r}: its {CHECKPOINT_FILE} is not an ES checkpoint ({CHECKPOINT_FORMAT}).")
    saved = checkpoint["config"]
    current = config_to_dict(config)
    for name, value in current.items():
        if name not in RESUMABLE_FIELDS and saved.get(name) != value:
            raise RunDirError(
                f"cannot resume {str(run_dir)!r}: config field {name!r} is {saved.get(name)!r} in the checkpoint but {value!r} now; "
                f"only {', '.join(RESUMABLE_FIELDS)} may change."
            )


def evaluate_center(config: Config, policy: nn.Module, obs_norm: Optional[Dict[str, Any]], generation: int) -> Tuple[float, int]:
    """Mean fitness of ``policy`` over ``config.center_eval_episodes`` training-distribution episodes; (fitness, env steps)."""
    from plastic_rl.agents.evaluate import run_episodes

    if config.center_eval_episodes == 0:
        return float("nan"), 0
    result = run_episodes(
        policy, obs_norm, config.env_id, [dict(config.env_kwargs)] * config.center_eval_episodes,
        episode_length=config.episode_length, seed=config.seed * 1_000_003 + generation,
    )
    # Same measure as the population's fitness: EvoTorch subtracts decrease_rewards_by at every step.
    returns = np.asarray(result["returns"], dtype=float) - (config.decrease_rewards_by or 0.0) * np.asarray(result["lengths"])
    return float(np.mean(returns)), int(result["lengths"].sum())


def train(config: Config, run_dir: str | Path, resume: bool = False) -> Dict[str, Any]:
    """Evolve ``config.policy`` with ``config.algorithm``; write the run folder; return the summary.

    :param config: the run's config.
    :param run_dir: the run folder (new, or one to resume).
    :param resume: continue ``run_dir`` from its checkpoint up to ``config.generations``.
    """
    run_dir = Path(run_dir)
    checkpoint = None
    resume = start_over_without_checkpoint(run_dir, resume)
    if resume:
        prepare_run_dir(run_dir, resume=True)
        checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
        _check_resume(config, checkpoint, run_dir)
    obs_size, action_size = env_spaces(config.env_id, {**config.env_kwargs})  # validates env_id/env_kwargs first
    if not resume:
        prepare_run_dir(run_dir, resume=False)
    # 'trainer' first, so that `plastic-rl train --resume RUN_DIR` knows which trainer reads this config.
    save_config(config, run_dir / CONFIG_FILE, trainer="es")

    torch.set_num_threads(1)  # ES parallelism is across actors; one thread each avoids oversubscription
    for name in ("evotorch", "evotorch.core"):  # EvoTorch logs every problem it builds at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    _seed_everything(config.seed)
    policy = build_policy(config, obs_size, action_size).to(config.device)
    started_ray = init_ray(config)
    problem = make_problem(config, policy)
    searcher = make_searcher(config, problem, nn.utils.parameters_to_vector(policy.parameters()).detach())

    generation, env_steps, eval_steps, wall_offset = 0, 0, 0, 0.0
    best_fitness, best_params = -math.inf, searcher_center(searcher)
    if checkpoint is not None:
        restore_searcher_state(searcher, checkpoint["searcher"])
        restore_obs_norm(problem, checkpoint.get("obs_norm"))
        generation, env_steps = int(checkpoint["generation"]), int(checkpoint["env_steps"])
        eval_steps, wall_offset = int(checkpoint["eval_env_steps"]), float(checkpoint["wall_time"])
        best_fitness = float(checkpoint["best_fitness"])
        best_params = checkpoint["best_params"]
    # The problem counts from 0 (and with Ray actors it recomputes its count from theirs), so count on top of it.
    steps_offset = env_steps

    env_record = {"id": config.env_id, "kwargs": dict(config.env_kwargs), "episode_length": config.episode_length}
    logger = MetricsLogger(run_dir, METRIC_FIELDS, resume_step=generation if resume else None)
    from tqdm import tqdm

    progress = tqdm(total=config.generations, initial=generation, desc="ES", unit="gen", disable=not sys.stderr.isatty())
    start = time.perf_counter() - wall_offset
    print(
        f"ES {config.algorithm} on {config.env_id}: {'plastic' if config.plastic else 'static'} {config.policy}, "
        f"{sum(p.numel() for p in policy.parameters())} parameters, popsize {config.popsize}, generations {generation}→{config.generations}, "
        f"actors {max(config.num_actors, 1)}",
        flush=True,
    )
    try:
        while generation < config.generations:
            # Seeding per generation makes a resumed run sample the same noise as an uninterrupted one.
            _seed_everything(config.seed * 1_000_003 + generation)
            t0, steps0 = time.perf_counter(), env_steps
            searcher.step()
            generation += 1
            env_steps = steps_offset + int(problem.interaction_count)
            gen_time = time.perf_counter() - t0
            evals = searcher.population.evals[:, 0].detach().cpu()
            best_index = int(torch.argmax(evals))
            if float(evals[best_index]) > best_fitness:
                best_fitness = float(evals[best_index])
                best_params = searcher.population.values[best_index].detach().cpu().clone()

            center = searcher_center(searcher)
            obs_norm = obs_norm_state(problem)
            center_policy = policy_with(policy, center)
            center_fitness, steps = evaluate_center(config, center_policy, obs_norm, generation)
            eval_steps += steps
            row = {
                "generation": generation,
                "env_steps": env_steps,
                "wall_time": round(time.perf_counter() - start, 3),
                "mean_fitness": float(evals.mean()),
                "best_fitness": float(evals[best_index]),
                "center_fitness": center_fitness,
                "best_ever_fitness": best_fitness,
                "mean_stdev": searcher_mean_stdev(searcher),
                "steps_per_second": round((env_steps - steps0) / max(gen_time, 1e-9), 1),
            }
            logger.log(row)
            save_checkpoint(
                {
                    "format": CHECKPOINT_FORMAT,
                    "config": config_to_dict(config),
                    "generation": generation,
                    "env_steps": env_steps,
                    "eval_env_steps": eval_steps,
                    "wall_time": row["wall_time"],
                    "best_fitness": best_fitness,
                    "best_params": best_params,
                    "searcher": searcher_state(searcher),
                    "obs_norm": obs_norm,
                    "env": env_record,
                    "policy": export_policy(policy_with(policy, best_params)),
                    "center_policy": export_policy(center_policy),
                },
                run_dir / CHECKPOINT_FILE,
            )
            progress.update(1)
            line = (
                f"gen {generation}/{config.generations}  steps {env_steps}  mean {row['mean_fitness']:.1f}  "
                f"best {row['best_fitness']:.1f}  center {center_fitness:.1f}  {row['steps_per_second']:.0f} steps/s"
            )
            if progress.disable:
                print(line, flush=True)
            else:
                progress.set_postfix_str(line.split("  ", 1)[1])
    finally:
        progress.close()
        logger.close()
        if config.num_actors > 1:
            problem.kill_actors()  # free the Ray actors even if the loop failed
        if started_ray:
            import ray

            ray.shutdown()

    return write_summary(run_dir, config)


def write_summary(run_dir: Path, config: Config) -> Dict[str, Any]:
    """``summary.json`` and the fitness curve from ``metrics.csv`` and the checkpoint."""
    rows = read_metrics(run_dir / "metrics.csv")
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    x = [int(r["generation"]) for r in rows]
    curves = {
        "population mean": [float(r["mean_fitness"]) for r in rows],
        "population best": [float(r["best_fitness"]) for r in rows],
    }
    if config.center_eval_episodes:
        curves["center"] = [float(r["center_fitness"]) for r in rows]
    plot_curves(
        run_dir / CURVE_FILE, x, curves, "generation", "fitness (episode return)",
        title=f"{config.algorithm} on {config.env_id} ({'plastic' if config.plastic else 'static'} {config.policy})",
    )
    last = rows[-1] if rows else {}
    summary = {
        "trainer": "es",
        "algorithm": config.algorithm,
        "plastic": config.plastic,
        "parameters": int(checkpoint["best_params"].numel()),
        "generations": int(checkpoint["generation"]),
        "env_steps": int(checkpoint["env_steps"]),
        "eval_env_steps": int(checkpoint["eval_env_steps"]),
        "wall_time": float(checkpoint["wall_time"]),
        "final_fitness": float(last.get("mean_fitness", "nan")),
        "final_center_fitness": float(last.get("center_fitness", "nan") or "nan"),
        "best_fitness": float(checkpoint["best_fitness"]),
        "checkpoint": str(run_dir / CHECKPOINT_FILE),
        "metrics_csv": str(run_dir / "metrics.csv"),
        "curve_png": str(run_dir / CURVE_FILE),
    }
    atomic_write_json(run_dir / SUMMARY_FILE, summary)
    return summary


__all__ = [
    "ALGORITHMS", "Config", "EvoTorchPolicy", "build_policy", "make_problem", "make_searcher", "searcher_state",
    "restore_searcher_state", "train", "write_summary",
]
