"""Task sequences (built-in and YAML), maze wall layouts, and the directional quadruped."""

import gymnasium as gym
import numpy as np
import pytest

import plastic_rl.envs  # noqa: F401
from plastic_rl.envs.directions import DirectionReward
from plastic_rl.envs.maze import MazeEnv, MazeVectorEnv, layout_grid
from plastic_rl.envs.sequences import MAZE_LAYOUTS, SEQUENCES, get_sequence, make_env, sequence_from_dict


def test_builtin_sequences_have_four_tasks_with_registered_ids():
    assert set(SEQUENCES) >= {"ant-legs", "ant-directions", "maze-layouts", "maze-actions"}
    legs = [t.kwargs["failed_legs"] for t in SEQUENCES["ant-legs"].tasks]
    assert sorted(leg for (leg,) in legs) == ["back_left", "back_right", "front_left", "front_right"]
    assert [t.kwargs["direction"] for t in SEQUENCES["ant-directions"].tasks] == ["+x", "-x", "+y", "-y"]
    grids = [layout_grid(9, t.kwargs["layout"]) for t in SEQUENCES["maze-layouts"].tasks]
    assert all(not np.array_equal(a, b) for i, a in enumerate(grids) for b in grids[i + 1:])  # four different mazes


def test_layout_changes_walls_and_the_vector_twin_matches_the_single_env():
    layout = MAZE_LAYOUTS["rooms"]
    single = MazeEnv(size=9, episode_length=30, layout=layout)
    assert single.grid[1, 4] and not MazeEnv(size=9).grid[1, 4]
    vector = MazeVectorEnv(3, size=9, episode_length=30, layout=layout)
    singles = [MazeEnv(size=9, episode_length=30, layout=layout) for _ in range(3)]
    obs_v, _ = vector.reset(seed=5)
    obs_s = np.stack([env.reset(seed=5 + i)[0] for i, env in enumerate(singles)])
    np.testing.assert_array_equal(obs_v, obs_s)
    rng = np.random.default_rng(0)
    for _ in range(30):
        actions = rng.integers(0, 4, size=3)
        obs_v, rew_v, *_ = vector.step(actions)
        steps = [env.step(int(a)) for env, a in zip(singles, actions)]
        np.testing.assert_array_equal(obs_v, np.stack([s[0] for s in steps]))
        np.testing.assert_array_equal(rew_v, [s[1] for s in steps])


def test_action_map_remaps_moves_in_both_twins():
    plain, reversed_ = MazeEnv(size=7, episode_length=5), MazeEnv(size=7, episode_length=5, action_map=[1, 0, 3, 2])
    plain.reset(seed=0)
    reversed_.reset(seed=0)
    plain.step(0)  # up (the centre of a 7x7 maze can move up and down)
    reversed_.step(0)  # action 0 now moves down
    assert plain.agent_pos == (2, 3) and reversed_.agent_pos == (4, 3)
    assert np.array_equal(reversed_._observation()[9:13], [1, 0, 0, 0])  # the observed previous action is the one taken
    vector = MazeVectorEnv(2, size=7, episode_length=5, action_map=[1, 0, 3, 2])
    vector.reset(seed=0)
    vector.step(np.array([0, 0]))
    assert vector.agent_pos[0].tolist() == [4, 3]
    with pytest.raises(ValueError, match="action_map must be a permutation"):
        MazeEnv(action_map=[0, 0, 1, 2])
    maps = [t.kwargs["action_map"] for t in SEQUENCES["maze-actions"].tasks]
    assert len({tuple(m) for m in maps}) == 4 and all(sorted(m) == [0, 1, 2, 3] for m in maps)


def test_default_layout_is_unchanged():
    assert np.array_equal(layout_grid(11, None), layout_grid(11, "pillars"))
    assert np.array_equal(MazeEnv(size=11).grid, layout_grid(11, "pillars"))


@pytest.mark.parametrize("layout, message", [
    ("spiral", "layout must be one of"),
    (["#####", "#...#", "#.#.#", "#...#"], "layout must be 5 strings"),
    (["#####", "#...#", "#.#..", "#...#", "#####"], "border"),
    (["#####", "#...#", "#.#.#", "#...#", "#####"], "centre"),
    (["#######", "#.#...#", "###...#", "#.....#", "#.....#", "#.....#", "#######"], "connect every open cell"),
])
def test_bad_layout_is_one_sentence(layout, message):
    with pytest.raises(ValueError, match=message):
        MazeEnv(size=len(layout) if isinstance(layout, list) and len(layout) in (5, 7) else 5, layout=layout)


def test_yaml_sequence(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(
        "description: two small mazes\n"
        "tasks:\n"
        "  - name: a\n    env_id: plastic_rl/Maze-v0\n    kwargs: {size: 7, episode_length: 20}\n"
        "  - env_id: plastic_rl/Maze-v0\n    kwargs: {size: 7, episode_length: 20, layout: open}\n"
    )
    sequence = get_sequence(str(path))
    assert sequence.name == "two" and [t.name for t in sequence.tasks] == ["a", "task-1"]
    env = make_env(sequence.tasks[1])
    assert not env.unwrapped.grid[2, 2]  # open layout: no pillar


@pytest.mark.parametrize("data, message", [
    ({"tasks": []}, "'tasks' must be a non-empty list"),
    ({"tasks": [{"env_id": "NoSuchEnv-v9"}]}, "is not registered"),
    ({"tasks": [{"env_id": "plastic_rl/Maze-v0", "kwargs": [1]}]}, "'kwargs' must be a mapping"),
    ({"tasks": [{"env_id": "plastic_rl/Maze-v0", "speed": 1}]}, "unknown field 'speed'"),
    ({"tasks": [{"env_id": "plastic_rl/Maze-v0", "name": "a"}, {"env_id": "plastic_rl/Maze-v0", "name": "a"}]}, "unique"),
])
def test_bad_sequences_are_one_sentence(data, message):
    with pytest.raises(ValueError, match=message):
        sequence_from_dict(data)


def test_unknown_sequence_name_lists_the_choices():
    with pytest.raises(ValueError, match="sequence must be one of ant-directions, ant-legs, maze-actions, maze-layouts"):
        get_sequence("ant-jumps")


class _FakeAnt(gym.Env):
    """Stands in for Ant: fixed velocities and reward terms, to check the wrapper's arithmetic."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,))
    action_space = gym.spaces.Box(-1.0, 1.0, (2,))

    def step(self, action):
        info = {"x_velocity": 0.5, "y_velocity": -2.0, "reward_forward": 0.5, "reward_ctrl": -0.1,
                "reward_contact": 0.0, "reward_survive": 1.0}
        return np.zeros(3), 1.4, False, False, info


@pytest.mark.parametrize("direction, velocity", [("+x", 0.5), ("-x", -0.5), ("+y", -2.0), ("-y", 2.0)])
def test_direction_reward_replaces_the_forward_term(direction, velocity):
    _, reward, _, _, info = DirectionReward(_FakeAnt(), direction).step(None)
    assert reward == pytest.approx(1.4 - 0.5 + velocity)
    assert info["reward_forward"] == pytest.approx(velocity) and info["direction_velocity"] == pytest.approx(velocity)
    assert reward == pytest.approx(sum(info[k] for k in ("reward_forward", "reward_ctrl", "reward_contact", "reward_survive")))


def test_directional_ant_rewards_opposite_directions_oppositely():
    rewards = {}
    for direction in ("+x", "-x"):
        env = make_env(SEQUENCES["ant-directions"].tasks[0], direction=direction)
        env.reset(seed=0)
        action = np.full(env.action_space.shape, 0.5, dtype=np.float32)
        infos = [env.step(action)[4] for _ in range(20)]
        rewards[direction] = [i["reward_forward"] for i in infos]
        env.close()
    np.testing.assert_allclose(rewards["+x"], [-r for r in rewards["-x"]], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="direction must be one of"):
        make_env(SEQUENCES["ant-directions"].tasks[0], direction="up")
