"""Built-in configs the CLI can name with ``--preset`` (a YAML file under configs/ can say the same).

Each preset is a plain dict: ``trainer`` picks the trainer module, every other key
is a field of that trainer's ``Config`` dataclass.
"""

from __future__ import annotations

from typing import Any, Dict

# trainer name -> module exposing `Config` and `train(config, run_dir, resume)`.
TRAINERS = {
    "a2c": "plastic_rl.agents.a2c",
    "es": "plastic_rl.agents.es",
}

PRESETS: Dict[str, Dict[str, Any]] = {
    # Backpropamine's maze, trained by full-episode A2C (DESIGN.md §4 defaults live in A2CConfig).
    "maze-a2c": {"trainer": "a2c"},
    # The quadruped with random leg failures, evolved by PGPE + ClipUp (defaults live in ESConfig).
    "ant-es": {"trainer": "es"},
}

# What `make demo` trains: a plastic maze run that visibly learns in about two minutes
# on one core. A 9x9 maze with 100-step episodes and a 10x larger step than the
# paper's (Adam eps 1e-4 as in Backpropamine's code keeps that step stable): the
# reward per episode rises from chance (about 7.6) to about 29 in 300 iterations.
DEMO: Dict[str, Any] = {
    "trainer": "a2c", "maze_size": 9, "episode_length": 100,
    "learning_rate": 1e-3, "adam_eps": 1e-4, "iterations": 300,
}
