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
    "continual": "plastic_rl.agents.continual",  # a task sequence (also `plastic-rl continual`)
    "ppo": "plastic_rl.agents.ppo_train",  # PlasticPPO (stable-baselines3) on any gymnasium env
}

PRESETS: Dict[str, Dict[str, Any]] = {
    # Backpropamine's maze, trained by full-episode A2C (DESIGN.md §4 defaults live in A2CConfig).
    "maze-a2c": {"trainer": "a2c"},
    # The quadruped with random leg failures, evolved by PGPE + ClipUp: the settings of the README's
    # limb-failure result. Other defaults live in es.Config. The ClipUp step 0.1 (max speed 0.2) learned
    # clearly faster than 0.01 in a 25-generation pilot; decrease_rewards_by = Ant-v5's alive bonus, so that
    # standing still earns nothing during the search.
    "ant-es": {
        "trainer": "es", "popsize": 40, "episode_length": 500, "generations": 250,
        "center_learning_rate": 0.1, "decrease_rewards_by": 1.0,
    },
    # The rules-only policy (Najarro & Risi 2020): the same search, but the MLP's weights are drawn at random
    # at the start of every episode and only the per-synapse ABCD rule (with alpha and the rate η) is
    # evolved, so the network wires itself within the episode. Their σ was 0.1 (popsize 200, 300 generations).
    "ant-es-rules": {
        "trainer": "es", "popsize": 40, "episode_length": 500, "generations": 250,
        "center_learning_rate": 0.1, "decrease_rewards_by": 1.0,
        "random_weights": True, "rule": "abcd", "modulation": "none", "stdev_init": 0.1,
    },
    # PlasticPPO on the maze: a plastic LSTM 100 (simple modulation, Backpropamine's Hebbian trace on the recurrent
    # weights) with the rollout of the RecurrentPPO anchor of issue 14 (8 envs, n_steps 200, gamma 0.9, 4 epochs).
    # Every maze episode is 200 steps, so a rollout is one episode per env; the update re-runs 25-step sequences,
    # 8 per minibatch (batch 200: 32 Adam steps per rollout), at lr 1e-3. Tuned in
    # results/es_vs_gradient_maze/tuning.md: the first settings (batch 800, lr 3e-4: 8 Adam steps per rollout)
    # reached 5-9 at 200k steps, these 19 with Backpropamine's plastic RNN (policy: rnn), and with the plastic LSTM
    # a median of 32 at 300k against RecurrentPPO's 14 (seeds 0-2).
    "maze-ppo": {
        "trainer": "ppo", "env_id": "plastic_rl/Maze-v0", "policy": "lstm", "hidden_size": 100,
        "n_envs": 8, "n_steps": 200, "batch_size": 200, "sequence_length": 25, "n_epochs": 4,
        "learning_rate": 1e-3, "gamma": 0.9, "normalize_obs": False, "normalize_reward": False,
        "total_timesteps": 300_000,
    },
    # PlasticPPO on the quadruped with random leg failures: the network of ant-es (plastic MLP 64-64, tanh
    # actions, 500-step episodes) with SB3's MuJoCo-style PPO settings and VecNormalize. Initial action std
    # e^-1 = 0.37: at std 1 Ant's control cost (0.5 Σa², about 2.4 per step) outweighs its alive bonus (1 per
    # step), and a first 118k-step run learned to fall early (mean return -42, episodes of 88 steps).
    "ant-ppo": {
        "trainer": "ppo", "env_id": "plastic_rl/AntLegFailure-v0", "env_kwargs": {"failed_legs": "random"},
        "episode_length": 500, "policy": "mlp", "hidden_sizes": [64, 64], "output_activation": "tanh", "log_std_init": -1.0,
        "n_envs": 8, "n_steps": 256, "batch_size": 512, "sequence_length": 16, "n_epochs": 10,
        "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "total_timesteps": 1_000_000,
    },
}

# What `make demo` trains: a plastic maze run that visibly learns in about two minutes
# on one core. A 9x9 maze with 100-step episodes and a 10x larger step than the
# paper's (Adam eps 1e-4 as in Backpropamine's code keeps that step stable): the
# reward per episode rises from chance (about 7.6) to about 29 in 300 iterations.
DEMO: Dict[str, Any] = {
    "trainer": "a2c", "maze_size": 9, "episode_length": 100,
    "learning_rate": 1e-3, "adam_eps": 1e-4, "iterations": 300,
}
