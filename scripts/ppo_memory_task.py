"""CartPole without velocities: PlasticPPO with a plastic LSTM against a static (feed-forward) MLP.

The settings of ``tests/test_ppo.py::test_plastic_lstm_learns_cartpole_without_velocities_and_a_static_mlp_cannot``,
for any seeds: 8 envs, n_steps 32, batch 256, sequences of 8, 10 epochs, lr 2e-3, γ = λ = 0.98,
VecNormalize on observations, 14,336 steps; then the mean deterministic return over 10 episodes.

    python scripts/ppo_memory_task.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from plastic_rl.agents import PlasticPPO

SETTINGS = dict(n_steps=32, batch_size=256, sequence_length=8, n_epochs=10, gamma=0.98, gae_lambda=0.98, learning_rate=2e-3)
VARIANTS = {"plastic lstm (hidden 16)": ("PlasticLstmPolicy", dict(hidden_size=16)),
            "static mlp (64-64)": ("PlasticMlpPolicy", dict(plastic=False))}


def no_velocity(env: gym.Env) -> gym.Env:
    """CartPole with the cart and pole velocities removed from the observation."""
    low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
    space = gym.spaces.Box(low, high, dtype=np.float32)
    return gym.wrappers.TransformObservation(env, lambda obs: obs[[0, 2]].astype(np.float32), space)


def run(policy: str, kwargs: dict, seed: int, steps: int) -> tuple:
    """(mean deterministic return over 10 episodes, wall seconds) of one training run."""
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=8, seed=seed, wrapper_class=no_velocity), norm_reward=False)
    started = time.perf_counter()
    model = PlasticPPO(policy, env, policy_kwargs=kwargs, seed=seed, **SETTINGS).learn(steps)
    seconds = time.perf_counter() - started
    env.training = False
    mean, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    return float(mean), seconds


def main() -> None:
    """Train both variants for every seed and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=14_336)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'variant':<26} {'seed':>4} {'mean return':>12} {'train s':>8}")
    for name, (policy, kwargs) in VARIANTS.items():
        for seed in args.seeds:
            mean, seconds = run(policy, kwargs, seed, args.steps)
            print(f"{name:<26} {seed:>4} {mean:>12.1f} {seconds:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
