"""The searcher: which EvoTorch algorithm, its center and spread, and its state as plain tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

import torch
from torch import Tensor

from plastic_rl.agents.evotorch_internals import (
    restore_obs_norm,
    restore_searcher_state,
    searcher_mean_stdev,
    searcher_state,
)

if TYPE_CHECKING:
    from plastic_rl.agents.es import Config

__all__ = [
    "make_searcher", "searcher_center", "searcher_mean_stdev", "searcher_state", "restore_searcher_state",
    "obs_norm_state", "restore_obs_norm",
]


def make_searcher(config: "Config", problem, center_init: Tensor):
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
