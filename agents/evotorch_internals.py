"""Every use of EvoTorch's private attributes, in one module (EvoTorch pinned to 0.6.x in pyproject.toml).

EvoTorch has no public API for a searcher's full state (distribution, center
optimizer, last population), for setting a ``RunningNorm``'s sums, for swapping a
``VecGymNE``'s policy object, or for seeding its vector env (in the main process and in
Ray actors) per evaluation. plastic-rl needs all four for exact resume and a fast
population forward, so they are done here and nowhere else; ``tests/test_evotorch_internals.py`` fails loudly, naming the
attribute, when an EvoTorch release moves one of them.
"""

from __future__ import annotations

import random
import zlib
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from evotorch.neuroevolution import VecGymNE
from torch import Tensor

#: The EvoTorch versions these accesses were written and tested against.
TESTED_EVOTORCH = "0.6"

#: (object kind, attribute) pairs this module reads or writes; the test checks each one exists.
PRIVATE_ATTRIBUTES = {
    "gaussian searcher (PGPE, SNES, CEM)": ("_distribution", "_optimizer", "_population", "_first_iter", "_steps_count"),
    "ClipUp optimizer": ("_velocity",),
    "torch optimizer wrapper (Adam)": ("_optim",),
    "CMA-ES": ("m", "sigma", "C", "A", "p_c", "p_sigma", "last_ex", "_steps_count"),
    "RunningNorm": ("_sum", "_sum_of_squares", "_count"),
    "VecGymNE": ("_policy", "_get_env", "_evaluate_subbatch", "_make_sync_data_for_actors", "_use_sync_data_from_main"),
    "EvoTorch SyncVectorEnv": ("_SyncVectorEnv__envs",),
}


#: Which population members run the same episodes (``es.Config.shared_episodes``).
SHARED_EPISODES = ("none", "pairs", "generation")


class PopulationVecGymNE(VecGymNE):
    """``VecGymNE`` with three changes: a custom policy object, per-evaluation env seeds, shared episodes.

    - ``policy_factory(net)`` replaces EvoTorch's ``Policy`` (plastic-rl's
      :class:`~plastic_rl.agents.es_policy.PopulationPolicy`: the whole population in one
      batched forward).
    - Before each population is evaluated, the vector env's sub-envs are seeded from
      Python's ``random`` (which the trainer seeds per generation). EvoTorch seeds them
      once, when it builds the env, and then lets their streams run on; a resumed run
      rebuilds the env and would draw other episodes. Seeding per evaluation makes the
      episodes of generation g a function of (seed, g) only, so a resume is bit-identical
      to an unbroken run without pickling every sub-env's generator.
    - ``shared_episodes``: "pairs" gives the two members of each ± pair (rows 2k and
      2k + 1 of a symmetric population) one seed, "generation" gives every member one
      seed (across Ray actors too), so they run the same episodes: the same start noise,
      the same drawn failure (common random numbers); "none" seeds every sub-env apart.
    """

    def __init__(self, *args, policy_factory: Optional[Callable[[torch.nn.Module], Any]] = None,
                 shared_episodes: str = "none", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if policy_factory is not None:
            self._policy = policy_factory(self._policy.wrapped_module)
        if shared_episodes not in SHARED_EPISODES:
            raise ValueError(f"shared_episodes must be one of {', '.join(SHARED_EPISODES)}; got {shared_episodes!r}.")
        self._shared_episodes = shared_episodes
        self._evaluation_seed: Optional[int] = None  # set in Ray actors before each evaluation

    # With Ray actors, the main process sends a seed drawn from its (per-generation seeded)
    # ``random`` with every evaluation; an actor seeds its generators from it and from the
    # solutions it was handed, because Ray's ActorPool gives the population's pieces to
    # whichever actor is idle first. Without this an actor's streams ran on from its start-up
    # seed, so multi-actor runs were neither repeatable nor resumable bit for bit.
    def _make_sync_data_for_actors(self) -> Any:
        data = super()._make_sync_data_for_actors()
        data = {} if data is None or data is NotImplemented else dict(data)
        data["evaluation_seed"] = random.randint(0, 2**32 - 1)
        return data

    def _use_sync_data_from_main(self, received: Dict[str, Any]) -> None:
        received = dict(received)
        self._evaluation_seed = received.pop("evaluation_seed", None)
        super()._use_sync_data_from_main(received)

    def _evaluate_subbatch(self, batch) -> None:
        if self.is_remote and self._evaluation_seed is not None:
            values = np.ascontiguousarray(batch.values.as_subclass(torch.Tensor).detach().cpu().numpy())
            piece_seed = zlib.crc32(values.tobytes(), self._evaluation_seed)
            random.seed(piece_seed)
            np.random.seed(piece_seed)
            torch.manual_seed(piece_seed)  # the rules-only variant draws its weights from torch's generator
        # Draw the seed before _get_env: building the env (first evaluation only, so not after a
        # resume's rebuild in the unbroken run) consumes a draw of its own.
        seed = random.randint(0, 2**32 - 1)
        env = self._get_env(len(batch))
        if self._shared_episodes == "none":
            env.seed(seed)  # consumed by the reset at the start of the evaluation
        else:
            if self._shared_episodes == "generation" and self.is_remote and self._evaluation_seed is not None:
                seed = self._evaluation_seed  # the same in every actor: the whole generation shares its episodes
            seed_shared_episodes(env, seed, group=2 if self._shared_episodes == "pairs" else env.num_envs)
        super()._evaluate_subbatch(batch)


def seed_shared_episodes(env, seed: int, group: int) -> None:
    """Seed sub-env i of EvoTorch's vector env with the (i // group)-th seed drawn from ``seed``.

    Each sub-env is reset with its seed here; the reset at the start of the evaluation then
    draws (start noise, failure) from generators in the same state within a group. The vector
    env's own pending seed is cleared first, or that reset would reseed every sub-env apart.
    """
    env.seed(None)
    sub_envs = env.unwrapped._SyncVectorEnv__envs
    seeds = np.random.RandomState(seed % 2**32).randint(0, 2**32, -(-len(sub_envs) // group))
    for i, sub_env in enumerate(sub_envs):
        sub_env.reset(seed=int(seeds[i // group]))


def searcher_mean_stdev(searcher) -> float:
    """The mean per-parameter standard deviation of the search distribution."""
    if hasattr(searcher, "_distribution"):
        return float(searcher._distribution.sigma.mean())
    return float(torch.as_tensor(searcher.sigma).mean() * searcher.A.mean())  # CMA-ES: σ · scale of C^½


# CMA-ES keeps its whole state in plain attributes; these are the ones a step changes.
_CMAES_STATE = ("m", "sigma", "C", "A", "p_c", "p_sigma", "last_ex")


def searcher_state(searcher, population_seed: Optional[int] = None) -> Dict[str, Any]:
    """Everything a searcher needs to continue, as tensors and plain values.

    Gaussian searchers (PGPE, SNES, CEM, OpenAI-ES): the distribution's
    parameters (mu, sigma), the center optimizer's state (ClipUp velocity or
    Adam moments), and the last evaluated population — EvoTorch updates the
    distribution from it at the *start* of the next step, so without it a
    resumed run would skip one update. CMA-ES: its center, step size,
    covariance and evolution paths.

    The population is popsize × parameters numbers (5.5 MB for 100 members of a
    13,700-parameter policy), too large to commit as the checkpoint of an
    unfinished run. With ``population_seed`` — the seed of torch's global
    generator just before the step that sampled it — only its evaluations and
    that seed are kept: the stored distribution is the very one that sampled it
    (EvoTorch updates at the start of a step, then samples), so
    :func:`restore_searcher_state` draws it again. This is checked here: if the
    redrawn population is not the population bit for bit (a problem with its own
    generator, a step that drew random numbers before sampling), the values are
    kept as before.

    :param searcher: the EvoTorch searcher.
    :param population_seed: the seed given to ``torch.manual_seed`` right before the last ``step()``, or None.
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
            values = population.values.detach()
            state["population"] = {"evals": population.evals.detach().cpu().clone()}
            if population_seed is not None and torch.equal(_redraw_population(searcher, values.shape, population_seed), values):
                state["population"]["seed"] = int(population_seed)
            else:
                state["population"]["values"] = values.cpu().clone()
    else:
        state["cmaes"] = {name: _plain(getattr(searcher, name)) for name in _CMAES_STATE}
    return state


def _redraw_population(searcher, shape, seed: int) -> Tensor:
    """The population the searcher's distribution samples after ``torch.manual_seed(seed)``, leaving torch's generators as they were."""
    dist = searcher._distribution
    devices = [dist.device] if dist.device.type == "cuda" else []
    values = torch.empty(shape, dtype=searcher.problem.dtype, device=dist.device)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        dist.sample(out=values, generator=searcher.problem)  # as EvoTorch's step samples it
    return values


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
            evals = state["population"]["evals"]
            if "values" in state["population"]:
                values = state["population"]["values"]
            else:  # stored as its sampling seed (see searcher_state); the distribution was restored above
                values = _redraw_population(searcher, (evals.shape[0], searcher.problem.solution_length),
                                            state["population"]["seed"])
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


def restore_obs_norm(problem, state: Optional[Dict[str, Any]]) -> None:
    """Rebuild EvoTorch's ``RunningNorm`` from :func:`obs_norm_state`'s sums (it has no public setter for them)."""
    if state is None or not problem.observation_normalization:
        return
    from evotorch.neuroevolution.net.runningnorm import RunningNorm

    norm = RunningNorm(shape=tuple(state["sum"].shape), dtype=state["sum"].dtype)
    norm._sum, norm._sum_of_squares, norm._count = state["sum"].clone(), state["sum_of_squares"].clone(), int(state["count"])
    problem.set_observation_stats(norm)
