from gymnasium.envs.registration import register

from plastic_rl.envs.maze import MazeEnv, MazeVectorEnv
from plastic_rl.envs.quadruped import LEG_ACTUATORS, LEG_NAMES, AntLegFailureEnv

# The maze truncates itself after `episode_length` steps, so no max_episode_steps
# here: a TimeLimit would cut episodes short when episode_length is raised, and
# make_vec would pass it as a keyword to the vector entry point.
register(
    id="plastic_rl/Maze-v0",
    entry_point="plastic_rl.envs.maze:MazeEnv",
    vector_entry_point="plastic_rl.envs.maze:MazeVectorEnv",
)

# Same episode length and threshold as gymnasium's Ant-v5 registration.
register(
    id="plastic_rl/AntLegFailure-v0",
    entry_point="plastic_rl.envs.quadruped:AntLegFailureEnv",
    max_episode_steps=1000,
    reward_threshold=6000.0,
)

# The same quadruped rewarded for running along +x, -x, +y or -y (the ant-directions task sequence).
register(
    id="plastic_rl/AntDirection-v0",
    entry_point="plastic_rl.envs.directions:make_directional_ant",
    max_episode_steps=1000,
)
