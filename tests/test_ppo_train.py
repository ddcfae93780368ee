"""The ppo trainer: run folder, resume after SIGKILL, plastic-rl evaluate on its runs, config errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
import yaml

from plastic_rl.agents import ppo_train
from plastic_rl.agents.evaluate import evaluate_run
from plastic_rl.agents.ppo import PlasticPPO
from plastic_rl.config import ConfigError, config_from_dict
from plastic_rl.runs import CHECKPOINT_FILE, load_checkpoint, read_metrics

TINY = dict(n_envs=2, n_steps=16, batch_size=32, sequence_length=8, n_epochs=1, checkpoint_every=1, progress=False)


def cartpole_config(**overrides) -> ppo_train.Config:
    return ppo_train.Config(**{**dict(env_id="CartPole-v1", policy="lstm", hidden_size=8, total_timesteps=64, **TINY), **overrides})


def test_run_folder_holds_everything_and_model_zip_loads(tmp_path):
    summary = ppo_train.train(cartpole_config(), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "checkpoint.pt", "summary.json", "learning_curve.png", "model.zip",
                 "vecnormalize.pkl", "run.json"):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    rows = read_metrics(run / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2] and int(rows[-1]["env_steps"]) == 64
    assert summary["env_steps"] == 64 and summary["trainer"] == "ppo"
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"] == "ppo"
    checkpoint = load_checkpoint(run / CHECKPOINT_FILE)
    assert checkpoint["env"]["id"] == "CartPole-v1" and checkpoint["policy"]["kind"] == "recurrent"
    model = PlasticPPO.load(run / "model.zip")
    for key, value in model.policy.core.state_dict().items():
        torch.testing.assert_close(value, checkpoint["policy"]["state_dict"][key])


def test_restore_puts_back_weights_optimizer_steps_and_vecnormalize(tmp_path):
    config = cartpole_config()
    ppo_train.train(config, tmp_path / "run")
    checkpoint = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)
    env = ppo_train.make_env(config, seed=1)
    model = ppo_train.make_model(config, env)
    ppo_train.restore(model, env, checkpoint)
    for key, value in model.policy.state_dict().items():
        torch.testing.assert_close(value, checkpoint["model"]["policy_state"][key], rtol=0, atol=0)
    assert model.num_timesteps == 64 and model._n_updates == checkpoint["model"]["n_updates"] > 0
    assert model.policy.optimizer.state_dict()["state"][0]["step"] == checkpoint["model"]["optimizer"]["state"][0]["step"]
    assert env.obs_rms.count == checkpoint["vec_normalize"]["obs_count"] > 64
    env.close()


def test_resume_after_sigkill_continues_the_same_run(tmp_path):
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump({"trainer": "ppo", "env_id": "CartPole-v1", "policy": "lstm", "hidden_size": 8,
                                           "total_timesteps": 1_000_000, **TINY, "checkpoint_every": 2}))
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "plastic_rl.agents.cli", "train", "--config", str(config_file),
                                "--run-dir", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            path = run_dir / CHECKPOINT_FILE
            if path.is_file() and load_checkpoint(path)["step"] >= 4:
                break
            assert process.poll() is None, "the training process ended early"
            time.sleep(0.5)
        else:
            pytest.fail("no checkpoint at iteration >= 4 within 240 s")
        time.sleep(1.0)  # let it log a row or two after the checkpoint, which the resume must drop
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    step = int(checkpoint["step"])
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    data.pop("trainer")
    config = config_from_dict(ppo_train.Config, {**data, "total_timesteps": (step + 2) * 32})
    summary = ppo_train.train(config, run_dir, resume=True)
    rows = read_metrics(run_dir / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(1, step + 3))
    assert [int(r["env_steps"]) for r in rows] == [32 * i for i in range(1, step + 3)]
    walls = [float(r["wall_time"]) for r in rows]
    assert walls == sorted(walls)  # the wall clock continues from the checkpoint's
    assert summary["env_steps"] == (step + 2) * 32
    final = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert final["step"] == step + 2 and final["model"]["n_updates"] == checkpoint["model"]["n_updates"] + 2
    assert final["vec_normalize"]["obs_count"] > checkpoint["vec_normalize"]["obs_count"]
    assert yaml.safe_load((run_dir / "run.json").read_text())["resumes"][0]["at_iteration"] == step


def test_evaluate_reads_a_quadruped_ppo_run(tmp_path):
    config = ppo_train.Config(env_id="plastic_rl/AntLegFailure-v0", env_kwargs={"failed_legs": "random"}, episode_length=20,
                              policy="mlp", hidden_sizes=(8,), output_activation="tanh", total_timesteps=32, **TINY)
    ppo_train.train(config, tmp_path / "ant")
    report = evaluate_run(tmp_path / "ant", failures="front_left", episodes=1, failure_step=10, quiet=True, plot=False)
    assert set(report["conditions"]) >= {"intact", "front_left"}
    assert report["env"]["episode_length"] == 20
    checkpoint = load_checkpoint(tmp_path / "ant" / CHECKPOINT_FILE)
    assert checkpoint["obs_norm"]["clip"] == 10.0 and checkpoint["obs_norm"]["mean"].shape == (105,)


@pytest.mark.parametrize("overrides, message", [
    (dict(policy="gru"), "'policy' must be one of lstm, rnn, spiking, mlp"),
    (dict(n_steps=20), "'n_steps' \\(20\\) must be a multiple of 'sequence_length'"),
    (dict(critic="twin"), "'critic' must be one of separate, shared"),
    (dict(gamma=1.5), "'gamma' must be in \\[0, 1\\]"),
    (dict(random_weights=True), "'random_weights' needs plastic: true, policy: mlp or rnn"),
    (dict(binary=True, policy="spiking"), "'binary' needs policy lstm, rnn or mlp"),
])
def test_config_errors_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        cartpole_config(**overrides)


def test_unknown_env_is_one_sentence_and_writes_nothing_half_done(tmp_path):
    with pytest.raises(ConfigError, match="env_id"):
        ppo_train.train(replace(cartpole_config(), env_id="NoSuchEnv-v0"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cli_trains_resumes_with_a_new_total_and_refuses_foreign_flags(tmp_path, capsys):
    from plastic_rl.agents.cli import main as cli_main

    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump({"trainer": "ppo", "env_id": "CartPole-v1", "policy": "mlp", "plastic": False,
                                           "hidden_sizes": [8], "total_timesteps": 32, **TINY}))
    run_dir = tmp_path / "run"
    assert cli_main(["train", "--config", str(config_file), "--run-dir", str(run_dir)]) == 0
    assert cli_main(["train", "--resume", str(run_dir), "--total-timesteps", "96", "--no-progress"]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["progress"] is False
    assert [int(r["env_steps"]) for r in read_metrics(run_dir / "metrics.csv")] == [32, 64, 96]
    assert cli_main(["train", "--config", str(config_file), "--iterations", "3", "--run-dir", str(tmp_path / "x")]) == 2
    assert "--iterations does not apply to the 'ppo' trainer" in capsys.readouterr().err


def test_presets_build_valid_configs():
    from plastic_rl.agents.presets import PRESETS

    for name in ("maze-ppo", "ant-ppo"):
        data = dict(PRESETS[name])
        assert data.pop("trainer") == "ppo"
        config = config_from_dict(ppo_train.Config, data, source=name)
        assert config.n_steps % config.sequence_length == 0 and config.batch_size % config.sequence_length == 0
    for path in ("configs/maze_ppo.yaml", "configs/ant_ppo.yaml"):
        data = yaml.safe_load(open(path))
        assert data.pop("trainer") == "ppo"
        config_from_dict(ppo_train.Config, data, source=path)


@pytest.mark.parametrize("overrides", [dict(policy="rnn", random_weights=True), dict(policy="mlp", hidden_sizes=(8,), random_weights=True),
                                       dict(policy="lstm", binary=True)])
def test_rules_only_and_binary_policies_train_and_export(tmp_path, overrides):
    ppo_train.train(cartpole_config(**overrides), tmp_path / "run")
    exported = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)["policy"]["config"]
    for name in ("random_weights", "binary"):
        assert exported[name] is overrides.get(name, False), name


def test_linear_learning_rate_schedule_anneals_to_zero_at_the_total(tmp_path):
    # 3 rollouts of 32 steps: SB3 sets the step size from the progress left after each rollout,
    # so the updates use 1e-3 x (1 - 32/96), x (1 - 64/96) and 0 (the last one).
    for schedule, final in (("constant", 1e-3), ("linear", 0.0)):
        config = cartpole_config(total_timesteps=96, learning_rate=1e-3, learning_rate_schedule=schedule)
        ppo_train.train(config, tmp_path / schedule)
        optimizer = load_checkpoint(tmp_path / schedule / CHECKPOINT_FILE)["model"]["optimizer"]
        assert optimizer["param_groups"][0]["lr"] == pytest.approx(final, abs=1e-12), schedule
    model = ppo_train.make_model(cartpole_config(learning_rate=1e-3, learning_rate_schedule="linear"),
                                 ppo_train.make_env(cartpole_config(), seed=0))
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.25) == pytest.approx(2.5e-4)


def test_unknown_learning_rate_schedule_is_one_sentence():
    with pytest.raises(ConfigError, match="'learning_rate_schedule' must be one of constant, linear; got 'cosine'"):
        cartpole_config(learning_rate_schedule="cosine")
