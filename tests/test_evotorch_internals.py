"""EvoTorch's private attributes that plastic-rl relies on (agents/evotorch_internals.py) still exist.

When an EvoTorch release renames one, this fails naming the attribute, instead of a resume silently
restoring nothing. EvoTorch is pinned to the tested minor version in pyproject.toml.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch
from evotorch.neuroevolution.net.runningnorm import RunningNorm

from plastic_rl.agents import es, evotorch_internals
from plastic_rl.agents.es_policy import PopulationPolicy

CONFIG = dict(episode_length=5, popsize=4, generations=1, hidden_sizes=(4,), center_eval_episodes=0)


def _missing(obj, names):
    return [name for name in names if not hasattr(obj, name)]


def test_installed_evotorch_is_the_tested_version():
    assert version("evotorch").startswith(evotorch_internals.TESTED_EVOTORCH + "."), (
        f"EvoTorch {version('evotorch')} is installed; agents/evotorch_internals.py was written for "
        f"{evotorch_internals.TESTED_EVOTORCH}.x: check every attribute in PRIVATE_ATTRIBUTES, then update TESTED_EVOTORCH."
    )


@pytest.mark.parametrize("algorithm, kind", [("pgpe", "ClipUp optimizer"), ("openai-es", "torch optimizer wrapper (Adam)"),
                                             ("snes", None), ("cem", None), ("cmaes", "CMA-ES")])
def test_searcher_private_attributes_exist(algorithm, kind):
    config = es.Config(algorithm=algorithm, **CONFIG)
    policy = es.build_policy(config, 105, 8)
    problem = es.make_problem(config, policy)
    searcher = es.make_searcher(config, problem, torch.nn.utils.parameters_to_vector(policy.parameters()))
    searcher.step()
    attributes = evotorch_internals.PRIVATE_ATTRIBUTES
    if algorithm == "cmaes":
        assert _missing(searcher, attributes["CMA-ES"]) == []
    else:
        assert _missing(searcher, attributes["gaussian searcher (PGPE, SNES, CEM)"]) == []
        if kind is not None:
            assert _missing(searcher._optimizer, attributes[kind]) == []
    assert _missing(problem, attributes["VecGymNE"]) == []
    assert isinstance(problem._policy, PopulationPolicy)  # the swap took effect


def test_running_norm_private_attributes_exist():
    norm = RunningNorm(shape=(3,), dtype=torch.float64)
    norm.update(torch.randn(5, 3, dtype=torch.float64))
    assert _missing(norm, evotorch_internals.PRIVATE_ATTRIBUTES["RunningNorm"]) == []


def test_vector_env_sub_envs_attribute_exists():
    # shared_episodes seeds each sub-env of EvoTorch's vector env through this attribute.
    config = es.Config(**CONFIG)
    problem = es.make_problem(config, es.build_policy(config, 105, 8))
    env = problem._get_env(4)
    assert _missing(env.unwrapped, evotorch_internals.PRIVATE_ATTRIBUTES["EvoTorch SyncVectorEnv"]) == []
    assert len(env.unwrapped._SyncVectorEnv__envs) == 4
