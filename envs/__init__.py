from gymnasium.envs.registration import register

from plastic_rl.envs.quadruped import LEG_ACTUATORS, LEG_NAMES, AntLegFailureEnv

# Same episode length and threshold as gymnasium's Ant-v5 registration.
register(
    id="plastic_rl/AntLegFailure-v0",
    entry_point="plastic_rl.envs.quadruped:AntLegFailureEnv",
    max_episode_steps=1000,
    reward_threshold=6000.0,
)
