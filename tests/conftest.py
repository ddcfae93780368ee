"""Shared test helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """A loader of ``scripts/NAME.py`` as a module (the scripts folder is not a package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # a dataclass defined in the script looks its module up there
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def tiny_es_run(tmp_path) -> Callable[..., Path]:
    """A maker of tiny quadruped ES runs in ``tmp_path``: ``tiny_es_run(name, **es.Config overrides)`` -> the run folder."""
    from plastic_rl.agents import es

    def make(name: str, **overrides) -> Path:
        fields = dict(env_kwargs={"failed_legs": [], "include_cfrc_ext_in_observation": False}, episode_length=10,
                      popsize=2, generations=1, hidden_sizes=(4,), stdev_init=0.05, center_eval_episodes=0, seed=2)
        fields.update(overrides)
        run_dir = tmp_path / name
        es.train(es.Config(**fields), run_dir)
        return run_dir

    return make
