"""Tests of plastic_rl/Maze-v0 and its batched twin MazeVectorEnv."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
import torch

import plastic_rl.envs  # noqa: F401  (registers the env ids)
from plastic_rl.envs.maze import ACTION_DELTAS, MazeEnv, MazeVectorEnv

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def open_cells(grid: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(~grid))}


def shortest_path(grid: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> list[int]:
    """Actions of a shortest path from start to goal (BFS oracle)."""
    prev: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for a, (dr, dc) in enumerate(ACTION_DELTAS):
            nxt = (cell[0] + dr, cell[1] + dc)
            if not grid[nxt] and nxt not in prev:
                prev[nxt] = (cell, a)
                queue.append(nxt)
    actions = []
    cell = goal
    while prev[cell] is not None:
        cell, a = prev[cell]  # type: ignore[misc]
        actions.append(a)
    return actions[::-1]


def seeded_env(avoid: set[tuple[int, int]], **kwargs) -> MazeEnv:
    """A reset env whose reward cell is not in ``avoid``."""
    env = MazeEnv(**kwargs)
    for seed in range(100):
        env.reset(seed=seed)
        if env.reward_pos not in avoid:
            return env
    raise AssertionError("no suitable seed")


# --------------------------------------------------------------------------- layout


def test_pillar_layout_and_start():
    env = MazeEnv()
    env.reset(seed=0)
    grid = env.grid
    assert grid.shape == (11, 11) and grid.dtype == np.bool_
    rows, cols = np.indices(grid.shape)
    border = (rows == 0) | (cols == 0) | (rows == 10) | (cols == 10)
    pillars = (rows % 2 == 0) & (cols % 2 == 0)
    np.testing.assert_array_equal(grid, border | pillars)
    assert len(open_cells(grid)) == 81 - 16
    assert env.agent_pos == (5, 5)


@pytest.mark.parametrize("size", [5, 7, 9, 13])
def test_other_sizes_keep_15_obs_and_open_centre(size):
    env = MazeEnv(size=size)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (15,)
    assert env.grid.shape == (size, size)
    c = size // 2
    assert not env.grid[c, c] and env.agent_pos == (c, c)
    rows, cols = np.indices((size, size))
    expected = (rows == 0) | (cols == 0) | (rows == size - 1) | (cols == size - 1)
    expected |= (rows % 2 == 0) & (cols % 2 == 0)
    expected[c, c] = False
    np.testing.assert_array_equal(env.grid, expected)


# --------------------------------------------------------------------------- dynamics


def test_walls_block_and_penalty_applies():
    env = seeded_env({(4, 5), (3, 5), (2, 5), (1, 5)}, wall_penalty=0.5)
    obs, r, term, trunc, _ = env.step(UP)
    assert env.agent_pos == (4, 5) and r == 0.0
    obs, r, term, trunc, _ = env.step(LEFT)  # (4, 4) is a pillar
    assert env.agent_pos == (4, 5) and r == -0.5 and obs[13] == np.float32(-0.5)
    assert not term and not trunc
    for _ in range(3):
        env.step(UP)
    assert env.agent_pos == (1, 5)
    _, r, _, _, _ = env.step(UP)  # the border
    assert env.agent_pos == (1, 5) and r == -0.5


def test_zero_wall_penalty_gives_positive_zero():
    env = seeded_env({(4, 5)})
    env.step(UP)
    obs, r, *_ = env.step(LEFT)
    assert r == 0.0 and not np.signbit(r) and not np.signbit(obs[13])


def test_reward_then_teleport_to_open_non_reward_cell():
    env = MazeEnv(reward_value=10.0)
    cells = open_cells(env.grid)
    hits = 0
    for seed in range(20):
        env.reset(seed=seed)
        goal = env.reward_pos
        assert goal in cells and goal != (5, 5)
        path = shortest_path(env.grid, env.agent_pos, goal)
        for i, a in enumerate(path):
            obs, r, *_ = env.step(a)
            if i < len(path) - 1:
                assert r == 0.0
        assert r == 10.0 and obs[13] == 10.0
        assert env.agent_pos != goal and env.agent_pos in cells
        assert env.reward_pos == goal  # the reward cell stays for the whole episode
        hits += 1
        # Walking back collects it again.
        for a in shortest_path(env.grid, env.agent_pos, goal):
            obs, r, *_ = env.step(a)
        assert r == 10.0 and env.agent_pos != goal
    assert hits == 20


def test_reward_cell_and_teleport_distributions():
    env = MazeEnv(episode_length=5000)
    candidates = open_cells(env.grid) - {(5, 5)}
    seen = set()
    for seed in range(1500):
        env.reset(seed=seed)
        seen.add(env.reward_pos)
    assert seen == candidates  # every open non-centre cell occurs, nothing else
    # Teleport targets: all open cells but the reward cell (the agent's cell included).
    env.reset(seed=3)
    goal = env.reward_pos
    landed = set()
    for _ in range(300):
        for a in shortest_path(env.grid, env.agent_pos, goal):
            _, r, *_ = env.step(a)
        assert r == 10.0
        landed.add(env.agent_pos)
    assert goal not in landed
    assert len(landed) > 50 and landed <= open_cells(env.grid) - {goal}


def test_truncation_exactly_at_episode_length():
    env = MazeEnv(episode_length=7)
    env.reset(seed=0)
    for t in range(1, 8):
        obs, _, term, trunc, _ = env.step(t % 4)
        assert term is False
        assert trunc is (t == 7)
        assert obs[14] == np.float32(t) / np.float32(7)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_observation_content():
    env = MazeEnv(wall_penalty=1.0)
    obs, info = env.reset(seed=4)
    assert obs.dtype == np.float32 and obs.shape == (15,) and info == {}
    np.testing.assert_array_equal(obs[:9], env.grid[4:7, 4:7].reshape(-1))
    np.testing.assert_array_equal(obs[9:], np.zeros(6))
    rng = np.random.default_rng(0)
    for t in range(1, 201):
        a = int(rng.integers(4))
        obs, r, *_ = env.step(a)
        row, col = env.agent_pos
        np.testing.assert_array_equal(obs[:9], env.grid[row - 1 : row + 2, col - 1 : col + 2].ravel())
        np.testing.assert_array_equal(obs[9:13], np.eye(4)[a])
        assert obs[13] == np.float32(r)
        assert obs[14] == np.float32(np.float32(t) / np.float32(200))
        assert env.observation_space.contains(obs)


# --------------------------------------------------------------------------- batched twin


def _rollout_pair(num_envs, seed, steps, reset_masks=None, **kwargs):
    """Step sync and vector envs with the same random actions; assert equality."""
    sync = gym.make_vec("plastic_rl/Maze-v0", num_envs=num_envs, vectorization_mode="sync", **kwargs)
    vec = gym.make_vec(
        "plastic_rl/Maze-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    assert isinstance(vec.unwrapped, MazeVectorEnv)
    assert vec.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    o1, _ = sync.reset(seed=seed)
    o2, _ = vec.reset(seed=seed)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(seed)
    total_reward = 0.0
    truncations = 0
    for t in range(steps):
        actions = rng.integers(0, 4, size=num_envs)
        r1 = sync.step(actions)
        r2 = vec.step(actions)
        for x1, x2 in zip(r1[:4], r2[:4]):
            assert x1.shape == x2.shape
            np.testing.assert_array_equal(x1, x2)
        assert r2[0].dtype == np.float32 and r2[2].dtype == np.bool_ and r2[3].dtype == np.bool_
        singles = [e.unwrapped for e in sync.envs]
        np.testing.assert_array_equal(vec.unwrapped.agent_pos.numpy(), [e.agent_pos for e in singles])
        np.testing.assert_array_equal(vec.unwrapped.reward_pos.numpy(), [e.reward_pos for e in singles])
        total_reward += float(r1[1].sum())
        truncations += int(r1[3].sum())
        if reset_masks and t in reset_masks:
            mask = reset_masks[t]
            o1, _ = sync.reset(options={"reset_mask": mask.copy()})
            o2, _ = vec.reset(options={"reset_mask": mask.copy()})
            np.testing.assert_array_equal(o1, o2)
    return total_reward, truncations


@pytest.mark.parametrize(
    "num_envs, kwargs",
    [
        (1, dict(episode_length=30)),
        (3, dict(size=5, episode_length=25, wall_penalty=0.5)),
        (8, dict(size=7, episode_length=40, reward_value=3.5)),
        (5, dict(episode_length=60)),
    ],
)
def test_vector_equals_sync_over_several_episodes(num_envs, kwargs):
    length = kwargs["episode_length"]
    total_reward, truncations = _rollout_pair(num_envs, seed=11, steps=2 * (length + 1) + 5, **kwargs)
    assert truncations == 2 * num_envs  # two full episodes, then some of the third
    if kwargs.get("size", 11) <= 7:
        assert total_reward > 0  # teleports were exercised


def test_vector_equals_sync_with_partial_reset_and_large_seed():
    masks = {5: np.array([True, False, True, False]), 17: np.array([False, False, False, True])}
    # 2**32 - 2 makes env 2 and 3 carry into the high word of the 64-bit seed.
    _rollout_pair(4, seed=2**32 - 2, steps=50, reset_masks=masks, size=5, episode_length=20)


def test_vector_tensor_mode_matches_numpy_mode():
    a = MazeVectorEnv(6, size=7, episode_length=15)
    b = MazeVectorEnv(6, size=7, episode_length=15, as_tensor=True)
    oa, _ = a.reset(seed=3)
    ob, _ = b.reset(seed=3)
    assert isinstance(ob, torch.Tensor) and ob.dtype == torch.float32 and ob.shape == (6, 15)
    np.testing.assert_array_equal(oa, ob.numpy())
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        act = torch.randint(0, 4, (6,), generator=gen)
        ra = a.step(act.numpy())
        rb = b.step(act)
        assert rb[1].dtype == torch.float32 and rb[2].dtype == torch.bool and rb[3].dtype == torch.bool
        assert rb[4] == {} and ra[4] == {}
        for x, y in zip(ra[:4], rb[:4]):
            np.testing.assert_array_equal(x, y.numpy())


def test_vector_spaces_and_bad_actions():
    env = MazeVectorEnv(4)
    assert env.single_observation_space.shape == (15,)
    assert env.observation_space.shape == (4, 15)
    assert env.single_action_space == gym.spaces.Discrete(4)
    assert env.action_space == gym.spaces.MultiDiscrete([4, 4, 4, 4])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, dtype=np.int64))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    with pytest.raises(ValueError, match="actions"):
        env.step(np.array([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="actions"):
        env.step(np.zeros(3, dtype=np.int64))


# --------------------------------------------------------------------------- seeding


def _reward_cells(env: MazeEnv, episodes: int, seed: int | None) -> list[tuple[int, int]]:
    env.reset(seed=seed)
    cells = [env.reward_pos]
    for _ in range(episodes - 1):
        env.reset()
        cells.append(env.reward_pos)
    return cells


def test_seeding_reproducibility():
    assert _reward_cells(MazeEnv(), 10, seed=7) == _reward_cells(MazeEnv(), 10, seed=7)
    firsts = set()
    for s in range(30):
        env = MazeEnv()
        env.reset(seed=s)
        firsts.add(env.reward_pos)
    assert len(firsts) > 10
    # Reseeding restarts the stream; reset() without a seed continues it.
    env = MazeEnv()
    a = _reward_cells(env, 5, seed=7)
    b = _reward_cells(env, 5, seed=7)
    assert a == b
    # Unseeded envs draw from OS entropy.
    assert _reward_cells(MazeEnv(), 10, seed=None) != _reward_cells(MazeEnv(), 10, seed=None)


def test_vector_seeding_matches_single_envs():
    vec = MazeVectorEnv(5)
    vec.reset(seed=100)
    expected = []
    for i in range(5):
        e = MazeEnv()
        e.reset(seed=100 + i)
        expected.append(e.reward_pos)
    np.testing.assert_array_equal(vec.reward_pos.numpy(), expected)
    vec.reset(seed=[9, None, 9, None, 3])  # None continues the stream of envs 1 and 3
    e = MazeEnv()
    e.reset(seed=9)
    assert tuple(vec.reward_pos[0].tolist()) == tuple(vec.reward_pos[2].tolist()) == e.reward_pos
    e101 = MazeEnv()
    e101.reset(seed=101)
    e101.reset()
    assert tuple(vec.reward_pos[1].tolist()) == e101.reward_pos
    a, b = MazeVectorEnv(64), MazeVectorEnv(64)
    a.reset()
    b.reset()
    assert not torch.equal(a.reward_pos, b.reward_pos)  # OS entropy


# --------------------------------------------------------------------------- checkers, rendering, registration


def test_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    env = gym.make("plastic_rl/Maze-v0", render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)


def test_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env

    check_env(MazeEnv(), warn=False)


def test_rgb_render():
    env = MazeEnv(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (88, 88, 3) and frame.dtype == np.uint8
    r, c = env.agent_pos
    rr, rc = env.reward_pos
    agent_px = frame[r * 8 + 4, c * 8 + 4]
    reward_px = frame[rr * 8 + 4, rc * 8 + 4]
    wall_px = frame[4, 4]
    floor = [frame[y * 8 + 4, x * 8 + 4] for y, x in open_cells(env.grid) - {(r, c), (rr, rc)}]
    colours = {tuple(agent_px), tuple(reward_px), tuple(wall_px), tuple(floor[0])}
    assert len(colours) == 4
    assert MazeEnv().render() is None
    vec = MazeVectorEnv(3, size=7, render_mode="rgb_array")
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 3 and frames[0].shape == (56, 56, 3)


def test_make_and_make_vec_pass_kwargs():
    env = gym.make("plastic_rl/Maze-v0", size=7, episode_length=5)
    assert env.unwrapped.grid.shape == (7, 7)
    env.reset(seed=0)
    truncs = [env.step(0)[3] for _ in range(5)]
    assert truncs == [False] * 4 + [True]
    vec = gym.make_vec("plastic_rl/Maze-v0", num_envs=3, size=9, as_tensor=True)
    assert isinstance(vec.unwrapped, MazeVectorEnv) and vec.unwrapped.grid.shape == (9, 9)
    obs, _ = vec.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.shape == (3, 15)


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "name, value",
    [
        ("size", 10),
        ("size", 3),
        ("size", 11.0),
        ("size", True),
        ("episode_length", 0),
        ("episode_length", 2.5),
        ("reward_value", float("nan")),
        ("reward_value", "10"),
        ("wall_penalty", -1.0),
        ("wall_penalty", float("inf")),
        ("render_mode", "human"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        MazeEnv(**{name: value})
    with pytest.raises(ValueError, match=name):
        MazeVectorEnv(2, **{name: value})


@pytest.mark.parametrize("name, value", [("num_envs", 0), ("num_envs", 2.0), ("device", "no-such-device")])
def test_bad_vector_arguments(name, value):
    kwargs = {"num_envs": 2, name: value}
    with pytest.raises(ValueError, match=name):
        MazeVectorEnv(**kwargs)


def test_bad_action_and_seed():
    env = MazeEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(4)
    vec = MazeVectorEnv(2)
    with pytest.raises(ValueError, match="seed"):
        vec.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="seed"):
        vec.reset(seed=-1)
