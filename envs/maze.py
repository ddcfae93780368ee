"""Backpropamine's grid maze: a single gymnasium env and its batched twin.

The maze is a ``size x size`` grid with border walls and pillars wherever the
row and the column are both even. Every episode hides a reward cell; the agent
starts at the centre, collects ``reward_value`` each time it steps on the
reward cell and is then teleported to a random open cell other than the
reward cell. Since the agent only sees its 3x3 neighbourhood, it must learn
within the episode where the reward is: the task that plastic networks solve.

:class:`MazeEnv` is the single env (``plastic_rl/Maze-v0``); :class:`MazeVectorEnv`
steps N mazes as torch tensors in one call. For the same seeds and actions
the two produce exactly the same trajectories, because every maze draws its
random cells from its own counter-based stream (:mod:`plastic_rl.envs._rng`)
and both classes share one layout builder and one set of lookup tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from plastic_rl.envs import _rng

__all__ = ["MazeEnv", "MazeVectorEnv", "OBS_SIZE", "ACTION_DELTAS", "LAYOUTS", "layout_grid"]

#: Length of the observation vector: 3x3 view, one-hot previous action, previous reward, time.
OBS_SIZE = 15
#: (row, col) displacement of each action: 0 up, 1 down, 2 left, 3 right.
ACTION_DELTAS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
_NUM_ACTIONS = len(ACTION_DELTAS)
# Row of the one-hot table used for "no previous action" (the first step of an episode).
_NO_ACTION = _NUM_ACTIONS
_CELL_PX = 8
_RENDER_FPS = 10
# Colours of the rgb_array frames.
_FLOOR_RGB = (235, 235, 235)
_WALL_RGB = (40, 40, 48)
_AGENT_RGB = (30, 110, 230)
_REWARD_RGB = (240, 170, 20)


# --------------------------------------------------------------------------- arguments


def _is_int(value: Any) -> bool:
    """True for Python or numpy integers, but not for ``bool``."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    """True for finite Python or numpy real numbers, but not for ``bool``."""
    return (
        isinstance(value, Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
    )


def _check_maze_args(
    size: Any, episode_length: Any, reward_value: Any, wall_penalty: Any, render_mode: Any
) -> tuple[int, int, float, float]:
    """Validate the constructor arguments shared by both envs.

    :param size: side of the square grid, walls included.
    :param episode_length: number of steps before truncation.
    :param reward_value: reward for stepping on the reward cell.
    :param wall_penalty: penalty (subtracted) for bumping into a wall.
    :param render_mode: ``None`` or ``"rgb_array"``.
    :return: the normalised ``(size, episode_length, reward_value, wall_penalty)``.
    :raises ValueError: naming the first bad argument and its allowed values.
    """
    if not _is_int(size) or size < 5 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 5 (e.g. 5, 7, 9, 11), got {size!r}.")
    if not _is_int(episode_length) or episode_length < 1:
        raise ValueError(f"episode_length must be an integer >= 1, got {episode_length!r}.")
    if not _is_real(reward_value):
        raise ValueError(f"reward_value must be a finite number, got {reward_value!r}.")
    if not _is_real(wall_penalty) or wall_penalty < 0:
        raise ValueError(f"wall_penalty must be a finite number >= 0, got {wall_penalty!r}.")
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
    return int(size), int(episode_length), float(reward_value), float(wall_penalty)


# --------------------------------------------------------------------------- layout

#: Named wall layouts: "pillars" (Backpropamine's: border walls and a pillar wherever row and
#: column are both even) and "open" (border walls only). A layout may also be given as ``size``
#: strings of ``size`` characters, ``#`` for a wall and ``.`` for an open cell.
LAYOUTS = ("pillars", "open")


def layout_grid(size: int, layout: str | Sequence[str] | None = None) -> np.ndarray:
    """The ``(size, size)`` bool wall map (True = wall) of a named or drawn layout, checked.

    :param size: side of the grid, walls included (already validated).
    :param layout: ``None`` or ``"pillars"`` (the default maze), ``"open"``, or ``size`` strings of
        ``#`` (wall) and ``.`` (open). The border must be walls, the centre open, and every open cell
        reachable from the centre.
    :raises ValueError: naming what is wrong with ``layout``.
    """
    rows, cols = np.indices((size, size))
    border = (rows == 0) | (cols == 0) | (rows == size - 1) | (cols == size - 1)
    c = size // 2
    if layout is None or layout == "pillars":
        grid = border | ((rows % 2 == 0) & (cols % 2 == 0))
        # For sizes 5, 9, 13, ... the centre falls on a pillar; keep it open so the
        # agent can start there (Backpropamine's own code does the same).
        grid[c, c] = False
        return grid
    if layout == "open":
        return border.copy()
    if isinstance(layout, str) or not isinstance(layout, Sequence):
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))} or a list of {size} strings of '#' and '.'; got {layout!r}.")
    lines = list(layout)
    if len(lines) != size or any(not isinstance(line, str) or len(line) != size or set(line) - {"#", "."} for line in lines):
        raise ValueError(f"layout must be {size} strings of {size} characters, each '#' (wall) or '.' (open), for size {size}; got {lines!r}.")
    grid = np.array([[ch == "#" for ch in line] for line in lines], dtype=bool)
    if not grid[border].all():
        raise ValueError("layout must have walls ('#') all around its border.")
    if grid[c, c]:
        raise ValueError(f"layout must leave the centre cell ({c}, {c}) open: the agent starts there.")
    seen, frontier = {(c, c)}, [(c, c)]
    while frontier:
        r, q = frontier.pop()
        for dr, dq in ACTION_DELTAS:
            nxt = (r + dr, q + dq)
            if not grid[nxt] and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    if len(seen) != int((~grid).sum()):
        raise ValueError("layout must connect every open cell to the centre; some open cells are walled off.")
    if len(seen) < 3:
        raise ValueError("layout must have at least 3 open cells (the start, the reward and one more).")
    return grid


def _check_action_map(action_map: Sequence[int] | None) -> tuple[int, ...]:
    """The validated action map: which move (0 up, 1 down, 2 left, 3 right) each action makes."""
    if action_map is None:
        return tuple(range(_NUM_ACTIONS))
    if isinstance(action_map, str) or not isinstance(action_map, Sequence) or sorted(
        int(a) if _is_int(a) else -1 for a in action_map
    ) != list(range(_NUM_ACTIONS)):
        raise ValueError(f"action_map must be a permutation of [0, 1, 2, 3] (the move each action makes); got {action_map!r}.")
    return tuple(int(a) for a in action_map)


@dataclass(frozen=True)
class _MazeTables:
    """Everything about a maze that does not change during an episode.

    Cells are addressed by their flat index ``row * size + col``. Both envs
    read their observations and rewards from these tables, which is what makes
    them agree bit for bit.
    """

    size: int
    episode_length: int
    grid: np.ndarray  # (size, size) bool, True = wall
    wall_flat: np.ndarray  # (size*size,) bool
    open_cells: np.ndarray  # (n_open,) int64, flat indices in row-major order
    centre: int  # flat index of the start cell
    centre_open_idx: int  # position of the centre in open_cells
    neighbourhood: np.ndarray  # (size*size, 9) float32, 3x3 view (1 = wall) around each cell
    one_hot: np.ndarray  # (5, 4) float32, last row all zeros = "no previous action"
    time: np.ndarray  # (episode_length + 1,) float32, step / episode_length
    move: np.ndarray  # (4,) int64, flat displacement of each action
    reward_hit: np.float32  # reward for reaching the reward cell
    reward_wall: np.float32  # reward for bumping into a wall

    @property
    def num_choices(self) -> int:
        """Number of candidate cells for every random draw.

        A new reward cell excludes the centre and a teleport excludes the
        reward cell, so both choose among ``n_open - 1`` cells.
        """
        return len(self.open_cells) - 1


def _build_tables(
    size: int, episode_length: int, reward_value: float, wall_penalty: float,
    layout: str | Sequence[str] | None = None,
    action_map: Sequence[int] | None = None,
) -> _MazeTables:
    """Build the lookup tables of a validated maze configuration.

    :param size: odd side length >= 5.
    :param episode_length: steps per episode.
    :param reward_value: reward for reaching the reward cell.
    :param wall_penalty: penalty for bumping into a wall.
    :param layout: the wall layout (see :func:`layout_grid`).
    :param action_map: action ``a`` makes move ``action_map[a]`` (default: the identity).
    :return: the tables.
    """
    grid = layout_grid(size, layout)
    c = size // 2
    wall_flat = grid.reshape(-1)
    open_cells = np.flatnonzero(~wall_flat).astype(np.int64)
    centre = c * size + c
    # Pad by one wall so that the 3x3 view of border-adjacent cells is defined;
    # only open cells are ever looked up, but the table covers all cells.
    padded = np.pad(grid, 1, constant_values=True)
    neighbourhood = np.stack(
        [padded[dr : dr + size, dc : dc + size].reshape(-1) for dr in range(3) for dc in range(3)],
        axis=1,
    ).astype(np.float32)
    one_hot = np.zeros((_NUM_ACTIONS + 1, _NUM_ACTIONS), dtype=np.float32)
    one_hot[np.arange(_NUM_ACTIONS), np.arange(_NUM_ACTIONS)] = 1.0
    # float32 division here, then table look-ups in both envs: no chance of
    # numpy and torch rounding step / episode_length differently.
    time = np.arange(episode_length + 1, dtype=np.float32) / np.float32(episode_length)
    move = np.array([ACTION_DELTAS[k][0] * size + ACTION_DELTAS[k][1] for k in _check_action_map(action_map)], dtype=np.int64)
    for arr in (grid, open_cells, neighbourhood, one_hot, time, move):
        arr.setflags(write=False)
    return _MazeTables(
        size=size,
        episode_length=episode_length,
        grid=grid,
        wall_flat=wall_flat,
        open_cells=open_cells,
        centre=centre,
        centre_open_idx=int(np.searchsorted(open_cells, centre)),
        neighbourhood=neighbourhood,
        one_hot=one_hot,
        time=time,
        move=move,
        reward_hit=np.float32(reward_value),
        # 0.0 - p rather than -p, so that a zero penalty gives +0.0 and not -0.0.
        reward_wall=np.float32(0.0 - wall_penalty),
    )


def _observation_space(tables: _MazeTables) -> spaces.Box:
    """The 15-value observation space of one maze."""
    low = np.zeros(OBS_SIZE, dtype=np.float32)
    high = np.ones(OBS_SIZE, dtype=np.float32)
    low[13] = min(0.0, tables.reward_hit, tables.reward_wall)
    high[13] = max(0.0, tables.reward_hit, tables.reward_wall)
    return spaces.Box(low=low, high=high, dtype=np.float32)


def _render_frame(grid: np.ndarray, agent: tuple[int, int], reward: tuple[int, int]) -> np.ndarray:
    """Draw one maze as an RGB image, ``_CELL_PX`` pixels per cell.

    :param grid: (size, size) bool wall map.
    :param agent: (row, col) of the agent.
    :param reward: (row, col) of the reward cell.
    :return: uint8 array of shape (size * 8, size * 8, 3).
    """
    cells = np.empty(grid.shape + (3,), dtype=np.uint8)
    cells[...] = _FLOOR_RGB
    cells[grid] = _WALL_RGB
    cells[reward] = _REWARD_RGB
    cells[agent] = _AGENT_RGB
    return np.repeat(np.repeat(cells, _CELL_PX, axis=0), _CELL_PX, axis=1)


# --------------------------------------------------------------------------- single env


class MazeEnv(gym.Env[np.ndarray, np.int64]):
    """Backpropamine's maze, one episode at a time (``plastic_rl/Maze-v0``).

    Observation (float32, 15 values): the 3x3 neighbourhood of the agent,
    row-major, 1 = wall (9); the previous action one-hot, zeros after reset
    (4); the previous reward (1); steps taken / ``episode_length`` (1).
    Actions: 0 up, 1 down, 2 left, 3 right. The episode is truncated after
    ``episode_length`` steps and never terminates.

    For debugging and oracles the env exposes :attr:`grid`, :attr:`agent_pos`
    and :attr:`reward_pos`.

    :param size: side of the square grid, walls included; odd and >= 5.
    :param episode_length: number of steps before truncation; >= 1.
    :param reward_value: reward for stepping on the reward cell.
    :param wall_penalty: subtracted from the reward when the agent bumps into
        a wall (and stays where it is); >= 0.
    :param render_mode: ``None`` or ``"rgb_array"``.
    :param layout: the walls: ``None``/``"pillars"`` (Backpropamine's maze), ``"open"``, or
        ``size`` strings of ``#``/``.`` (see :func:`layout_grid`); the task sequences vary it.
    :param action_map: a permutation of ``[0, 1, 2, 3]``: action ``a`` moves as action
        ``action_map[a]`` does by default (the observation's previous action stays ``a``).
        The ``maze-actions`` task sequence remaps the actions from task to task.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": _RENDER_FPS}

    def __init__(
        self,
        size: int = 11,
        episode_length: int = 200,
        reward_value: float = 10.0,
        wall_penalty: float = 0.0,
        render_mode: str | None = None,
        layout: str | Sequence[str] | None = None,
        action_map: Sequence[int] | None = None,
    ) -> None:
        size, episode_length, reward_value, wall_penalty = _check_maze_args(
            size, episode_length, reward_value, wall_penalty, render_mode
        )
        self.size = size
        self.episode_length = episode_length
        self.reward_value = reward_value
        self.wall_penalty = wall_penalty
        self.render_mode = render_mode
        self._t = _build_tables(size, episode_length, reward_value, wall_penalty, layout, action_map)
        # Python lists: indexing them with Python ints is the fastest path for one env.
        self._open = self._t.open_cells.tolist()
        self._wall = self._t.wall_flat.tolist()
        self._move = self._t.move.tolist()
        self.observation_space = _observation_space(self._t)
        self.action_space = spaces.Discrete(_NUM_ACTIONS)
        # Stream state: keys from the seed, and the number of draws made so far.
        self._key1: int | None = None
        self._key2 = 0
        self._counter = 0
        # Episode state; _pos is None until the first reset.
        self._pos: int | None = None
        self._reward_idx = 0  # index of the reward cell in open cells
        self._step = 0
        self._prev_action = _NO_ACTION
        self._prev_reward = np.float32(0.0)

    # -- debugging views ---------------------------------------------------

    @property
    def grid(self) -> np.ndarray:
        """(size, size) bool array, True = wall (read-only)."""
        return self._t.grid

    @property
    def agent_pos(self) -> tuple[int, int]:
        """(row, col) of the agent."""
        self._require_reset()
        return divmod(self._pos, self.size)  # type: ignore[arg-type]

    @property
    def reward_pos(self) -> tuple[int, int]:
        """(row, col) of this episode's reward cell."""
        self._require_reset()
        return divmod(self._open[self._reward_idx], self.size)

    # -- gymnasium API -------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: agent at the centre, a new reward cell.

        :param seed: re-seeds this env's stream; ``None`` continues it (or, on
            a never-seeded env, seeds it from OS entropy).
        :param options: unused.
        :return: the first observation and an empty info dict.
        """
        super().reset(seed=seed)  # seeds self.np_random, as gymnasium expects
        if seed is not None:
            self._seed_stream(seed)
        elif self._key1 is None:
            self._seed_stream(_rng.entropy_seed())
        self._reward_idx = self._draw_cell(self._t.centre_open_idx)
        self._pos = self._t.centre
        self._step = 0
        self._prev_action = _NO_ACTION
        self._prev_reward = np.float32(0.0)
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move one cell (or bump into a wall) and collect any reward.

        :param action: 0 up, 1 down, 2 left, 3 right.
        :return: observation, reward, terminated (always False), truncated, info.
        """
        self._require_reset()
        if self._step >= self.episode_length:
            raise RuntimeError("The episode is over (truncated); call reset() before step().")
        a = int(action)
        if a != action or not 0 <= a < _NUM_ACTIONS:
            raise ValueError(f"action must be an integer in [0, {_NUM_ACTIONS}), got {action!r}.")
        target = self._pos + self._move[a]  # type: ignore[operator]
        if self._wall[target]:
            reward = self._t.reward_wall  # the agent stays put
        elif target == self._open[self._reward_idx]:
            reward = self._t.reward_hit
            self._pos = self._open[self._draw_cell(self._reward_idx)]
        else:
            reward = np.float32(0.0)
            self._pos = target
        self._step += 1
        self._prev_action = a
        self._prev_reward = reward
        truncated = self._step >= self.episode_length
        return self._observation(), float(reward), False, truncated, {}

    def render(self) -> np.ndarray | None:
        """Return an RGB frame (``render_mode="rgb_array"``), else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        return _render_frame(self._t.grid, self.agent_pos, self.reward_pos)

    # -- internals -------------------------------------------------------------

    def _require_reset(self) -> None:
        if self._pos is None:
            raise RuntimeError("Call reset() before using the maze.")

    def _seed_stream(self, seed: int) -> None:
        self._key1, self._key2 = _rng.stream_keys(*_rng.split_seed(int(seed)))
        self._counter = 0

    def _draw_cell(self, excluded_idx: int) -> int:
        """Draw an index into open cells, uniform over all but ``excluded_idx``."""
        u = _rng.draw_u32(self._key1, self._key2, self._counter)
        self._counter += 1
        k = _rng.below(u, self._t.num_choices)
        return k + (k >= excluded_idx)  # skip over the excluded cell

    def _observation(self) -> np.ndarray:
        obs = np.empty(OBS_SIZE, dtype=np.float32)
        obs[:9] = self._t.neighbourhood[self._pos]
        obs[9:13] = self._t.one_hot[self._prev_action]
        obs[13] = self._prev_reward
        obs[14] = self._t.time[self._step]
        return obs


# --------------------------------------------------------------------------- batched twin


class MazeVectorEnv(VectorEnv):
    """N mazes stepped together as torch tensors, with no Python loop over envs.

    For the same seed and actions it returns exactly what
    ``gymnasium.make_vec("plastic_rl/Maze-v0", N, vectorization_mode="sync")``
    returns: env ``i`` is seeded with ``seed + i`` and draws from the same
    counter-based stream as a single :class:`MazeEnv`, and autoreset follows
    gymnasium's default ``AutoresetMode.NEXT_STEP`` (the step after a
    truncation resets that env, ignores its action and returns reward 0).

    By default ``reset``/``step`` take and return numpy arrays like any
    gymnasium vector env (observations float32 ``(N, 15)``, rewards float64
    ``(N,)`` as in ``SyncVectorEnv``, terminations/truncations bool ``(N,)``).
    With ``as_tensor=True`` they return torch tensors on ``device``
    (observations and rewards float32) and accept action tensors, which saves
    the copies in a torch trainer. Infos are always an empty dict.

    ``reset(options={"reset_mask": mask})`` resets only the masked envs, as in
    ``SyncVectorEnv``.

    :param num_envs: number of mazes, >= 1.
    :param size: side of the square grid, walls included; odd and >= 5.
    :param episode_length: number of steps before truncation; >= 1.
    :param reward_value: reward for stepping on the reward cell.
    :param wall_penalty: subtracted from the reward when an agent bumps into a
        wall; >= 0.
    :param render_mode: ``None`` or ``"rgb_array"`` (``render()`` then returns
        a tuple of N frames).
    :param device: torch device that holds the state and computes the steps.
    :param as_tensor: return torch tensors instead of numpy arrays.
    :param layout: the walls, as for :class:`MazeEnv` (the same for all N mazes).
    :param action_map: the action remapping, as for :class:`MazeEnv`.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": _RENDER_FPS,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        size: int = 11,
        episode_length: int = 200,
        reward_value: float = 10.0,
        wall_penalty: float = 0.0,
        render_mode: str | None = None,
        device: str | torch.device = "cpu",
        as_tensor: bool = False,
        layout: str | Sequence[str] | None = None,
        action_map: Sequence[int] | None = None,
    ) -> None:
        if not _is_int(num_envs) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}.")
        size, episode_length, reward_value, wall_penalty = _check_maze_args(
            size, episode_length, reward_value, wall_penalty, render_mode
        )
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}."
            ) from err
        self.num_envs = int(num_envs)
        self.size = size
        self.episode_length = episode_length
        self.reward_value = reward_value
        self.wall_penalty = wall_penalty
        self.render_mode = render_mode
        self.as_tensor = bool(as_tensor)
        self._t = t = _build_tables(size, episode_length, reward_value, wall_penalty, layout, action_map)

        self.single_observation_space = _observation_space(t)
        self.single_action_space = spaces.Discrete(_NUM_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        dev, n = self.device, self.num_envs

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.array(a), device=dev)

        # Device copies of the shared tables.
        self._wall = tensor(t.wall_flat)
        self._open = tensor(t.open_cells)
        self._neigh = tensor(t.neighbourhood)
        self._one_hot = tensor(t.one_hot)
        self._time = tensor(t.time)
        self._move = tensor(t.move)
        self._centre = torch.tensor(t.centre, device=dev)
        self._centre_idx = torch.tensor(t.centre_open_idx, device=dev)
        self._no_action = torch.tensor(_NO_ACTION, device=dev)
        self._zero_i = torch.tensor(0, device=dev)
        self._r_hit = torch.tensor(t.reward_hit, device=dev)
        self._r_wall = torch.tensor(t.reward_wall, device=dev)
        self._r_zero = torch.tensor(0.0, device=dev)

        # Per-env state, batch in dimension 0. Stream keys and draw counters:
        self._key1 = torch.zeros(n, dtype=torch.int64, device=dev)
        self._key2 = torch.zeros(n, dtype=torch.int64, device=dev)
        self._counter = torch.zeros(n, dtype=torch.int64, device=dev)
        self._seeded = np.zeros(n, dtype=bool)  # host-side: only read at reset
        # Episode state (cells are flat indices; reward_idx indexes open cells):
        self._pos = self._centre.repeat(n)
        self._reward_idx = torch.zeros(n, dtype=torch.int64, device=dev)
        self._reward_pos = torch.zeros(n, dtype=torch.int64, device=dev)
        self._step = torch.zeros(n, dtype=torch.int64, device=dev)
        self._prev_action = self._no_action.repeat(n)
        self._prev_reward = torch.zeros(n, dtype=torch.float32, device=dev)
        self._autoreset = torch.zeros(n, dtype=torch.bool, device=dev)
        self._has_reset = False

    # -- debugging views ---------------------------------------------------

    @property
    def grid(self) -> np.ndarray:
        """(size, size) bool array, True = wall (read-only; the same for all envs)."""
        return self._t.grid

    @property
    def agent_pos(self) -> torch.Tensor:
        """(N, 2) int64 tensor of the agents' (row, col)."""
        return torch.stack((self._pos // self.size, self._pos % self.size), dim=1)

    @property
    def reward_pos(self) -> torch.Tensor:
        """(N, 2) int64 tensor of the reward cells' (row, col)."""
        return torch.stack((self._reward_pos // self.size, self._reward_pos % self.size), dim=1)

    # -- gymnasium API -------------------------------------------------------

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray | torch.Tensor, dict[str, Any]]:
        """Start new episodes in all envs (or in those of ``options["reset_mask"]``).

        :param seed: ``int`` s seeds env i with s + i; a list gives one seed (or
            ``None``) per env; ``None`` continues each env's stream (an env
            never seeded is seeded from OS entropy).
        :param options: ``{"reset_mask": bool array (N,)}`` resets only those envs.
        :return: observations (N, 15) and an empty info dict.
        """
        mask = self._reset_mask(options)
        seeds = self._seed_list(seed)
        if _is_int(seed):
            super().reset(seed=int(seed))  # keeps VectorEnv.np_random in step with gymnasium
        self._reseed(seeds, mask)

        m = torch.as_tensor(mask, device=self.device)
        u = _rng.draw_u32(self._key1, self._key2, self._counter)
        k = _rng.below(u, self._t.num_choices)
        new_idx = k + (k >= self._centre_idx)  # any open cell but the centre
        self._reward_idx = torch.where(m, new_idx, self._reward_idx)
        self._reward_pos = self._open[self._reward_idx]
        self._counter = self._counter + m
        self._pos = torch.where(m, self._centre, self._pos)
        self._step = torch.where(m, self._zero_i, self._step)
        self._prev_action = torch.where(m, self._no_action, self._prev_action)
        self._prev_reward = torch.where(m, self._r_zero, self._prev_reward)
        self._autoreset = self._autoreset & ~m
        self._has_reset = True
        obs = self._observation()
        return (obs if self.as_tensor else self._to_numpy(obs)), {}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step every maze once; envs truncated at the last step reset instead.

        :param actions: (N,) integer actions (numpy array, sequence or tensor).
        :return: observations, rewards, terminations (always False),
            truncations, and an empty info dict.
        """
        if not self._has_reset:
            raise RuntimeError("Call reset() before step().")
        a = self._actions(actions)
        resetting = self._autoreset  # NEXT_STEP: these envs reset now, ignoring a
        playing = ~resetting

        target = self._pos + self._move[a]
        wall = self._wall[target]
        moved = torch.where(wall, self._pos, target)
        hit = (moved == self._reward_pos) & playing

        # One draw per env per step at most: a teleport (hit) or a new reward
        # cell (reset). Drawing for every env and keeping what is needed is
        # cheaper than gathering the few envs that need one.
        u = _rng.draw_u32(self._key1, self._key2, self._counter)
        k = _rng.below(u, self._t.num_choices)
        excluded = torch.where(resetting, self._centre_idx, self._reward_idx)
        cell_idx = k + (k >= excluded)
        cell = self._open[cell_idx]
        self._counter = self._counter + (hit | resetting)

        self._pos = torch.where(resetting, self._centre, torch.where(hit, cell, moved))
        self._reward_idx = torch.where(resetting, cell_idx, self._reward_idx)
        self._reward_pos = torch.where(resetting, cell, self._reward_pos)
        reward = torch.where(
            hit, self._r_hit, torch.where(wall & playing, self._r_wall, self._r_zero)
        )
        self._step = torch.where(resetting, self._zero_i, self._step + 1)
        self._prev_action = torch.where(resetting, self._no_action, a)
        self._prev_reward = reward
        truncated = self._step >= self.episode_length
        terminated = torch.zeros_like(truncated)
        self._autoreset = truncated
        obs = self._observation()
        if self.as_tensor:
            return obs, reward, terminated, truncated, {}
        return (
            self._to_numpy(obs),
            self._to_numpy(reward).astype(np.float64),
            self._to_numpy(terminated),
            self._to_numpy(truncated),
            {},
        )

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Return one RGB frame per env (``render_mode="rgb_array"``), else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        agents = self.agent_pos.tolist()
        rewards = self.reward_pos.tolist()
        return tuple(
            _render_frame(self._t.grid, tuple(p), tuple(r)) for p, r in zip(agents, rewards)
        )

    # -- internals -------------------------------------------------------------

    def _observation(self) -> torch.Tensor:
        return torch.cat(
            (
                self._neigh[self._pos],
                self._one_hot[self._prev_action],
                self._prev_reward.unsqueeze(1),
                self._time[self._step].unsqueeze(1),
            ),
            dim=1,
        )

    @staticmethod
    def _to_numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    def _actions(self, actions: Any) -> torch.Tensor:
        """Validate actions and move them to ``device`` as int64."""
        a = torch.as_tensor(actions, device=self.device)
        if a.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},), got {tuple(a.shape)}."
            )
        if a.is_floating_point() or a.is_complex() or a.dtype == torch.bool:
            raise ValueError(f"actions must be integers in [0, {_NUM_ACTIONS}), got dtype {a.dtype}.")
        a = a.to(torch.int64)
        if bool(((a < 0) | (a >= _NUM_ACTIONS)).any()):
            raise ValueError(f"actions must be integers in [0, {_NUM_ACTIONS}).")
        return a

    def _reset_mask(self, options: dict[str, Any] | None) -> np.ndarray:
        """The host-side bool mask of envs to reset (all of them by default)."""
        if options is None or "reset_mask" not in options:
            return np.ones(self.num_envs, dtype=bool)
        mask = options["reset_mask"]
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise TypeError("options['reset_mask'] must be a bool numpy array or tensor.")
        if mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}."
            )
        if not mask.any():
            raise ValueError("options['reset_mask'] must contain at least one True value.")
        return mask

    def _seed_list(self, seed: Any) -> list[int | None] | int | None:
        """Check ``seed`` and return it as an int, a per-env list, or ``None``."""
        if seed is None:
            return None
        if _is_int(seed):
            if seed < 0:
                raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
            return int(seed)
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"seed must be an int, None, or a list of {self.num_envs} ints or None, "
                f"got a list of length {len(seeds)}."
            )
        for s in seeds:
            if s is not None and (not _is_int(s) or s < 0):
                raise ValueError(f"seed list entries must be non-negative integers or None, got {s!r}.")
        return [None if s is None else int(s) for s in seeds]

    def _reseed(self, seeds: list[int | None] | int | None, mask: np.ndarray) -> None:
        """Give new streams to the masked envs that get a seed (or have none yet)."""
        n = self.num_envs
        lo = np.zeros(n, dtype=np.int64)
        hi = np.zeros(n, dtype=np.int64)
        if _is_int(seeds):
            lo, hi = self._consecutive_seeds(seeds)  # type: ignore[arg-type]
            chosen = mask.copy()
        else:
            chosen = np.zeros(n, dtype=bool)
            if seeds is not None:
                for i, s in enumerate(seeds):  # type: ignore[union-attr]
                    if s is not None and mask[i]:
                        lo[i], hi[i] = _rng.split_seed(s)
                        chosen[i] = True
            # Never-seeded envs reset without a seed draw one from OS entropy.
            fresh = mask & ~chosen & ~self._seeded
            if fresh.any():
                e_lo, e_hi = self._consecutive_seeds(_rng.entropy_seed())
                lo[fresh], hi[fresh] = e_lo[fresh], e_hi[fresh]
                chosen |= fresh
        if not chosen.any():
            return
        k1, k2 = _rng.stream_keys(lo, hi)
        c = torch.as_tensor(chosen, device=self.device)
        self._key1 = torch.where(c, torch.as_tensor(k1, device=self.device), self._key1)
        self._key2 = torch.where(c, torch.as_tensor(k2, device=self.device), self._key2)
        self._counter = torch.where(c, self._zero_i, self._counter)
        self._seeded |= chosen

    def _consecutive_seeds(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Low and high words of ``(seed + i) mod 2**64`` for every env i."""
        s_lo, s_hi = _rng.split_seed(seed)
        total = s_lo + np.arange(self.num_envs, dtype=np.int64)
        lo = total & _rng.MASK32
        hi = (s_hi + (total >> 32)) & _rng.MASK32
        return lo, hi
