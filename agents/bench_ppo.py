"""``plastic-rl bench ppo``: env steps/s of PlasticPPO's whole ``learn()`` against its SB3 peers, and rollout storage.

Measured in one run on gymnasium's ``Ant-v5`` (one env, one torch thread), all four with
the same ``n_steps`` / ``batch_size`` / ``n_epochs`` (sb3-contrib RecurrentPPO's defaults,
128 / 128 / 10):

- PlasticPPO with a plastic LSTM (hidden 64, sequences of 16 steps, the default; also 8 and 32)
  against sb3-contrib ``RecurrentPPO("MlpLstmPolicy")`` with ``lstm_hidden_size=64`` (target: ≥ 2×);
- PlasticPPO with the static MLP (64-64) against SB3 ``PPO("MlpPolicy")`` (target: ≥ 0.8×).

Each figure is env steps over the wall time of ``learn()`` calls, after a warm-up
``learn()`` of one rollout (model construction and first-call costs excluded); the
models are timed in interleaved rounds so that load drift on a shared machine hits
all of them alike.
The rollout storage is the bytes of every array and tensor the buffer holds after a
rollout and its minibatches, measured for the benchmark's settings and for a larger
rollout (2,048 steps × 8 envs) where storing a plastic trace per step would not fit.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from plastic_rl.runs import platform_record

SETTINGS = dict(n_steps=128, batch_size=128, n_epochs=10)  # sb3-contrib RecurrentPPO's defaults
HIDDEN = 64


def buffer_bytes(buffer) -> int:
    """Bytes of every numpy array and torch tensor held as an attribute of ``buffer``."""
    total = 0
    for value in vars(buffer).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
    return total


def _storage_after_minibatches(model) -> int:
    """Buffer bytes after a full pass of minibatches (RecurrentPPO builds padded copies in ``get()``)."""
    for _ in model.rollout_buffer.get(model.batch_size):
        pass
    return buffer_bytes(model.rollout_buffer)


def timed_rounds(models: Dict[str, Any], steps: int, rounds: int) -> Dict[str, Dict[str, Any]]:
    """Steps/s of each model's ``learn()``, timed in interleaved rounds (A B C D A B C D ...).

    On a shared machine the load drifts; interleaving gives every model the same mix of
    quiet and busy moments, so the ratios are fairer than back-to-back runs. Each model
    first learns one rollout untimed (first calls, lazy imports).

    :param models: name -> model.
    :param steps: env steps per model and round (a whole number of rollouts).
    :param rounds: rounds.
    """
    for model in models.values():
        torch.manual_seed(0)
        model.learn(model.n_steps * model.n_envs)  # warm-up
    seconds = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            seconds[name].append(time.perf_counter() - t0)
    return {
        name: {"env_steps": steps * rounds, "seconds": round(sum(seconds[name]), 3),
               "steps_per_second": round(steps * rounds / sum(seconds[name]), 1),
               "steps_per_second_per_round": [round(steps / s, 1) for s in seconds[name]],
               "rollout_storage_bytes": _storage_after_minibatches(model)}
        for name, model in models.items()
    }


def make_models(env_id: str, seed: int = 0, sweep: bool = True) -> Dict[str, Any]:
    """The models of the benchmark (builders), on one ``env_id`` env each.

    :param env_id: gymnasium env id.
    :param seed: model seed.
    :param sweep: also PlasticPPO's plastic LSTM at sequence lengths 8 and 32 (the default is 16).
    """
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO

    from plastic_rl.agents.ppo import PlasticPPO

    def env():
        return gym.make(env_id)

    def plastic_lstm(length: int):
        return lambda: PlasticPPO("PlasticLstmPolicy", env(), policy_kwargs=dict(hidden_size=HIDDEN), seed=seed,
                                  sequence_length=length, **SETTINGS)

    models = {
        "plastic_lstm": plastic_lstm(16),
        "recurrent_ppo": lambda: RecurrentPPO("MlpLstmPolicy", env(), policy_kwargs=dict(lstm_hidden_size=HIDDEN), seed=seed, **SETTINGS),
        "static_mlp": lambda: PlasticPPO("PlasticMlpPolicy", env(), policy_kwargs=dict(plastic=False), seed=seed, **SETTINGS),
        "sb3_ppo": lambda: PPO("MlpPolicy", env(), seed=seed, **SETTINGS),
    }
    if sweep:
        models.update({"plastic_lstm_seq8": plastic_lstm(8), "plastic_lstm_seq32": plastic_lstm(32)})
    return models


def large_rollout_storage(env_id: str, n_steps: int = 2048, n_envs: int = 8) -> Dict[str, Any]:
    """Rollout storage for ``n_steps × n_envs`` (no training): PlasticPPO vs a state per step vs RecurrentPPO."""
    import gymnasium as gym
    from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer

    from plastic_rl.agents.ppo import PlasticPPO, SequenceRolloutBuffer

    env = gym.make(env_id)
    model = PlasticPPO("PlasticLstmPolicy", env, policy_kwargs=dict(hidden_size=HIDDEN), n_steps=64, batch_size=64)
    state_size, length = model.policy.state_size, model.sequence_length
    ours = SequenceRolloutBuffer(n_steps, env.observation_space, env.action_space, n_envs=n_envs,
                                 sequence_length=length, state_size=state_size)
    recurrent = RecurrentRolloutBuffer(n_steps, env.observation_space, env.action_space, (n_steps, 1, n_envs, HIDDEN), n_envs=n_envs)
    env.close()
    return {
        "n_steps": n_steps, "n_envs": n_envs, "sequence_length": length, "state_size": state_size,
        "plastic_ppo_bytes": buffer_bytes(ours),
        "plastic_ppo_state_bytes": ours.state_storage_bytes,
        "state_per_step_bytes": n_steps * n_envs * state_size * 4,
        "recurrent_ppo_bytes_before_get": buffer_bytes(recurrent),
    }


def main(quick: bool = False, output: Optional[str] = None) -> Dict[str, Any]:
    """Run the PPO benchmark, print a table and optionally write JSON.

    :param quick: 256 timed steps per model instead of 2,048 (seconds, not minutes).
    :param output: also write the figures to this JSON file.
    """
    torch.set_num_threads(1)
    env_id, steps, rounds = "Ant-v5", 256 if quick else 512, 1 if quick else 4
    setup = {"env": env_id, "n_envs": 1, **SETTINGS, "hidden": HIDDEN, "timed_steps_per_round": steps, "rounds": rounds, "torch_threads": 1,
             "platform": platform_record(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_average_at_start": os.getloadavg(), "quick": quick}
    print(f"PPO benchmark on {env_id}: n_steps {SETTINGS['n_steps']}, batch {SETTINGS['batch_size']}, "
          f"{SETTINGS['n_epochs']} epochs, {rounds} interleaved rounds of {steps} timed steps per model "
          f"(load average {os.getloadavg()[0]:.1f})")
    results: Dict[str, Any] = {"setup": setup}
    models = {name: build() for name, build in make_models(env_id, sweep=not quick).items()}
    results.update(timed_rounds(models, steps, rounds))
    results["large_rollout_storage"] = large_rollout_storage(env_id)
    setup["load_average_at_end"] = os.getloadavg()
    ratios = {
        "plastic_lstm_over_recurrent_ppo": round(results["plastic_lstm"]["steps_per_second"] / results["recurrent_ppo"]["steps_per_second"], 3),
        "static_mlp_over_sb3_ppo": round(results["static_mlp"]["steps_per_second"] / results["sb3_ppo"]["steps_per_second"], 3),
    }
    results["ratios"] = ratios
    rows = [
        ("PlasticPPO, plastic LSTM 64", results["plastic_lstm"], f"{ratios['plastic_lstm_over_recurrent_ppo']:.2f}x RecurrentPPO (target >= 2), sequences of 16"),
        ("sb3-contrib RecurrentPPO, LSTM 64", results["recurrent_ppo"], ""),
        ("PlasticPPO, static MLP 64-64", results["static_mlp"], f"{ratios['static_mlp_over_sb3_ppo']:.2f}x SB3 PPO (target >= 0.8)"),
        ("SB3 PPO, MlpPolicy 64-64", results["sb3_ppo"], ""),
    ]
    for length in (8, 32):
        name = f"plastic_lstm_seq{length}"
        if name in results:
            ratios[f"{name}_over_recurrent_ppo"] = round(results[name]["steps_per_second"] / results["recurrent_ppo"]["steps_per_second"], 3)
            rows.insert(1, (f"PlasticPPO, plastic LSTM 64, seq {length}", results[name],
                            f"{ratios[f'{name}_over_recurrent_ppo']:.2f}x RecurrentPPO"))
    print(f"{'setup':<36} {'env steps/s':>12} {'rollout storage':>16}  note")
    for name, r, note in rows:
        print(f"{name:<36} {r['steps_per_second']:>12,.1f} {r['rollout_storage_bytes'] / 1e6:>13.2f} MB  {note}")
    big = results["large_rollout_storage"]
    print(f"at {big['n_steps']} steps x {big['n_envs']} envs: PlasticPPO buffer {big['plastic_ppo_bytes'] / 1e6:.1f} MB "
          f"(states {big['plastic_ppo_state_bytes'] / 1e6:.1f} MB); a state per step would be {big['state_per_step_bytes'] / 1e6:.0f} MB; "
          f"RecurrentPPO buffer {big['recurrent_ppo_bytes_before_get'] / 1e6:.1f} MB")
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(results, indent=2) + "\n")
        print(f"written: {output}")
    return results
