"""Evolution strategies (EvoTorch) for plastic policies on the quadruped with failing legs.

Read top to bottom, CleanRL style: :class:`Config` (every knob, with its default and
what it means), then :func:`train` (the generation loop: evaluate, check, log,
checkpoint, resume). The rest lives in modules with one job each:

- :mod:`plastic_rl.agents.es_policy` — the searched policy, EvoTorch's adapter
  (traces travel in EvoTorch's ``h``), the batched population forward and the problem;
- :mod:`plastic_rl.agents.es_search` — the search algorithm and its state as tensors;
- :mod:`plastic_rl.agents.evotorch_internals` — every use of EvoTorch's private attributes.

The search is over the flat parameter vector of the policy (the weights, and
for a plastic policy also alpha, η and the neuromodulator); the static twin is
the same network with ``plastic=False``.
"""

from __future__ import annotations

import copy
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
from torch import Tensor, nn

from plastic_rl.config import ConfigError, check_device, check_seed
from plastic_rl.plasticity import MODULATIONS, RULES
from plastic_rl.policies import export_policy
from plastic_rl.runs import (
    CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, Run, RunDirError, atomic_write_json, load_checkpoint, plot_curves, read_metrics,
)

from plastic_rl.agents.es_policy import (
    EvoTorchPolicy,
    PopulationPolicy,
    build_policy,
    env_spaces,
    make_problem,
    policy_with,
)
from plastic_rl.agents.es_search import (
    make_searcher,
    obs_norm_state,
    restore_obs_norm,
    restore_searcher_state,
    searcher_center,
    searcher_mean_stdev,
    searcher_state,
)
from plastic_rl.agents.evotorch_internals import SHARED_EPISODES

ALGORITHMS = ("pgpe", "cmaes", "snes", "cem", "openai-es")
POLICY_KINDS = ("mlp", "recurrent")
CELLS = ("rnn", "lstm", "spiking")
CHECKPOINT_FORMAT = "plastic-rl/es-checkpoint-v1"
CURVE_FILE = "fitness.png"
METRIC_FIELDS = (
    "generation", "env_steps", "wall_time", "mean_fitness", "best_fitness", "center_fitness", "center_return",
    "best_ever_fitness", "mean_stdev", "steps_per_second",
)
# Config fields a resumed run may change (recorded in run.json); everything else must match the checkpoint.
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
    cell: str = "rnn"  # recurrent: rnn, lstm or spiking (plastic LIF neurons; ES runs the spikes as they are, no surrogate)
    modulation: str = "simple"  # none, simple or retroactive (DESIGN.md §2)
    rule: str = "hebbian"  # hebbian, oja, bcm or abcd
    plastic: bool = True  # False = the static twin (no alpha, η or modulator)
    # alpha = alpha_scale x the searched value: σ and the ClipUp step then move every plasticity coefficient
    # alpha_scale times as far as a weight. With 1.0, PGPE's σ (0.02) is 4x alpha's initial scale and the
    # walk search drifted alpha 14x above it; see PlasticityConfig.alpha_scale.
    alpha_scale: float = 1.0
    # The rules-only variant (Najarro & Risi 2020): weights drawn at random at the start of every episode,
    # only the plasticity (alpha, the rule, η or the modulator) searched; needs plastic (and cell rnn).
    random_weights: bool = False
    # Binarized hidden layers: the forward uses sign(W) / sqrt(fan_in) of the searched real weights (the plastic
    # term alpha ⊙ Hebb stays real); the action layer / heads stay real. Not with random_weights.
    binary: bool = False
    # Binarized plasticity: alpha = ±alpha_scale and the neuromodulator's weights ±1/sqrt(fan_in), the signs of the
    # searched real values (PlasticityConfig.binary_plasticity).
    binary_plasticity: bool = False

    # --- search
    algorithm: str = "pgpe"  # pgpe (with ClipUp), cmaes (separable for large nets), snes, cem, openai-es
    popsize: int = 20  # solutions per generation (pgpe/openai-es: even, sampled in ± pairs)
    generations: int = 300  # generations to run (on --resume: the new total)
    stdev_init: float = 0.02  # initial search standard deviation per parameter
    center_learning_rate: Optional[float] = None  # pgpe: ClipUp step (default 0.01); openai-es: Adam lr (default 0.01); snes: NES default
    stdev_learning_rate: Optional[float] = None  # pgpe: 0.1; snes: NES default; openai-es: fixed σ (always 0)
    center_eval_episodes: int = 1  # episodes run each generation to report the center's fitness (0 = skip)
    # Which population members run the same episodes (Ant's start noise and, under random failures, the same
    # drawn leg and step): none (each member its own), pairs (each ± pair of pgpe/openai-es: common random
    # numbers, so a pair's fitness difference is the perturbation's and not the episode's), or generation
    # (every member of a generation the same episodes; the next generation draws new ones).
    shared_episodes: str = "none"

    # --- compute
    num_actors: int = 0  # Ray actors evaluating the population (0 or 1 = this process)
    ray_address: Optional[str] = None  # join this Ray cluster (e.g. "auto" or "ray://host:10001")
    device: str = "cpu"  # where the population and the policy forward run
    seed: int = 0  # seeds the initial policy, the search noise and the episodes
    # Fine-tuning: start the search's center (and the observation normalization) from another ES run's center
    # policy, a run folder or its checkpoint.pt, instead of a fresh random policy (e.g. a walker trained intact,
    # searched on under leg failures). The policy fields must build the same network as that run's.
    init_from: Optional[str] = None

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
        if isinstance(self.alpha_scale, bool) or not isinstance(self.alpha_scale, (int, float)) \
                or not (self.alpha_scale > 0 and math.isfinite(self.alpha_scale)):
            raise ValueError(f"config field 'alpha_scale' must be a positive number; got {self.alpha_scale!r}.")
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
        _check_choice("shared_episodes", self.shared_episodes, SHARED_EPISODES)
        if self.shared_episodes == "pairs" and self.algorithm not in ("pgpe", "openai-es"):
            raise ValueError(f"config field 'shared_episodes' can be 'pairs' only with pgpe or openai-es (samples in ± pairs); "
                             f"got algorithm {self.algorithm!r}.")
        if self.shared_episodes == "pairs" and self.num_actors > 1 and self.popsize % (2 * self.num_actors):
            raise ValueError(f"config field 'popsize' must be a multiple of 2 x num_actors ({2 * self.num_actors}) with "
                             f"shared_episodes: pairs, so that no ± pair is split between actors; got {self.popsize}.")
        if self.center_eval_episodes < 0:
            raise ValueError(f"config field 'center_eval_episodes' must be >= 0; got {self.center_eval_episodes}.")
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"config field 'env_kwargs' must be a mapping of keyword: value; got {self.env_kwargs!r}.")
        if "max_episode_steps" in self.env_kwargs:
            raise ValueError("config field 'env_kwargs' must not set max_episode_steps; set the config field 'episode_length' instead.")
        if self.random_weights and (not self.plastic or (self.policy == "recurrent" and self.cell != "rnn")):
            raise ValueError("config field 'random_weights' needs plastic: true (and cell: rnn for the recurrent policy): "
                             "with random weights every episode only the plasticity is searched.")
        if self.binary and (self.random_weights or (self.policy == "recurrent" and self.cell not in ("rnn", "lstm"))):
            raise ValueError("config field 'binary' needs learned fixed weights (random_weights: false) and, for the "
                             f"recurrent policy, cell rnn or lstm; got random_weights={self.random_weights!r}, cell={self.cell!r}.")
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise ValueError(f"config field 'init_from' must be the path of an ES run folder or its {CHECKPOINT_FILE}, or null; "
                             f"got {self.init_from!r}.")
        check_seed(self.seed)
        check_device(self.device)


def _check_choice(name: str, value: Any, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"config field {name!r} must be one of {', '.join(allowed)}; got {value!r}.")


def _generation_seed(config: Config, generation: int) -> int:
    """The seed of generation ``generation``'s step (0-based): the noise it samples and its episodes."""
    return config.seed * 1_000_003 + generation


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


def load_init_policy(config: Config, policy: nn.Module) -> Tuple[Tensor, Optional[Dict[str, Any]]]:
    """The flat parameters and observation statistics to start from: ``config.init_from``'s center policy.

    :param config: the run's config (``init_from`` set).
    :param policy: the network this run searches; the source's weights must fit it exactly.
    """
    source = Path(config.init_from)
    path = source / CHECKPOINT_FILE if source.is_dir() else source
    if not path.is_file():
        raise ConfigError(f"config field 'init_from' must name an ES run folder (with a {CHECKPOINT_FILE}) or an ES "
                          f"{CHECKPOINT_FILE}; {config.init_from!r} is neither.")
    checkpoint = load_checkpoint(path)
    if checkpoint.get("format") != CHECKPOINT_FORMAT or "center_policy" not in checkpoint:
        raise ConfigError(f"config field 'init_from' must name an ES run; {str(path)!r} is not an ES checkpoint ({CHECKPOINT_FORMAT}).")
    state_dict = checkpoint["center_policy"]["state_dict"]
    own = policy.state_dict()
    if set(state_dict) != set(own) or any(state_dict[k].shape != own[k].shape for k in own):
        raise ConfigError(
            f"config field 'init_from': {str(path)!r} holds a {checkpoint['center_policy']['kind']} policy "
            f"{dict(checkpoint['center_policy']['config'])!r} that does not fit this run's network; set the policy fields "
            "(policy, hidden_sizes/width, plastic, modulation, rule, ...) and the env's observation size as that run's."
        )
    obs_norm = checkpoint.get("obs_norm")
    if config.observation_normalization and obs_norm is None:
        raise ConfigError(f"config field 'init_from': {str(path)!r} was trained without observation normalization; "
                          "set observation_normalization: false to fine-tune it.")
    initial = copy.deepcopy(policy)
    initial.load_state_dict(state_dict)
    return nn.utils.parameters_to_vector(initial.parameters()).detach(), obs_norm if config.observation_normalization else None


def evaluate_center(config: Config, policy: nn.Module, obs_norm: Optional[Dict[str, Any]], generation: int) -> Tuple[float, float, int]:
    """``policy`` over ``config.center_eval_episodes`` training-distribution episodes: (mean fitness, mean env return, env steps).

    The fitness is on the search's scale (``decrease_rewards_by`` subtracted per step); the env return is
    the env's own (what ``plastic-rl compare`` puts beside a gradient trainer's returns).
    """
    from plastic_rl.agents.evaluate import run_episodes

    if config.center_eval_episodes == 0:
        return float("nan"), float("nan"), 0
    result = run_episodes(
        policy, obs_norm, config.env_id, [dict(config.env_kwargs)] * config.center_eval_episodes,
        episode_length=config.episode_length, seed=config.seed * 1_000_003 + generation,
    )
    # Same measure as the population's fitness: EvoTorch subtracts decrease_rewards_by at every step.
    env_returns = np.asarray(result["returns"], dtype=float)
    returns = env_returns - (config.decrease_rewards_by or 0.0) * np.asarray(result["lengths"])
    return float(np.mean(returns)), float(np.mean(env_returns)), int(result["lengths"].sum())


def train(config: Config, run_dir: str | Path, resume: bool = False) -> Dict[str, Any]:
    """Evolve ``config.policy`` with ``config.algorithm``; write the run folder; return the summary.

    :param config: the run's config.
    :param run_dir: the run folder (new, or one to resume).
    :param resume: continue ``run_dir`` from its checkpoint up to ``config.generations``.
    """
    obs_size, action_size = env_spaces(config.env_id, {**config.env_kwargs})  # validates env_id/env_kwargs before any file is written
    torch.set_num_threads(1)  # ES parallelism is across actors; one thread each avoids oversubscription
    _seed_everything(config.seed)
    policy = build_policy(config, obs_size, action_size).to(config.device)
    center_init, init_obs_norm = nn.utils.parameters_to_vector(policy.parameters()).detach(), None
    resuming = resume and (Path(run_dir) / CHECKPOINT_FILE).is_file()  # then the checkpoint's center supersedes init_from
    if config.init_from is not None and not resuming:  # checked before the run folder is written: a bad source leaves nothing
        center_init, init_obs_norm = load_init_policy(config, policy)
    run = Run.open(run_dir, "es", config, resume=resume, resumable=RESUMABLE_FIELDS, files=(CURVE_FILE,),
                   step_name="generation")
    checkpoint = run.checkpoint
    if checkpoint is not None and checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"cannot resume {str(run.path)!r}: its {CHECKPOINT_FILE} is not an ES checkpoint ({CHECKPOINT_FORMAT}).")
    for name in ("evotorch", "evotorch.core"):  # EvoTorch logs every problem it builds at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    started_ray = init_ray(config)
    problem = make_problem(config, policy)
    searcher = make_searcher(config, problem, center_init.to(config.device))
    if checkpoint is None:
        restore_obs_norm(problem, init_obs_norm)  # a fine-tuned policy keeps the statistics it was trained with

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
    logger = run.metrics(METRIC_FIELDS)
    progress = run.progress(config.generations, desc="ES", unit="gen", log_lines=False)  # it prints its own line per generation
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
            _seed_everything(_generation_seed(config, generation))
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
            run.check_finite(generation, fitness=evals, center=center)
            obs_norm = obs_norm_state(problem)
            center_policy = policy_with(policy, center)
            center_fitness, center_return, steps = evaluate_center(config, center_policy, obs_norm, generation)
            eval_steps += steps
            row = {
                "generation": generation,
                "env_steps": env_steps,
                "wall_time": round(time.perf_counter() - start, 3),
                "mean_fitness": float(evals.mean()),
                "best_fitness": float(evals[best_index]),
                "center_fitness": center_fitness,
                "center_return": center_return,
                "best_ever_fitness": best_fitness,
                "mean_stdev": searcher_mean_stdev(searcher),
                "steps_per_second": round((env_steps - steps0) / max(gen_time, 1e-9), 1),
            }
            logger.log(row)
            run.check_finite(generation, center_fitness=center_fitness if config.center_eval_episodes else 0.0)
            run.save_checkpoint(
                {
                    "format": CHECKPOINT_FORMAT,
                    "generation": generation,
                    "env_steps": env_steps,
                    "eval_env_steps": eval_steps,
                    "wall_time": row["wall_time"],
                    "best_fitness": best_fitness,
                    "best_params": best_params,
                    # The population is kept as the seed it was sampled with (see searcher_state): a small file.
                    "searcher": searcher_state(searcher, population_seed=_generation_seed(config, generation - 1)),
                    "obs_norm": obs_norm,
                    "env": env_record,
                    "policy": export_policy(policy_with(policy, best_params)),
                    "center_policy": export_policy(center_policy),
                },
                generation,
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

    return write_summary(run.path, config)


def write_summary(run_dir: str | Path, config: Config) -> Dict[str, Any]:
    """``summary.json`` and the fitness curve from ``metrics.csv`` and the checkpoint (also for a finished run).

    :param run_dir: the run folder.
    :param config: its config.
    """
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / METRICS_FILE)
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


def train_or_resume(config: Config, run_dir: str | Path) -> Dict[str, Any]:
    """Train ``config`` into ``run_dir``, resuming it (to ``config.generations``) if a checkpoint is already there.

    A run already at ``config.generations`` or beyond is not trained again: only its summary is rewritten.
    This is how the study scripts run long searches in pieces: the same command, run again, goes on.

    :param config: the run's config.
    :param run_dir: its folder.
    """
    run_dir = Path(run_dir)
    resume = (run_dir / CONFIG_FILE).is_file()  # train() starts a run killed before its first checkpoint over
    if (run_dir / CHECKPOINT_FILE).is_file() and int(load_checkpoint(run_dir / CHECKPOINT_FILE)["generation"]) >= config.generations:
        return write_summary(run_dir, config)
    return train(config, run_dir, resume=resume)


__all__ = [
    "ALGORITHMS", "Config", "EvoTorchPolicy", "PopulationPolicy", "build_policy", "env_spaces", "make_problem",
    "make_searcher", "searcher_center", "searcher_mean_stdev", "searcher_state", "restore_searcher_state",
    "obs_norm_state", "restore_obs_norm", "policy_with", "init_ray", "train", "train_or_resume", "write_summary",
]
