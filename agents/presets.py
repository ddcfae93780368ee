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

# What `make demo` trains: a short plastic maze run (a few minutes on 2 cores).
DEMO: Dict[str, Any] = {"trainer": "a2c", "iterations": 300}
