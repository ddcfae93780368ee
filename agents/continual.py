"""Continual RL: one policy learns the tasks of a sequence one after another; how much does it forget?

``plastic-rl continual --sequence NAME --method a2c|ppo|es --optimizer adam|metaplastic --meta M
[--regularizer none|ewc|l2] --steps-per-task N --seed S --run-dir DIR`` (or ``plastic-rl train``
with ``trainer: continual`` in a YAML config).

Read top to bottom: :class:`Config` says what can be set; :func:`train` runs

1. the *sequence*: stage ``i`` trains the learner (:mod:`plastic_rl.agents.continual_methods`)
   on task ``i`` for ``steps_per_task`` env steps. Nothing tells the policy that the
   task changed: the same network, optimizer state (Adam's moments, or
   :class:`~plastic_rl.MetaplasticAdam`'s) and search state carry on; only an EWC/L2
   regularizer is told the boundary, to consolidate. After every stage the policy is
   evaluated on *every* task: row ``i`` of the matrix ``R[i][j]``; the untrained policy
   gives the ``before training`` row.
2. the *references* (``reference: true``): each task trained alone from the same
   initial weights with the same budget, optimizer and episodes, for forward
   transfer. The first task's reference is stage 0 itself (the very same run), so
   only tasks 1..N-1 are trained again, and its forward transfer is 0 by construction.
   The references depend only on the config and its seed, so a resume with
   ``reference: true`` adds them to a run made without them, with the same figures
   as a run made with them.

The run folder is the same as every trainer's (``config.yaml``, ``run.json``,
``metrics.csv`` with one row per training iteration, TensorBoard under ``tb/``,
``checkpoint.pt``, ``summary.json``) plus ``matrix.csv`` and ``matrix.png`` (the heat
map), rewritten after each stage, and with ``keep_stages`` one ``stage-J.pt`` per stage (the
learner as it was right after stage ``J``, for analysis such as
``scripts/forgetting_attribution.py``). A killed run continues with ``--resume`` from its
last checkpoint, playing exactly the episodes the unbroken run would have played.
The summary holds average performance, forgetting and forward transfer as
Continual World defines them (:mod:`plastic_rl.agents.continual_metrics`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from plastic_rl.config import ConfigError, check_device, check_seed
from plastic_rl.runs import Run

from plastic_rl.agents.continual_methods import LEARNERS
from plastic_rl.agents.continual_metrics import continual_metrics, matrix_csv, plot_matrix
from plastic_rl.agents.regularizers import REGULARIZERS
from plastic_rl.envs.sequences import get_sequence

__all__ = ["Config", "train", "METHODS", "OPTIMIZERS"]

METHODS = tuple(LEARNERS)
OPTIMIZERS = ("adam", "metaplastic")
MATRIX_CSV = "matrix.csv"
MATRIX_PNG = "matrix.png"
#: Config fields a resumed run may change; every other field must match the run's.
RESUMABLE_FIELDS = ("device", "num_threads", "checkpoint_every", "tensorboard", "progress", "keep_stages", "reference")
METRIC_FIELDS = ("iteration", "phase", "task", "task_iteration", "env_steps", "train_return", "loss", "penalty",
                 "grad_norm", "wall_time")
CHECKPOINT_FORMAT = "plastic-rl/continual-checkpoint-v1"
STAGE_FORMAT = "plastic-rl/continual-stage-v1"


def stage_file(stage: int) -> str:
    """The name of the learner snapshot kept after sequence stage ``stage`` (``keep_stages``)."""
    return f"stage-{stage}.pt"


@dataclass
class Config:
    """A continual run: a task sequence, a learner and what is measured (stored as ``config.yaml``)."""

    # --- what is learned
    sequence: str = "maze-layouts"  #: a built-in sequence (ant-legs, ant-directions, maze-layouts) or a YAML sequence file
    env_kwargs: Dict[str, Any] = field(default_factory=dict)  #: keyword arguments added to every task's env (e.g. include_cfrc_ext_in_observation: false)
    steps_per_task: int = 300_000  #: training env steps per task (A2C: batch x episode length per iteration; ES: popsize x full episodes)

    # --- the learner
    method: str = "a2c"  #: a2c (maze tasks, full-episode A2C), ppo (PlasticPPO, any task) or es (continuous-action tasks, EvoTorch)
    optimizer: str = "adam"  #: adam or metaplastic (MetaplasticAdam; gradient methods)
    meta: float = 1.0  #: metaplasticity m of MetaplasticAdam (used when optimizer is metaplastic)
    meta_groups: Dict[str, float] = field(default_factory=dict)  #: another m for the tensors these name patterns match (fnmatch; first match wins), e.g. {core.layers.2.weight: 30}; other tensors get meta (optimizer metaplastic)
    regularizer: str = "none"  #: none, ewc (diagonal Fisher) or l2 (to the previous tasks' weights); gradient methods
    regularizer_strength: float = 100.0  #: λ of the EWC/L2 penalty (λ/2) Σ F (θ − θ*)²
    regularizer_params: List[str] = field(default_factory=lambda: ["*"])  #: name patterns (fnmatch) of the tensors the EWC/L2 penalty covers, e.g. ["*.bias"]; default every tensor
    fisher_episodes: int = 16  #: EWC: episodes of a finished task that estimate its Fisher information
    plastic: bool = True  #: False trains the non-plastic twin
    binary: bool = False  #: binarized hidden layers (sign of real hidden weights; plasticity stays real)
    learning_rate: Optional[float] = None  #: a2c/ppo: Adam step; es: the center's step; null = the method's own default
    method_config: Dict[str, Any] = field(default_factory=dict)  #: a2c/es: other fields of a2c.Config / es.Config (hidden_size, batch_size, popsize...); ppo: PlasticPPO arguments (n_steps, n_envs, policy_kwargs...)

    # --- measurement
    eval_episodes: int = 32  #: episodes per task in every evaluation (the same episodes after every stage)
    reference: bool = True  #: also train each task alone from scratch (forward transfer needs it; doubles the cost)

    # --- run
    seed: int = 0  #: seeds the initial policy, the training episodes and the evaluations
    device: str = "cpu"  #: torch device of the policy
    num_threads: int = 1  #: torch CPU threads
    checkpoint_every: int = 20  #: iterations between checkpoints (and always at the end of every stage)
    tensorboard: bool = True  #: also write TensorBoard events under RUN_DIR/tb
    progress: bool = True  #: show a progress bar on stderr
    keep_stages: bool = False  #: also keep the learner as it was right after each stage, as stage-J.pt (e.g. 0.3 MB each for the ant PPO policy)

    def __post_init__(self) -> None:
        choices = {"method": METHODS, "optimizer": OPTIMIZERS, "regularizer": REGULARIZERS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}.")
        for name in ("steps_per_task", "eval_episodes", "fisher_episodes", "num_threads", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
        for name in ("reference", "plastic", "binary", "tensorboard", "progress", "keep_stages"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false; got {getattr(self, name)!r}.")
        for name in ("meta", "regularizer_strength"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0; got {value!r}.")
        if self.learning_rate is not None and not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning_rate must be a positive number or null (the method's default); got {self.learning_rate!r}.")
        if not isinstance(self.meta_groups, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for k, v in self.meta_groups.items()):
            raise ConfigError(f"meta_groups must map parameter-name patterns to numbers >= 0 "
                              f"(e.g. {{core.layers.2.weight: 30}}); got {self.meta_groups!r}.")
        if not isinstance(self.regularizer_params, list) or not self.regularizer_params or not all(
                isinstance(p, str) and p for p in self.regularizer_params):
            raise ConfigError(f"regularizer_params must be a non-empty list of parameter-name patterns (e.g. ['*.bias']); "
                              f"got {self.regularizer_params!r}.")
        if self.regularizer_params != ["*"] and self.regularizer == "none":
            raise ConfigError("regularizer_params applies to regularizer ewc or l2; this run's regularizer is 'none'.")
        if self.meta_groups and self.optimizer != "metaplastic":
            raise ConfigError(f"meta_groups applies to optimizer metaplastic; this run's optimizer is {self.optimizer!r}.")
        for name in ("env_kwargs", "method_config"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a mapping of field: value; got {getattr(self, name)!r}.")
        owned = {"plastic", "binary", "seed", "device", "learning_rate", "center_learning_rate", "env_id", "env_kwargs"}
        clash = sorted(owned & set(self.method_config))
        if clash:
            raise ConfigError(f"method_config must not set {clash[0]!r}: it is a field of the continual config itself (or of the tasks).")
        if not isinstance(self.sequence, str) or not self.sequence:
            raise ConfigError(f"sequence must name a built-in sequence or a YAML file; got {self.sequence!r}.")
        check_seed(self.seed)
        check_device(self.device)


def _eval_seed(config: Config, task_index: int) -> int:
    # The same episodes of task j after every stage (paired comparisons), other episodes than training's.
    return (config.seed * 1_000_003 + 500_009 + task_index * 10_007) % (2**31)


def _task_seed(config: Config, task_index: int) -> int:
    # The action-sampling stream of a task's training, the same in its stage and in its reference.
    return (config.seed * 1_000_003 + 900_001 + task_index * 7_919) % (2**31)


def _new_learner(config: Config, sequence, regularizer: str):
    torch.manual_seed(config.seed)  # every learner of a run starts from the same initial weights
    return LEARNERS[config.method](config, sequence, regularizer)


def _write_matrix(run: Run, names: List[str], progress: Dict[str, Any], title: str) -> None:
    run.write_file(MATRIX_CSV, lambda f: f.write(matrix_csv(names, progress["initial"], progress["matrix"]).encode()))
    png = plot_matrix(names, progress["initial"], progress["matrix"], title)
    run.write_file(MATRIX_PNG, lambda f: f.write(png))


def train(config: Config, run_dir: str | Path, resume: bool = False) -> Dict[str, Any]:
    """Train through ``config.sequence`` (then the from-scratch references); write the run folder; return the summary.

    :param config: the run's config.
    :param run_dir: the run folder (new or empty, or one to resume).
    :param resume: continue ``run_dir`` from its last checkpoint.
    """
    try:
        sequence = get_sequence(config.sequence)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    torch.set_num_threads(config.num_threads)
    learner = _new_learner(config, sequence, config.regularizer)  # checks the method's config before any file is written
    n = len(sequence.tasks)
    run = Run.open(run_dir, "continual", config, resume=resume, resumable=RESUMABLE_FIELDS,
                   files=(MATRIX_CSV, MATRIX_PNG, *(stage_file(j) for j in range(n))), step_name="iteration")
    names = [t.name for t in sequence.tasks]
    # Task 0's from-scratch reference would repeat stage 0 exactly (same weights, episodes, optimizer): not run again.
    phases = [("sequence", j) for j in range(n)] + ([("reference", j) for j in range(1, n)] if config.reference else [])
    lengths = [learner.iterations_per_task(j) for _, j in phases]
    offsets = [sum(lengths[:p]) for p in range(len(phases))]
    progress: Dict[str, Any] = {
        "phase": 0, "phase_iteration": 0, "initial": None, "matrix": [], "env_steps": 0, "wall_time": 0.0,
        "stage_return_sum": [0.0] * n, "stage_return_count": [0] * n,
        "reference_return_sum": [0.0] * n, "reference_return_count": [0] * n, "reference_final": [None] * n,
    }
    title = (f"{sequence.name}: {config.method}, {config.optimizer}"
             + (f" m={config.meta:g}" if config.optimizer == "metaplastic" else "")
             + "".join(f", {k} m={v:g}" for k, v in config.meta_groups.items())
             + (f", {config.regularizer}" if config.regularizer != "none" else "")
             + f", {'plastic' if config.plastic else 'non-plastic'}{', binary' if config.binary else ''}, seed {config.seed}")
    checkpoint = run.checkpoint
    if checkpoint is not None:
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            from plastic_rl.runs import RunDirError

            raise RunDirError(f"cannot resume {str(run.path)!r}: its checkpoint is not a continual checkpoint ({CHECKPOINT_FORMAT}).")
        progress.update(checkpoint["progress"])
        kind = phases[progress["phase"]][0] if progress["phase"] < len(phases) else "done"
        if kind == "reference" and progress["phase_iteration"] > 0:
            learner = _new_learner(config, sequence, "none")
            learner.load_state_dict(checkpoint["learner"])
        elif kind == "sequence":
            learner.load_state_dict(checkpoint["learner"])
        torch.set_rng_state(checkpoint["torch_rng"])

    logger = run.metrics(METRIC_FIELDS)
    bar = run.progress(sum(lengths), desc=f"continual {sequence.name}", unit="it")
    start = time.perf_counter() - float(progress["wall_time"])

    def save(step: int) -> None:
        progress["wall_time"] = time.perf_counter() - start
        run.save_checkpoint({"format": CHECKPOINT_FORMAT, "progress": dict(progress), "learner": learner.state_dict(),
                             "torch_rng": torch.get_rng_state(), "sequence": sequence.as_dict()}, step)

    try:
        for p in range(progress["phase"], len(phases)):
            kind, j = phases[p]
            if progress["phase_iteration"] == 0:
                if kind == "reference":
                    learner.finish()
                    learner = _new_learner(config, sequence, "none")
                torch.manual_seed(_task_seed(config, j))
                if p == 0:
                    progress["initial"] = [learner.evaluate(k, config.eval_episodes, _eval_seed(config, k)) for k in range(n)]
            for it in range(progress["phase_iteration"] + 1, lengths[p] + 1):
                step = offsets[p] + it
                row = learner.train_iteration(j, it, lambda **q: run.check_finite(step, **q))
                progress["env_steps"] += int(row["env_steps"])
                prefix = "stage" if kind == "sequence" else "reference"
                if math.isfinite(row["train_return"]):  # (PPO: NaN when no episode ended in this rollout)
                    progress[f"{prefix}_return_sum"][j] += row["train_return"]
                    progress[f"{prefix}_return_count"][j] += 1
                progress["phase_iteration"] = it
                logger.log({**row, "iteration": step, "phase": kind, "task": j, "task_iteration": it,
                            "env_steps": progress["env_steps"], "wall_time": round(time.perf_counter() - start, 3)})
                bar.set_postfix_str(f"{kind} {names[j]}: return {row['train_return']:.2f}", refresh=False)
                bar.update(1)
                if it % config.checkpoint_every == 0 and it < lengths[p]:
                    save(step)
            if kind == "sequence":
                progress["matrix"].append([learner.evaluate(k, config.eval_episodes, _eval_seed(config, k)) for k in range(n)])
                if config.keep_stages:  # before end_task: the learner exactly as it was evaluated in this row
                    snapshot = {"format": STAGE_FORMAT, "stage": j, "task": names[j], "learner": learner.state_dict()}
                    run.write_file(stage_file(j), lambda f: torch.save(snapshot, f))
                if j < n - 1:
                    learner.end_task(j, _eval_seed(config, j) + 1)
                _write_matrix(run, names, progress, title)
            else:
                progress["reference_final"][j] = learner.evaluate(j, config.eval_episodes, _eval_seed(config, j))
            run.check_finite(offsets[p] + lengths[p], evaluation=progress["matrix"][-1] if kind == "sequence" else progress["reference_final"][j])
            progress["phase"], progress["phase_iteration"] = p + 1, 0
            save(offsets[p] + lengths[p])
    finally:
        logger.close()
        bar.close()
        learner.finish()

    if progress["initial"] is not None and progress["matrix"]:
        _write_matrix(run, names, progress, title)  # a run resumed after its last stage still gets its files
    stage_auc = [s / max(c, 1) for s, c in zip(progress["stage_return_sum"], progress["stage_return_count"])]
    reference_auc = reference_final = None
    if config.reference:
        reference_auc = [s / max(c, 1) for s, c in zip(progress["reference_return_sum"], progress["reference_return_count"])]
        reference_final = list(progress["reference_final"])
        reference_auc[0], reference_final[0] = stage_auc[0], progress["matrix"][0][0]  # stage 0 is task 0's reference
    metrics = continual_metrics(progress["matrix"], progress["initial"], stage_auc, reference_auc, reference_final)
    return run.finish({
        "trainer": "continual",
        "sequence": sequence.name,
        "tasks": names,
        "method": config.method,
        "optimizer": config.optimizer,
        "meta": config.meta if config.optimizer == "metaplastic" else 0.0,
        "meta_groups": dict(config.meta_groups),
        "regularizer": config.regularizer,
        "plastic": config.plastic,
        "binary": config.binary,
        "parameters": learner.parameters,
        "steps_per_task": config.steps_per_task,
        "iterations_per_task": lengths[:n],
        "env_steps": progress["env_steps"],
        "wall_time": time.perf_counter() - start,
        "initial": progress["initial"],
        "matrix": progress["matrix"],
        **metrics,
        "matrix_csv": str(run.path / MATRIX_CSV),
        "matrix_png": str(run.path / MATRIX_PNG),
        "checkpoint": str(run.path / "checkpoint.pt"),
    })
