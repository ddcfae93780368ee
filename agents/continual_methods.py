"""The learners of a continual run: one policy that meets the tasks of a sequence one after another.

A learner owns everything that carries over from task to task (the policy, the
optimizer's or the search distribution's state, a regularizer's consolidations)
and offers the continual loop (:mod:`plastic_rl.agents.continual`) four things:

- ``train_iteration(task_index, task_iteration, check)``: one update on a task;
  returns the metrics row (``train_return``, ``env_steps``, ...). Its episodes and
  noise are seeded by the task and the iteration within the task, so training task
  ``j`` from scratch plays exactly the episodes stage ``j`` of the sequence played;
- ``end_task(task_index)``: called when a task's stage ends (EWC/L2 consolidate
  here; the policy itself is never told);
- ``evaluate(task_index, episodes, seed)``: the performance measure on a task;
- ``state_dict()`` / ``load_state_dict()``: plain tensors for the checkpoint.

:class:`A2CLearner` trains maze tasks with the full-episode A2C of
:mod:`plastic_rl.agents.a2c` (its loss and rollout functions, with Adam or
:class:`~plastic_rl.MetaplasticAdam`, plus an optional EWC/L2 penalty);
:class:`ESLearner` evolves continuous-action tasks with the EvoTorch searchers of
:mod:`plastic_rl.agents.es` (the search distribution, its optimizer state and
the observation statistics carry over from one task to the next);
:class:`PPOLearner` trains any gymnasium task with
:class:`~plastic_rl.agents.ppo.PlasticPPO`.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from plastic_rl.config import ConfigError, config_from_dict
from plastic_rl.metaplastic import MetaplasticAdam, meta_param_groups
from plastic_rl.policies import count_parameters, export_policy

from plastic_rl.agents.regularizers import (Consolidation, consolidation_penalty, fisher_diagonal, l2_consolidation,
                                            regularized_names, restrict_consolidation)
from plastic_rl.envs.sequences import Task, TaskSequence

__all__ = ["A2CLearner", "ESLearner", "LEARNERS", "make_optimizer", "policy_tensors"]

MAZE_ID = "plastic_rl/Maze-v0"
_MAZE_KWARGS = ("size", "episode_length", "reward_value", "wall_penalty", "layout", "action_map")


def policy_tensors(learner_state: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The policy's named tensors inside a learner's :meth:`state_dict` (as checkpoints and stage snapshots keep it).

    A2C and ES learners keep an exported policy (:func:`~plastic_rl.policies.export_policy`: kind, config,
    state_dict), PPO the policy's state dict itself. Returns that dict, not a copy, so a caller may change
    the learner state through it.

    :param learner_state: a learner's ``state_dict()``.
    """
    policy = learner_state["policy"]
    return policy["state_dict"] if "state_dict" in policy else policy


def make_optimizer(module: nn.Module, optimizer: str, learning_rate: float, meta: float, eps: float = 1e-8,
                   meta_groups: Optional[Dict[str, float]] = None) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` or :class:`~plastic_rl.MetaplasticAdam` (``meta`` on every tensor of dimension > 1).

    :param module: the network whose parameters are optimized.
    :param optimizer: ``"adam"`` or ``"metaplastic"``.
    :param learning_rate: step size.
    :param meta: the metaplasticity strength (metaplastic only).
    :param eps: Adam's epsilon.
    :param meta_groups: metaplastic only: name patterns to another m (:func:`~plastic_rl.meta_param_groups`).
    """
    if optimizer == "metaplastic":
        return MetaplasticAdam(_meta_groups(module, meta, meta_groups), lr=learning_rate, eps=eps, meta=meta)
    return torch.optim.Adam(module.parameters(), lr=learning_rate, eps=eps)


def _meta_groups(module: nn.Module, meta: float, meta_groups: Optional[Dict[str, float]]) -> List[Dict[str, Any]]:
    try:
        return meta_param_groups(module.named_parameters(), meta, meta_groups)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _regularized(module: nn.Module, config) -> List[str]:
    """The parameter names the EWC/L2 penalty covers (``config.regularizer_params``), checked now."""
    try:
        return regularized_names((n for n, _ in module.named_parameters()), config.regularizer_params)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _task_config(module, base: Dict[str, Any], source: str):
    """The method's own trainer config for one task, with one-sentence errors naming the field."""
    try:
        return config_from_dict(module.Config, base, source=source)
    except (ConfigError, ValueError) as err:
        raise ConfigError(str(err)) from None


class A2CLearner:
    """A maze policy trained by full-episode A2C (Backpropamine's trainer) on each task in turn.

    :param config: the continual run's config (:class:`plastic_rl.agents.continual.Config`).
    :param sequence: the tasks; every one must be ``plastic_rl/Maze-v0``.
    :param regularizer: ``"none"``, ``"ewc"`` or ``"l2"`` (the reference runs use ``"none"``).
    """

    unit = "iteration"

    def __init__(self, config, sequence: TaskSequence, regularizer: str) -> None:
        from plastic_rl.agents import a2c
        from plastic_rl.envs.maze import MazeVectorEnv

        self._a2c, self._maze = a2c, MazeVectorEnv
        self.config, self.sequence, self.regularizer = config, sequence, regularizer
        self.task_configs = []
        self.maze_kwargs = []
        for k, task in enumerate(sequence.tasks):
            if task.env_id != MAZE_ID:
                raise ConfigError(f"method 'a2c' trains maze tasks ({MAZE_ID}); task {task.name!r} of sequence "
                                  f"{sequence.name!r} is {task.env_id!r}: use method es (or ppo) for it.")
            kwargs = {**config.env_kwargs, **task.kwargs}
            unknown = sorted(set(kwargs) - set(_MAZE_KWARGS))
            if unknown:
                raise ConfigError(f"task {task.name!r} has maze argument {unknown[0]!r} the a2c method does not know; "
                                  f"allowed: {', '.join(_MAZE_KWARGS)}.")
            fields = {"maze_size": kwargs.get("size", 11), "episode_length": kwargs.get("episode_length", 200),
                      "reward_value": kwargs.get("reward_value", 10.0), "wall_penalty": kwargs.get("wall_penalty", 0.0)}
            base = {**config.method_config, **fields, "plastic": config.plastic, "binary": config.binary,
                    "seed": config.seed, "device": config.device}
            if config.learning_rate is not None:
                base["learning_rate"] = config.learning_rate
            self.task_configs.append(_task_config(a2c, base, f"method_config (task {task.name!r})"))
            self.maze_kwargs.append({"layout": kwargs.get("layout"), "action_map": kwargs.get("action_map")})
            self._maze(1, **self.maze_kwargs[-1], **self.task_configs[-1].env_kwargs)  # checks the maze arguments now
        first = self.task_configs[0]
        self.policy = a2c.build_policy_for(first)
        self.optimizer = make_optimizer(self.policy, config.optimizer, first.learning_rate, config.meta, first.adam_eps,
                                        config.meta_groups)
        self.consolidations: List[Consolidation] = []
        self._regularized = _regularized(self.policy, config)
        self._envs: Dict[int, Any] = {}

    # ------------------------------------------------------------------ helpers
    def iterations_per_task(self, task_index: int) -> int:
        """Iterations that spend ``steps_per_task`` env steps on a task (batch × episode length per iteration)."""
        c = self.task_configs[task_index]
        return max(1, math.ceil(self.config.steps_per_task / (c.batch_size * c.episode_length)))

    def _env(self, task_index: int, num_envs: Optional[int] = None):
        c = self.task_configs[task_index]
        if num_envs is not None:
            return self._maze(num_envs, device=c.device, as_tensor=True, **self.maze_kwargs[task_index], **c.env_kwargs)
        if task_index not in self._envs:
            self._envs[task_index] = self._env(task_index, c.batch_size)
        return self._envs[task_index]

    def _seed(self, task_index: int, task_iteration: int) -> int:
        c = self.task_configs[task_index]
        return (self.config.seed * 1_000_003 + task_iteration * c.batch_size + task_index * 7_919) % (2**31)

    @property
    def parameters(self) -> int:
        """Trainable scalars of the policy."""
        return count_parameters(self.policy)

    # ------------------------------------------------------------------ the learner protocol
    def train_iteration(self, task_index: int, task_iteration: int, check: Callable[..., None]) -> Dict[str, float]:
        """One A2C update on task ``task_index`` (plus the regularizer's penalty).

        :param task_index: the task.
        :param task_iteration: the iteration within the task (seeds the mazes of this batch).
        :param check: ``check(loss=..., grad_norm=...)`` raises before a non-finite step.
        """
        c = self.task_configs[task_index]
        rollout = self._a2c.run_episodes(self.policy, self._env(task_index), self._seed(task_index, task_iteration))
        losses = self._a2c.a2c_loss(rollout, c)
        penalty = (consolidation_penalty(self.policy, self.consolidations, self.config.regularizer_strength)
                   if self.consolidations else torch.zeros((), device=losses["loss"].device))
        loss = losses["loss"] + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), c.max_grad_norm)
        check(loss=loss.detach(), grad_norm=grad_norm)
        self.optimizer.step()
        return {"train_return": float(rollout.rewards.sum(0).mean()), "env_steps": c.batch_size * c.episode_length,
                "loss": float(losses["loss"].detach()), "penalty": float(penalty.detach()), "grad_norm": float(grad_norm)}

    def finish(self) -> None:
        """Nothing to release."""

    def end_task(self, task_index: int, seed: int) -> None:
        """Consolidate the task just learned (EWC: its Fisher; L2: importance 1); nothing without a regularizer."""
        if self.regularizer == "l2":
            self.consolidations.append(restrict_consolidation(l2_consolidation(self.policy), self._regularized))
        elif self.regularizer == "ewc":
            env = self._env(task_index, self.config.fisher_episodes)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                rollout = self._a2c.run_episodes(self.policy, env, seed)
                log_likelihoods = rollout.log_probs.sum(0)
                fisher = fisher_diagonal(self.policy, log_likelihoods, rollout.log_probs.shape[0])
                self.consolidations.append(restrict_consolidation(fisher, self._regularized))

    @torch.no_grad()
    def evaluate(self, task_index: int, episodes: int, seed: int) -> float:
        """Mean episode return on ``episodes`` mazes of the task (actions sampled, as in training)."""
        with torch.random.fork_rng(devices=[]):  # evaluations never shift the training's random stream
            torch.manual_seed(seed)
            rollout = self._a2c.run_episodes(self.policy, self._env(task_index, episodes), seed)
        return float(rollout.rewards.sum(0).mean())

    def state_dict(self) -> Dict[str, Any]:
        """Policy, optimizer and consolidations as plain tensors."""
        return {"policy": export_policy(self.policy), "optimizer": self.optimizer.state_dict(),
                "consolidations": [{"anchor": c.anchor, "importance": c.importance} for c in self.consolidations]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        device = self.task_configs[0].device
        self.policy.load_state_dict(state["policy"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.consolidations = [Consolidation({k: v.to(device) for k, v in c["anchor"].items()},
                                             {k: v.to(device) for k, v in c["importance"].items()})
                               for c in state["consolidations"]]


class ESLearner:
    """A policy evolved by an EvoTorch searcher (PGPE by default) on each continuous-action task in turn.

    One searcher state (center, σ, the center optimizer's velocity or moments, the last
    evaluated population) and one set of observation statistics carry over from task to
    task; only the env the population is evaluated on changes. Performance is the
    search's own fitness: the mean episode return minus ``decrease_rewards_by`` per step.

    :param config: the continual run's config.
    :param sequence: the tasks (Box observations and actions, all of the same sizes).
    :param regularizer: must be ``"none"`` (ES has no loss to add a penalty to).
    """

    unit = "generation"

    def __init__(self, config, sequence: TaskSequence, regularizer: str) -> None:
        from plastic_rl.agents import es
        from plastic_rl.agents.es_policy import build_policy, env_spaces

        if regularizer != "none" or config.optimizer != "adam":
            raise ConfigError("method 'es' has no gradient loss: regularizer must be 'none' and optimizer 'adam' (the "
                              f"searcher's own center optimizer); got regularizer={regularizer!r}, optimizer={config.optimizer!r}.")
        self._es = es
        self.config, self.sequence = config, sequence
        self.task_configs = []
        spaces = []
        for task in sequence.tasks:
            base = {**config.method_config, "env_id": task.env_id, "env_kwargs": {**config.env_kwargs, **task.kwargs},
                    "plastic": config.plastic, "binary": config.binary, "seed": config.seed, "device": config.device}
            if config.learning_rate is not None:
                base["center_learning_rate"] = config.learning_rate
            task_config = _task_config(es, base, f"method_config (task {task.name!r})")
            self.task_configs.append(task_config)
            spaces.append(env_spaces(task_config.env_id, dict(task_config.env_kwargs)))
        if len(set(spaces)) != 1:
            raise ConfigError(f"every task of sequence {sequence.name!r} must have the same observation and action sizes "
                              f"(one policy learns them all); got {spaces}.")
        for name in ("evotorch", "evotorch.core"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.policy = build_policy(self.task_configs[0], *spaces[0]).to(config.device)
        self._center = nn.utils.parameters_to_vector(self.policy.parameters()).detach().clone()
        self._searcher_state: Optional[Dict[str, Any]] = None
        self._obs_norm: Optional[Dict[str, Any]] = None
        self._active: Optional[int] = None
        self._problem = self._searcher = None
        self._started_ray = es.init_ray(self.task_configs[0])

    def iterations_per_task(self, task_index: int) -> int:
        """Generations that spend at most ``steps_per_task`` env steps (full-length episodes) on a task."""
        c = self.task_configs[task_index]
        return max(1, math.ceil(self.config.steps_per_task / (c.popsize * c.episode_length * c.num_episodes)))

    @property
    def parameters(self) -> int:
        """Searched scalars of the policy."""
        return int(self._center.numel())

    def _activate(self, task_index: int) -> None:
        """Build the problem and searcher of ``task_index``, carrying the search state over from the last task."""
        if self._active == task_index:
            return
        from plastic_rl.agents.es_policy import make_problem
        from plastic_rl.agents.es_search import make_searcher, obs_norm_state
        from plastic_rl.agents.evotorch_internals import restore_obs_norm, restore_searcher_state, searcher_state

        if self._searcher is not None:
            self._searcher_state = searcher_state(self._searcher)
            self._obs_norm = obs_norm_state(self._problem)
            self._release_problem()
        c = self.task_configs[task_index]
        self._problem = make_problem(c, self.policy)
        self._searcher = make_searcher(c, self._problem, self._center.to(c.device))
        if self._searcher_state is not None:
            restore_searcher_state(self._searcher, self._searcher_state)
        restore_obs_norm(self._problem, self._obs_norm)
        self._active = task_index

    def _release_problem(self) -> None:
        if self._problem is not None and self.task_configs[0].num_actors > 1:
            self._problem.kill_actors()

    def finish(self) -> None:
        """Free the Ray actors (and Ray itself, if this learner started it)."""
        self._release_problem()
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def train_iteration(self, task_index: int, task_iteration: int, check: Callable[..., None]) -> Dict[str, float]:
        """One generation of the search on task ``task_index``.

        :param task_index: the task.
        :param task_iteration: the generation within the task (seeds its noise and episodes).
        :param check: ``check(fitness=..., center=...)`` raises on non-finite values.
        """
        from plastic_rl.agents.es_search import searcher_center

        self._activate(task_index)
        self._es._seed_everything(self.config.seed * 1_000_003 + task_index * 7_919 + task_iteration)
        before = int(self._problem.interaction_count)
        self._searcher.step()
        evals = self._searcher.population.evals[:, 0].detach().cpu()
        self._center = searcher_center(self._searcher)
        check(fitness=evals, center=self._center)
        return {"train_return": float(evals.mean()), "env_steps": int(self._problem.interaction_count) - before,
                "loss": float("nan"), "penalty": 0.0, "grad_norm": float("nan")}

    def end_task(self, task_index: int, seed: int) -> None:
        """Nothing to consolidate (the search state simply carries on)."""

    def _obs_stats(self) -> Optional[Dict[str, Any]]:
        from plastic_rl.agents.es_search import obs_norm_state

        return obs_norm_state(self._problem) if self._problem is not None else self._obs_norm

    def evaluate(self, task_index: int, episodes: int, seed: int) -> float:
        """The center's mean fitness on ``episodes`` episodes of the task (deterministic actions)."""
        from plastic_rl.agents.es_policy import policy_with
        from plastic_rl.agents.evaluate import run_episodes

        c = self.task_configs[task_index]
        result = run_episodes(policy_with(self.policy, self._center), self._obs_stats(), c.env_id,
                              [dict(c.env_kwargs)] * episodes, episode_length=c.episode_length, seed=seed)
        returns = np.asarray(result["returns"], dtype=float) - (c.decrease_rewards_by or 0.0) * np.asarray(result["lengths"])
        return float(returns.mean())

    def state_dict(self) -> Dict[str, Any]:
        """Center, searcher state and observation statistics as plain tensors."""
        from plastic_rl.agents.es_policy import policy_with
        from plastic_rl.agents.evotorch_internals import searcher_state

        state = searcher_state(self._searcher) if self._searcher is not None else self._searcher_state
        return {"center": self._center.clone(), "searcher": state, "obs_norm": self._obs_stats(), "active": self._active,
                "policy": export_policy(policy_with(self.policy, self._center))}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the searcher is rebuilt at the next iteration)."""
        self._center = state["center"].clone()
        self._searcher_state, self._obs_norm = state["searcher"], state["obs_norm"]
        self._problem = self._searcher = None
        self._active = None


#: PlasticPPO arguments a continual run's method_config may set (policy_kwargs: the core policy's, e.g. hidden_size).
PPO_FIELDS = ("policy", "n_envs", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef",
              "vf_coef", "max_grad_norm", "sequence_length", "policy_kwargs", "episode_length", "normalize_obs",
              "normalize_reward", "normalize_update_steps")


class PPOLearner:
    """A :class:`~plastic_rl.agents.ppo.PlasticPPO` model that meets the tasks in turn (``set_env`` at each boundary).

    One iteration is one PPO rollout of ``n_steps × n_envs`` steps and its update.
    The policy, the optimizer (Adam or :class:`~plastic_rl.MetaplasticAdam`, SB3's
    ``optimizer_class``) and the step counter carry over; an L2 regularizer adds its
    gradient ``λ Σ_k (θ − θ*_k)`` through parameter hooks, so SB3's loss and update
    stay SB3's. (EWC is offered by the a2c method.) The training return of an
    iteration is the mean return of the episodes that ended in it. A resumed run
    restarts its envs at the checkpoint, so it is not bit-identical to an unbroken one.

    ``normalize_obs`` / ``normalize_reward`` (method_config, default off) wrap every
    task's envs in SB3's ``VecNormalize``, as the ant-ppo preset does. The running
    statistics are one pair shared by all the tasks' envs: like the weights, they
    carry over from task to task and are not told of a boundary. Evaluation
    normalizes observations with them, frozen, and scores unscaled rewards.
    ``normalize_update_steps: N`` updates them only in the rollouts that start
    before env step N of the run, and keeps them fixed after (e.g. N =
    ``steps_per_task``: the first task's statistics; an ablation of how much
    forgetting the shifting statistics cause).

    :param config: the continual run's config; ``method_config`` takes :data:`PPO_FIELDS`.
    :param sequence: the tasks (one observation and action space for all).
    :param regularizer: ``"none"`` or ``"l2"``.
    """

    unit = "rollout"

    def __init__(self, config, sequence: TaskSequence, regularizer: str) -> None:
        from plastic_rl.agents.ppo import PlasticPPO

        unknown = sorted(set(config.method_config) - set(PPO_FIELDS))
        if unknown:
            raise ConfigError(f"unknown field {unknown[0]!r} in method_config for method ppo; allowed: {', '.join(PPO_FIELDS)}.")
        if regularizer == "ewc":
            raise ConfigError("regularizer 'ewc' is offered by method a2c; method ppo takes regularizer none or l2.")
        self.config, self.sequence, self.regularizer = config, sequence, regularizer
        mc = dict(config.method_config)
        self.n_envs = int(mc.pop("n_envs", 4))
        self.episode_length = mc.pop("episode_length", None)
        self.normalize_obs = bool(mc.pop("normalize_obs", False))
        self.normalize_reward = bool(mc.pop("normalize_reward", False))
        self.normalize_update_steps = mc.pop("normalize_update_steps", None)
        if self.normalize_update_steps is not None:
            steps = self.normalize_update_steps
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
                raise ConfigError(f"method_config normalize_update_steps must be a whole number of env steps >= 0 or null "
                                  f"(update the statistics throughout); got {steps!r}.")
            if not (self.normalize_obs or self.normalize_reward):
                raise ConfigError("method_config normalize_update_steps limits the VecNormalize updates; it needs "
                                  "normalize_obs: true or normalize_reward: true.")
        self.gamma = float(mc.get("gamma", 0.99))
        self._obs_rms = self._ret_rms = None  # the shared VecNormalize statistics, made with the first env
        policy_kwargs = dict(mc.pop("policy_kwargs", {}) or {})
        policy_kwargs.update(plastic=config.plastic, binary=config.binary)
        if config.optimizer == "metaplastic":
            policy_kwargs.update(optimizer_class=MetaplasticAdam, optimizer_kwargs={"eps": 1e-5, "meta": config.meta})
        self._envs: Dict[int, Any] = {}
        first = self._env(0)
        spaces = {(str(first.observation_space), str(first.action_space))}
        for k in range(1, len(sequence.tasks)):
            env = self._env(k)
            spaces.add((str(env.observation_space), str(env.action_space)))
        if len(spaces) != 1:
            raise ConfigError(f"every task of sequence {sequence.name!r} must have the same observation and action spaces "
                              f"(one policy learns them all); got {sorted(spaces)}.")
        policy = mc.pop("policy", "PlasticMlpPolicy" if "Box" in str(first.action_space) else "PlasticRnnPolicy")
        kwargs = {"n_steps": 256, "batch_size": 256, **mc}
        if config.learning_rate is not None:
            kwargs["learning_rate"] = config.learning_rate
        try:
            self.model = PlasticPPO(policy, first, policy_kwargs=policy_kwargs, seed=config.seed, device=config.device,
                                    verbose=0, **kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"method_config for method ppo is not accepted by PlasticPPO: {err}") from None
        self.policy = self.model.policy
        if config.optimizer == "metaplastic" and config.meta_groups:
            # SB3 builds its optimizer from policy.parameters(), one group; rebuild it with an m per name pattern.
            lr = self.policy.optimizer.param_groups[0]["lr"]
            self.policy.optimizer = MetaplasticAdam(_meta_groups(self.policy, config.meta, config.meta_groups),
                                                    lr=lr, eps=1e-5, meta=config.meta)
        self.consolidations: List[Consolidation] = []
        self._regularized = _regularized(self.policy, config)
        self._active = 0
        self._episodes_seen: Dict[int, List[int]] = {}
        for name, param in self.policy.named_parameters():
            param.register_hook(self._penalty_hook(name, param))

    def _penalty_hook(self, name: str, param: nn.Parameter):
        def hook(grad):
            if not self.consolidations:
                return grad
            extra = sum(c.importance[name] * (param.detach() - c.anchor[name]) for c in self.consolidations)
            return grad + self.config.regularizer_strength * extra
        return hook

    def _make(self, task_index: int, n_envs: int, seed: int, training: bool = True):
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize

        from plastic_rl.envs.sequences import make_env

        task = self.sequence.tasks[task_index]
        extra = {**self.config.env_kwargs}
        if self.episode_length is not None:
            extra["max_episode_steps"] = self.episode_length
        try:
            env = make_vec_env(lambda: make_env(task, **extra), n_envs=n_envs, seed=seed)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"task {task.name!r} could not be built ({err}).") from None
        if not (self.normalize_obs or self.normalize_reward):
            return env
        env = VecNormalize(env, norm_obs=self.normalize_obs, norm_reward=self.normalize_reward and training,
                           gamma=self.gamma, training=training)
        if self._obs_rms is None:
            self._obs_rms, self._ret_rms = env.obs_rms, env.ret_rms
        # One set of statistics for every task (updated in place by whichever env trains).
        env.obs_rms, env.ret_rms = self._obs_rms, self._ret_rms
        return env

    def _env(self, task_index: int):
        if task_index not in self._envs:
            self._envs[task_index] = self._make(task_index, self.n_envs, self.config.seed * 1_000_003 + task_index * 7_919)
        return self._envs[task_index]

    def iterations_per_task(self, task_index: int) -> int:
        """Rollouts that spend ``steps_per_task`` env steps on a task."""
        return max(1, math.ceil(self.config.steps_per_task / (self.model.n_steps * self.n_envs)))

    @property
    def parameters(self) -> int:
        """Trainable scalars of the actor (the evaluated policy)."""
        return count_parameters(self.policy.core)

    def train_iteration(self, task_index: int, task_iteration: int, check: Callable[..., None]) -> Dict[str, float]:
        """One PPO rollout and update on task ``task_index``.

        :param task_index: the task.
        :param task_iteration: the rollout within the task.
        :param check: ``check(...)`` raises on non-finite values.
        """
        env = self._env(task_index)
        if self._active != task_index or self.model.env is not env:
            self.model.set_env(env)  # the next learn() resets the new task's envs
            self._active = task_index
        if self.normalize_update_steps is not None:
            env.training = self.model.num_timesteps < self.normalize_update_steps  # VecNormalize updates only while training
        self.model.learn(self.model.n_steps * self.n_envs, reset_num_timesteps=False)
        # Monitor keeps every finished episode's return per env; the new ones are past what was seen before.
        per_env = env.env_method("get_episode_rewards")
        seen = self._episodes_seen.get(task_index, [0] * len(per_env))
        new = [r for rewards, k in zip(per_env, seen) for r in rewards[k:]]
        self._episodes_seen[task_index] = [len(rewards) for rewards in per_env]
        loss = self.model.logger.name_to_value.get("train/loss", float("nan"))
        check(loss=float(loss), weights=list(self.policy.parameters()))
        return {"train_return": float(np.mean(new)) if new else float("nan"), "env_steps": self.model.n_steps * self.n_envs,
                "loss": float(loss), "penalty": 0.0, "grad_norm": float("nan")}

    def end_task(self, task_index: int, seed: int) -> None:
        """L2: keep the weights of the task just learned."""
        if self.regularizer == "l2":
            self.consolidations.append(restrict_consolidation(l2_consolidation(self.policy), self._regularized))

    def finish(self) -> None:
        """Close the task envs."""
        for env in self._envs.values():
            env.close()

    def evaluate(self, task_index: int, episodes: int, seed: int) -> float:
        """Mean return over ``episodes`` episodes (deterministic actions for Box actions, sampled for discrete ones)."""
        from stable_baselines3.common.evaluation import evaluate_policy

        env = self._make(task_index, min(episodes, 8), seed, training=False)
        deterministic = "Box" in str(env.action_space)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mean, _ = evaluate_policy(self.model, env, n_eval_episodes=episodes, deterministic=deterministic)
        env.close()
        return float(mean)

    def state_dict(self) -> Dict[str, Any]:
        """Policy, optimizer, step count, consolidations and VecNormalize statistics as plain tensors."""
        state = {"policy": {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()},
                 "optimizer": self.policy.optimizer.state_dict(), "num_timesteps": int(self.model.num_timesteps),
                 "consolidations": [{"anchor": c.anchor, "importance": c.importance} for c in self.consolidations]}
        from plastic_rl.agents.ppo_train import vec_normalize_state

        state["normalization"] = vec_normalize_state(self._env(0))  # every task's env holds the same statistics
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the envs start new episodes)."""
        self.policy.load_state_dict(state["policy"])
        self.policy.optimizer.load_state_dict(state["optimizer"])
        self.model.num_timesteps = int(state["num_timesteps"])
        device = self.policy.device
        self.consolidations = [Consolidation({k: v.to(device) for k, v in c["anchor"].items()},
                                             {k: v.to(device) for k, v in c["importance"].items()})
                               for c in state["consolidations"]]
        from plastic_rl.agents.ppo_train import restore_vec_normalize

        restore_vec_normalize(self._env(0), state.get("normalization"))  # in place: every task's env sees them


#: method name -> learner class.
LEARNERS = {"a2c": A2CLearner, "es": ESLearner, "ppo": PPOLearner}
