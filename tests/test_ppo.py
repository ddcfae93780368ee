"""PlasticPPO: memory, state handling, the SB3 user API (save/load, predict, evaluate_policy, callbacks, VecNormalize)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from plastic_rl import state as state_ops
from plastic_rl.agents import PlasticPPO
from plastic_rl.agents.ppo import SequenceBatch
from plastic_rl.policies import count_parameters

TINY = dict(n_steps=16, batch_size=32, sequence_length=8, n_epochs=2)


def no_velocity(env: gym.Env) -> gym.Env:
    """CartPole with the cart and pole velocities removed: only positions are seen, so memory is needed."""
    low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
    space = gym.spaces.Box(low, high, dtype=np.float32)
    return gym.wrappers.TransformObservation(env, lambda obs: obs[[0, 2]].astype(np.float32), space)


def cartpole(n_envs: int = 2, seed: int = 0, **kwargs):
    return make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed, **kwargs)


def collected(model: PlasticPPO) -> None:
    """Run one rollout into the model's buffer (no update)."""
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)


# ------------------------------------------------------------------------------------------- memory
@pytest.mark.slow
def test_plastic_lstm_learns_cartpole_without_velocities_and_a_static_mlp_cannot():
    torch.set_num_threads(1)
    settings = dict(n_steps=32, batch_size=256, sequence_length=8, n_epochs=10, gamma=0.98, gae_lambda=0.98,
                    learning_rate=2e-3, seed=0)
    results = {}
    for name, policy, kwargs, steps in (("plastic lstm", "PlasticLstmPolicy", dict(hidden_size=16), 14_336),
                                        ("static mlp", "PlasticMlpPolicy", dict(plastic=False), 14_336)):
        env = VecNormalize(make_vec_env("CartPole-v1", n_envs=8, seed=0, wrapper_class=no_velocity), norm_reward=False)
        model = PlasticPPO(policy, env, policy_kwargs=kwargs, **settings).learn(steps)
        env.training = False
        mean, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
        results[name] = mean
    # scripts/ppo_memory_task.py --seeds 0 1 (these settings): plastic LSTM 146.9 and 128.2, static MLP 38.0 and 41.1
    # (it cannot tell which way the pole moves).
    assert results["plastic lstm"] >= 90, results
    assert results["static mlp"] < 60, results
    assert results["plastic lstm"] > 2 * results["static mlp"], results


# ---------------------------------------------------------------------------------- state handling
def test_update_recomputes_exactly_what_the_rollout_saw():
    model = PlasticPPO("PlasticLstmPolicy", cartpole(3), policy_kwargs=dict(hidden_size=8, ortho_init=False), seed=1, **TINY)
    with torch.no_grad():
        model.policy.core.action_head.weight.mul_(20)  # far from uniform, so a misaligned action would show
    collected(model)
    assert model.rollout_buffer.episode_starts[1:].any(), "the rollout should cross an episode start"
    for batch in model.rollout_buffer.get(model.batch_size):
        assert isinstance(batch.observations, SequenceBatch)
        with torch.no_grad():
            values, log_prob, _ = model.policy.evaluate_actions(batch.observations, batch.actions.long().flatten())
        torch.testing.assert_close(log_prob, batch.old_log_prob, rtol=0, atol=1e-5)
        torch.testing.assert_close(values, batch.old_values, rtol=0, atol=1e-5)


def test_buffer_keeps_only_the_state_at_each_sequence_start():
    model = PlasticPPO("PlasticLstmPolicy", cartpole(2), policy_kwargs=dict(hidden_size=8), **TINY)
    policy, buffer = model.policy, model.rollout_buffer
    assert buffer.sequence_states.shape == (16 // 8, 2, policy.state_size)
    assert buffer.state_storage_bytes == 2 * 2 * policy.state_size * 4
    assert policy.state_size == 8 + 8 + 8 * 8 + 8 + 8  # actor h, c, 8x8 trace; critic LSTM h, c
    static = PlasticPPO("PlasticMlpPolicy", cartpole(2), policy_kwargs=dict(plastic=False), **TINY)
    assert static.policy.is_stateless and static.rollout_buffer.sequence_length == 1
    assert static.rollout_buffer.state_storage_bytes == 0


def test_episode_start_zeroes_the_state_and_rows_do_not_interact():
    model = PlasticPPO("PlasticRnnPolicy", cartpole(1), policy_kwargs=dict(hidden_size=6, critic="shared"), **TINY)
    policy = model.policy
    torch.manual_seed(0)
    length, rows = 6, 3
    obs = torch.randn(length, rows, 4)
    starts = torch.zeros(length, rows)
    starts[3, 0] = 1.0  # row 0: a new episode begins at step 3
    initial = torch.randn(rows, policy.state_size)  # arbitrary (non-zero) states entering the sequences
    actions = torch.zeros(length * rows, dtype=torch.long)
    with torch.no_grad():
        values, _, _ = policy.evaluate_actions(SequenceBatch(obs, starts, initial), actions)
        values = values.view(length, rows)
        # Row 0 from step 3 on equals a fresh episode started there from the zero state.
        fresh, _, _ = policy.evaluate_actions(
            SequenceBatch(obs[3:, :1], torch.zeros(length - 3, 1), torch.zeros(1, policy.state_size)), actions[: length - 3]
        )
        torch.testing.assert_close(values[3:, 0], fresh, rtol=0, atol=1e-6)
        # Changing row 2's inputs and state changes nothing in rows 0 and 1.
        obs2, initial2 = obs.clone(), initial.clone()
        obs2[:, 2] += 5.0
        initial2[2] = -initial2[2]
        other, _, _ = policy.evaluate_actions(SequenceBatch(obs2, starts, initial2), actions)
        torch.testing.assert_close(other.view(length, rows)[:, :2], values[:, :2], rtol=0, atol=0)
        assert not torch.allclose(other.view(length, rows)[:, 2], values[:, 2])


# ------------------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("policy, kwargs", [
    ("PlasticLstmPolicy", dict(hidden_size=16)),
    ("PlasticRnnPolicy", dict(hidden_size=16, modulation="retroactive")),
    ("PlasticMlpPolicy", dict(hidden_sizes=[16, 16])),
])
def test_static_twin_has_no_plasticity_parameters_and_a_matched_count(policy, kwargs):
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    plastic = PlasticPPO(policy, env, policy_kwargs=kwargs, **TINY).policy.core
    static = PlasticPPO(policy, env, policy_kwargs={**kwargs, "plastic": False}, **TINY).policy.core
    assert any("plasticity" in name for name, _ in plastic.named_parameters())
    assert not any("plasticity" in name for name, _ in static.named_parameters())
    assert abs(count_parameters(static) - count_parameters(plastic)) / count_parameters(plastic) < 0.05
    assert static.config["plastic"] is False


def test_discrete_and_box_action_spaces():
    box = PlasticPPO("PlasticLstmPolicy", make_vec_env("Pendulum-v1", n_envs=2, seed=0), policy_kwargs=dict(hidden_size=8), **TINY)
    box.learn(64)
    obs = box.env.reset()
    actions, state = box.predict(obs, deterministic=False)
    assert actions.shape == (2, 1) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 2.0)  # clipped to Pendulum's bounds
    assert state.shape == (2, box.policy.actor_state_size)
    discrete = PlasticPPO("PlasticMlpPolicy", cartpole(2), **TINY).learn(64)
    actions, _ = discrete.predict(discrete.env.reset(), deterministic=True)
    assert actions.shape == (2,) and set(actions.tolist()) <= {0, 1}
    single, _ = discrete.predict(discrete.env.reset()[0])  # one unbatched observation
    assert np.ndim(single) == 0


def test_bad_arguments_are_one_sentence_errors():
    with pytest.raises(ValueError, match="sequence_length"):
        PlasticPPO("PlasticLstmPolicy", cartpole(1), n_steps=20, batch_size=20, sequence_length=8)
    with pytest.raises(ValueError, match="batch_size"):
        PlasticPPO("PlasticLstmPolicy", cartpole(1), n_steps=16, batch_size=12, sequence_length=8)
    with pytest.raises(ValueError, match="unknown argument 'hiden_size'.*hidden_size"):
        PlasticPPO("PlasticLstmPolicy", cartpole(1), policy_kwargs=dict(hiden_size=8), **TINY)
    with pytest.raises(ValueError, match="critic must be one of"):
        PlasticPPO("PlasticLstmPolicy", cartpole(1), policy_kwargs=dict(critic="twin"), **TINY)
    with pytest.raises(ValueError, match="policy must be one of"):
        PlasticPPO("MlpLstmPolicy", cartpole(1), **TINY)


# ------------------------------------------------------------------------------------- the SB3 API
def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    model = PlasticPPO("PlasticLstmPolicy", cartpole(2), policy_kwargs=dict(hidden_size=8), seed=3, **TINY).learn(64)
    model.save(tmp_path / "model.zip")
    loaded = PlasticPPO.load(tmp_path / "model.zip", env=cartpole(2))
    assert loaded.sequence_length == model.sequence_length and loaded.policy.critic_kind == "separate"
    env = cartpole(2, seed=5)
    obs, state_a, state_b, starts = env.reset(), None, None, np.ones(2, dtype=bool)
    for _ in range(30):
        action_a, state_a = model.predict(obs, state_a, starts, deterministic=True)
        action_b, state_b = loaded.predict(obs, state_b, starts, deterministic=True)
        np.testing.assert_array_equal(action_a, action_b)
        np.testing.assert_array_equal(state_a, state_b)
        obs, _, starts, _ = env.step(action_a)
    # Training continues after loading.
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.num_timesteps == model.num_timesteps + 64


def test_evaluate_policy_carries_and_resets_the_state():
    model = PlasticPPO("PlasticLstmPolicy", cartpole(1), policy_kwargs=dict(hidden_size=8, ortho_init=False), seed=0, **TINY)
    with torch.no_grad():
        model.policy.core.action_head.weight.mul_(30)  # actions depend strongly on the hidden state
    rewards, _ = evaluate_policy(model, cartpole(1, seed=11), n_eval_episodes=3, deterministic=True, return_episode_rewards=True)
    # The same episodes played with the bare core policy, its state zeroed at each episode start.
    env = gym.make("CartPole-v1")
    core, expected = model.policy.core, []
    obs, _ = env.reset(seed=11)
    for _ in range(3):
        state, total, done = None, 0.0, False
        while not done:
            with torch.no_grad():
                action, state = core.act(torch.as_tensor(obs).unsqueeze(0), state, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + reward, terminated or truncated
        expected.append(total)
        obs, _ = env.reset()
    assert rewards == expected
    # Carrying the state across episodes (no reset) would play differently: the state matters.
    carried, state = [], None
    obs, _ = env.reset(seed=11)
    for _ in range(3):
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action, state = core.act(torch.as_tensor(obs).unsqueeze(0), state, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + reward, terminated or truncated
        carried.append(total)
        obs, _ = env.reset()
    assert carried != expected


def test_learn_with_callbacks_progress_bar_tensorboard_subproc_and_vecnormalize(tmp_path):
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv))
    eval_env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=1), training=False, norm_reward=False)
    model = PlasticPPO("PlasticMlpPolicy", env, policy_kwargs=dict(hidden_sizes=[8, 8]), tensorboard_log=str(tmp_path / "tb"), **TINY)
    callbacks = [
        EvalCallback(eval_env, n_eval_episodes=1, eval_freq=32, log_path=str(tmp_path / "eval"), verbose=0),
        CheckpointCallback(save_freq=32, save_path=str(tmp_path / "ckpt"), name_prefix="plastic"),
    ]
    try:
        model.learn(128, callback=callbacks, progress_bar=True)
    finally:
        env.close()
    assert model.num_timesteps == 128
    assert (tmp_path / "eval" / "evaluations.npz").is_file()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert env.obs_rms.count > 100  # VecNormalize saw the rollouts
    PlasticPPO.load(next((tmp_path / "ckpt").iterdir()))  # a checkpoint loads


def test_predict_rejects_a_state_of_the_wrong_size():
    model = PlasticPPO("PlasticLstmPolicy", cartpole(2), policy_kwargs=dict(hidden_size=8), **TINY)
    with pytest.raises(ValueError, match="state must have shape"):
        model.predict(model.env.reset(), state=np.zeros((2, 3)))


def test_state_helpers_round_trip():
    model = PlasticPPO("PlasticLstmPolicy", cartpole(2), policy_kwargs=dict(hidden_size=4), **TINY)
    state = state_ops.map_state(lambda t: torch.randn_like(t), model.policy.initial_state(3))
    flat = model.policy.flatten_state(state)
    assert flat.shape == (3, model.policy.state_size)
    torch.testing.assert_close(model.policy.flatten_state(model.policy.unflatten_state(flat)), flat)


@pytest.mark.parametrize("env_id, policy", [("CartPole-v1", "PlasticLstmPolicy"), ("Pendulum-v1", "PlasticMlpPolicy")])
def test_hand_written_distribution_equals_the_cores(env_id, policy):
    model = PlasticPPO(policy, make_vec_env(env_id, n_envs=1), policy_kwargs=dict(ortho_init=False, log_std_init=-0.3), **TINY)
    policy = model.policy
    torch.manual_seed(0)
    obs = torch.randn(5, *model.observation_space.shape)
    with torch.no_grad():
        output, _ = policy.core(policy._features(obs), policy.core.initial_state(5))
        actions = policy._sample(output.action_params)
        reference = policy.core.distribution(output)
        torch.testing.assert_close(policy._log_prob(output.action_params, actions), reference.log_prob(actions))
        torch.testing.assert_close(policy._entropy(output.action_params), reference.entropy())


# ------------------------------------------------------------------------------ rules-only actors
@pytest.mark.parametrize("policy,kwargs", [
    ("PlasticMlpPolicy", dict(hidden_sizes=[8], random_weights=True, rule="abcd")),
    ("PlasticRnnPolicy", dict(hidden_size=8, random_weights=True)),
])
def test_rules_only_update_replays_the_weights_each_episode_drew(policy, kwargs):
    # Weights are redrawn at every episode start (inside sequences too); the update must see the same ones.
    model = PlasticPPO(policy, cartpole(3), policy_kwargs=dict(ortho_init=False, **kwargs), seed=1,
                       n_steps=32, batch_size=48, sequence_length=16, n_epochs=1)
    with torch.no_grad():  # far from uniform, so other weights would show
        for name, param in model.policy.core.named_parameters():
            if "alpha" in name or name.startswith("action_head"):
                param.mul_(20)
    collected(model)
    assert model.rollout_buffer.episode_starts[1:].any(), "the rollout should cross an episode start"
    assert model.policy.critic is not None and not any("weight" in name for name, _ in model.policy.critic.named_buffers())
    for batch in model.rollout_buffer.get(model.batch_size):
        with torch.no_grad():
            values, log_prob, _ = model.policy.evaluate_actions(batch.observations, batch.actions.long().flatten())
        torch.testing.assert_close(log_prob, batch.old_log_prob, rtol=0, atol=1e-5)
        torch.testing.assert_close(values, batch.old_values, rtol=0, atol=1e-5)
    model.learn(64)  # and trains


def test_rules_only_episodes_start_from_different_weights_that_the_seed_repeats():
    def first_weights(seed):
        model = PlasticPPO("PlasticRnnPolicy", cartpole(2), policy_kwargs=dict(hidden_size=6, random_weights=True), seed=seed, **TINY)
        policy = model.policy
        state = model._running_state(2)
        again = policy._start_episodes(state, torch.tensor([1.0, 0.0]))
        actor, actor_again = policy.actor_state(state), policy.actor_state(again)
        return actor.weight_hh, actor_again.weight_hh
    w, w_next = first_weights(0)
    assert not torch.equal(w[0], w[1]), "two envs should start from different weights"
    assert not torch.equal(w[0], w_next[0]), "a new episode should draw new weights"
    torch.testing.assert_close(w[1], w_next[1], rtol=0, atol=0)  # the row that did not restart keeps its weights
    w_same, w_next_same = first_weights(0)
    assert torch.equal(w, w_same) and torch.equal(w_next, w_next_same)
    assert not torch.equal(first_weights(1)[0], w)
