"""Named task sequences for continual learning, and user sequences from YAML.

A task is a registered gymnasium env id plus keyword arguments; a sequence is a
list of tasks learned one after another by one policy (the policy is never told
which task it is in). The built-in sequences (DESIGN.md §3):

- ``ant-legs``: the quadruped with a different leg disabled in each of 4 tasks
  (``plastic_rl/AntLegFailure-v0``).
- ``ant-directions``: the quadruped rewarded for running along +x, −x, +y, −y
  (``plastic_rl/AntDirection-v0``): opposite directions interfere strongly.
- ``maze-layouts``: Backpropamine's 9×9 maze (100-step episodes) with four wall
  layouts in turn: pillars, open, corridors, four rooms.
- ``maze-actions``: the same maze (pillars) with the four actions remapped in each
  task (identity, reversed, rotated, swapped pairs): what one task learned about
  which action moves where is wrong in the next, unless it is inferred within the episode.

A YAML sequence looks like::

    name: my-sequence            # optional (default: the file name)
    description: two mazes       # optional
    tasks:
      - name: small              # optional (default: task-0, task-1, ...)
        env_id: plastic_rl/Maze-v0
        kwargs: {size: 7, episode_length: 50}
      - env_id: plastic_rl/Maze-v0
        kwargs: {size: 7, episode_length: 50, layout: open}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import gymnasium as gym
import yaml

from plastic_rl.envs.quadruped import LEG_NAMES

__all__ = ["Task", "TaskSequence", "SEQUENCES", "MAZE_LAYOUTS", "ACTION_MAPS", "get_sequence", "load_sequence_yaml", "sequence_from_dict", "make_env"]


@dataclass(frozen=True)
class Task:
    """One task: a registered env id and the keyword arguments of ``gym.make``."""

    name: str
    env_id: str
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        """Plain, YAML- and checkpoint-safe form."""
        return {"name": self.name, "env_id": self.env_id, "kwargs": _plain(self.kwargs)}


@dataclass(frozen=True)
class TaskSequence:
    """A named list of tasks learned one after another."""

    name: str
    tasks: Tuple[Task, ...]
    description: str = ""

    def as_dict(self) -> Dict[str, Any]:
        """Plain form, the same shape as a YAML sequence file."""
        return {"name": self.name, "description": self.description, "tasks": [t.as_dict() for t in self.tasks]}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


#: 9×9 wall layouts of the ``maze-layouts`` sequence (``#`` wall, ``.`` open; the agent starts at the centre).
MAZE_LAYOUTS: Dict[str, Any] = {
    "pillars": "pillars",
    "open": "open",
    "corridors": [
        "#########",
        "#.......#",
        "######..#",
        "#.......#",
        "#.......#",
        "#.......#",
        "#..######",
        "#.......#",
        "#########",
    ],
    "rooms": [
        "#########",
        "#...#...#",
        "#...#...#",
        "#.......#",
        "###...###",
        "#.......#",
        "#...#...#",
        "#...#...#",
        "#########",
    ],
}


#: Action remappings of the ``maze-actions`` sequence (action a moves as action map[a] does; 0 up, 1 down, 2 left, 3 right).
ACTION_MAPS: Dict[str, List[int]] = {
    "identity": [0, 1, 2, 3],
    "reversed": [1, 0, 3, 2],
    "rotated": [2, 3, 1, 0],
    "swapped": [3, 2, 0, 1],
}


def _builtin_sequences() -> Dict[str, TaskSequence]:
    maze = {"size": 9, "episode_length": 100}
    return {
        "ant-legs": TaskSequence(
            "ant-legs",
            tuple(Task(f"{leg}-disabled", "plastic_rl/AntLegFailure-v0", {"failed_legs": [leg]}) for leg in LEG_NAMES),
            "the quadruped with one leg disabled, a different leg in each task",
        ),
        "ant-directions": TaskSequence(
            "ant-directions",
            tuple(Task(f"run{d}", "plastic_rl/AntDirection-v0", {"direction": d}) for d in ("+x", "-x", "+y", "-y")),
            "the quadruped rewarded for running along +x, -x, +y, -y",
        ),
        "maze-layouts": TaskSequence(
            "maze-layouts",
            tuple(Task(name, "plastic_rl/Maze-v0", {**maze, "layout": layout}) for name, layout in MAZE_LAYOUTS.items()),
            "Backpropamine's maze (9x9, 100-step episodes) with four wall layouts in turn",
        ),
        "maze-actions": TaskSequence(
            "maze-actions",
            tuple(Task(name, "plastic_rl/Maze-v0", {**maze, "action_map": m}) for name, m in ACTION_MAPS.items()),
            "Backpropamine's maze (9x9, 100-step episodes) with the actions remapped in each task",
        ),
    }


#: The built-in sequences by name.
SEQUENCES: Dict[str, TaskSequence] = _builtin_sequences()


def sequence_from_dict(data: Mapping[str, Any], source: str = "sequence", default_name: str = "custom") -> TaskSequence:
    """Build and check a sequence from a mapping (the YAML form).

    :param data: ``{"name": ..., "description": ..., "tasks": [{"name", "env_id", "kwargs"}, ...]}``.
    :param source: where ``data`` came from, for error messages.
    :param default_name: the name when ``data`` has none.
    :raises ValueError: one sentence naming the field that is wrong.
    """
    import plastic_rl.envs  # noqa: F401  (registers plastic_rl/* before the ids are checked)

    if not isinstance(data, Mapping):
        raise ValueError(f"{source} must be a mapping with a 'tasks' list; got {type(data).__name__}.")
    unknown = sorted(set(data) - {"name", "description", "tasks"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} in {source}; allowed fields are: description, name, tasks.")
    tasks_data = data.get("tasks")
    if not isinstance(tasks_data, list) or not tasks_data:
        raise ValueError(f"{source} field 'tasks' must be a non-empty list of tasks (env_id and kwargs each).")
    tasks: List[Task] = []
    for k, item in enumerate(tasks_data):
        where = f"{source} tasks[{k}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a mapping with 'env_id' (and optionally 'name', 'kwargs'); got {item!r}.")
        extra = sorted(set(item) - {"name", "env_id", "kwargs"})
        if extra:
            raise ValueError(f"unknown field {extra[0]!r} in {where}; allowed fields are: env_id, kwargs, name.")
        env_id = item.get("env_id")
        if not isinstance(env_id, str):
            raise ValueError(f"{where} field 'env_id' must be a registered gymnasium env id (a string); got {env_id!r}.")
        try:
            gym.spec(env_id)
        except gym.error.Error:
            raise ValueError(f"{where} field 'env_id' must be a registered gymnasium env id; {env_id!r} is not registered.") from None
        kwargs = item.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{where} field 'kwargs' must be a mapping of keyword: value; got {kwargs!r}.")
        name = item.get("name", f"task-{k}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where} field 'name' must be a non-empty string; got {name!r}.")
        tasks.append(Task(name, env_id, dict(kwargs)))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"{source} task names must be unique; got {names}.")
    name = data.get("name", default_name)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise ValueError(f"{source} fields 'name' and 'description' must be strings.")
    return TaskSequence(name, tuple(tasks), description)


def load_sequence_yaml(path: str | Path) -> TaskSequence:
    """Read a sequence from a YAML file (format in the module docstring).

    :param path: the YAML file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sequence file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"sequence file {str(path)!r} is not valid YAML ({err.__class__.__name__}).") from None
    return sequence_from_dict(data, source=f"sequence file {str(path)!r}", default_name=path.stem)


def get_sequence(spec: str) -> TaskSequence:
    """A built-in sequence by name, or a YAML sequence file by path.

    :param spec: one of :data:`SEQUENCES`, or a path to a ``.yaml``/``.yml`` file.
    """
    if spec in SEQUENCES:
        return SEQUENCES[spec]
    if spec.endswith((".yaml", ".yml")) or Path(spec).is_file():
        return load_sequence_yaml(spec)
    raise ValueError(f"sequence must be one of {', '.join(sorted(SEQUENCES))} or a YAML sequence file; got {spec!r}.")


def make_env(task: Task, **overrides: Any) -> gym.Env:
    """``gym.make`` of ``task`` (its kwargs, then ``overrides``).

    :param task: the task.
    :param overrides: keyword arguments added to (or replacing) the task's.
    """
    import plastic_rl.envs  # noqa: F401

    return gym.make(task.env_id, **{**task.kwargs, **overrides})
