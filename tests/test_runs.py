"""The shared run scaffolding (plastic_rl.runs.Run) and the faults a new user hit (issue: never lose data,
resume only what matches, stop cleanly on NaN, repeat exactly)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from plastic_rl.agents import a2c, es
from plastic_rl.agents.cli import main as cli_main
from plastic_rl.config import ConfigError, config_from_dict, load_yaml
from plastic_rl.runs import CHECKPOINT_FILE, RUN_FILE, NonFiniteError, Run, RunDirError, load_checkpoint, read_metrics

TINY_A2C = dict(maze_size=5, episode_length=10, batch_size=4, hidden_size=8, iterations=4, checkpoint_every=2,
                tensorboard=False, progress=False)
TINY_ES = dict(episode_length=15, popsize=4, generations=2, hidden_sizes=(8,), center_eval_episodes=1, seed=3)
TIMING_COLUMNS = {"wall_time", "seconds_per_iteration", "steps_per_second"}


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


# ------------------------------------------------------------------------------------ never lose data
def test_resume_refuses_a_folder_plastic_rl_did_not_make_and_deletes_nothing(tmp_path, capsys):
    # The reported data loss: `train --resume .` in a folder with a config.yaml but no checkpoint.
    (tmp_path / "config.yaml").write_text("trainer: a2c\n")
    (tmp_path / "notes.txt").write_text("my thesis")
    (tmp_path / ".git").mkdir()
    before = tree(tmp_path)
    assert cli_main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not look like a plastic-rl run folder" in err[0]
    assert tree(tmp_path) == before and (tmp_path / "notes.txt").read_text() == "my thesis"


def test_start_over_removes_only_the_files_a_run_writes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = a2c.Config(**TINY_A2C)
    run = Run.open(run_dir, "a2c", config, resumable=a2c.RESUMABLE_FIELDS)
    logger = run.metrics(a2c.METRIC_FIELDS)
    logger.log({"iteration": 1, "mean_reward": 1.0})
    logger.close()  # killed here: a config, a metrics file, no checkpoint
    (run_dir / "my_analysis.ipynb").write_text("{}")
    (run_dir / "figures").mkdir()
    summary = a2c.train(config, run_dir, resume=True)
    assert "starting it over" in capsys.readouterr().err
    assert (run_dir / "my_analysis.ipynb").read_text() == "{}" and (run_dir / "figures").is_dir()
    assert summary["iterations"] == 4 and len(read_metrics(run_dir / "metrics.csv")) == 4


def test_run_dir_that_is_a_file_is_refused_before_anything_is_written(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert cli_main(["train", "--preset", "maze-a2c", "--run-dir", str(target), "--iterations", "1"]) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text() == "keep me"


# ------------------------------------------------------------------------ resume only what matches
def test_a2c_resume_refuses_a_different_experiment_and_records_allowed_changes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    a2c.train(a2c.Config(**{**TINY_A2C, "iterations": 2}), run_dir)
    config_before = (run_dir / "config.yaml").read_text()
    with pytest.raises(RunDirError, match=r"config field 'hidden_size' is 8 in the run but 16 now"):
        a2c.train(a2c.Config(**{**TINY_A2C, "hidden_size": 16}), run_dir, resume=True)
    assert (run_dir / "config.yaml").read_text() == config_before  # nothing half-written

    # The demo on an existing (different) maze run is refused with one sentence, not a traceback.
    assert cli_main(["demo", "--run-dir", str(run_dir)]) == 2
    assert "cannot resume" in capsys.readouterr().err

    # Allowed: more iterations and a smaller step, both recorded in run.json.
    a2c.train(a2c.Config(**{**TINY_A2C, "iterations": 4, "learning_rate": 5e-5}), run_dir, resume=True)
    record = json.loads((run_dir / RUN_FILE).read_text())
    assert record["resumes"][-1]["at_iteration"] == 2
    assert record["resumes"][-1]["changed"] == {"iterations": [2, 4], "learning_rate": [1e-4, 5e-5]}
    # Where each piece was computed: the same seed is only reproducible step for step on one platform.
    assert record["platform"]["packages"]["torch"] == torch.__version__
    assert record["resumes"][-1]["platform"]["cpu"] and record["resumes"][-1]["platform"]["machine"]
    assert load_yaml(run_dir / "config.yaml")["learning_rate"] == 5e-5
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == 5e-5


def test_yaml_numbers_as_users_write_them_and_nan_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-4\niterations: 1e3\nadam_eps: 1.0e-8\n")
    config = config_from_dict(a2c.Config, load_yaml(path))
    assert config.learning_rate == 1e-4 and config.iterations == 1000 and config.adam_eps == 1e-8
    path.write_text("learning_rate: .nan\n")
    with pytest.raises(ConfigError, match="'learning_rate' must be a finite number"):
        config_from_dict(a2c.Config, load_yaml(path))
    with pytest.raises(ConfigError, match=r"'env_kwargs.reset_noise_scale' must be a finite number"):
        config_from_dict(es.Config, {"env_kwargs": {"reset_noise_scale": math.nan}})


# ------------------------------------------------------------------------------ sentences, not tracebacks
@pytest.mark.parametrize(
    "args, words",
    [
        (["--preset", "ant-es", "--seed", "-1"], "'seed' must be an integer in [0, 2**31)"),
        (["--preset", "ant-es", "--device", "foo"], "'device' must be a torch device"),
        (["--preset", "maze-a2c", "--seed", "-1"], "'seed' must be an integer in [0, 2**31)"),
        (["--config", "{cfg}"], "must not set max_episode_steps"),
        (["--config", "{xml}"], "is not accepted by"),
        (["--config", "{discrete}"], "continuous-action policies"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_and_nothing_written(tmp_path, capsys, args, words):
    configs = {
        "cfg": {"trainer": "es", "env_kwargs": {"max_episode_steps": 10}},
        "xml": {"trainer": "es", "env_kwargs": {"xml_file": str(tmp_path / "missing.xml")}},
        "discrete": {"trainer": "es", "env_id": "CartPole-v1", "env_kwargs": {}},
    }
    for name, data in configs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"
    argv = ["train", *[a.format(**{k: str(tmp_path / f"{k}.yaml") for k in configs}) for a in args], "--run-dir", str(run_dir)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("plastic-rl: error:") and words in err[0]
    assert not run_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_only_machine_is_one_sentence(capsys, tmp_path):
    assert cli_main(["train", "--preset", "maze-a2c", "--device", "cuda", "--run-dir", str(tmp_path / "r")]) == 2
    assert "has no CUDA device" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ConfigError):
        cli_main(["--debug", "train", "--preset", "ant-es", "--seed", "-1", "--run-dir", str(tmp_path / "r")])
    with pytest.raises(ConfigError):
        cli_main(["train", "--debug", "--preset", "ant-es", "--seed", "-1", "--run-dir", str(tmp_path / "r")])


# ------------------------------------------------------------------------------------------ NaN and inf
def test_a2c_stops_on_nan_keeps_the_last_good_checkpoint_and_resumes(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    real_loss = a2c.a2c_loss
    calls = {"n": 0}

    def poisoned_at_iteration_3(rollout, config):
        calls["n"] += 1
        losses = real_loss(rollout, config)
        if calls["n"] == 3:
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(a2c, "a2c_loss", poisoned_at_iteration_3)
    good = None

    def remember(payload, path):  # the checkpoint written at iteration 2
        nonlocal good
        good = {k: v.clone() for k, v in payload["policy"]["state_dict"].items()}
        return real_save(payload, path)

    import plastic_rl.runs as runs

    real_save = runs.save_checkpoint
    monkeypatch.setattr(runs, "save_checkpoint", remember)
    with pytest.raises(NonFiniteError, match=r"loss became NaN or inf at iteration 3; .*checkpoint \(iteration 2\) is kept"):
        a2c.train(a2c.Config(**TINY_A2C), run_dir)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert checkpoint["step"] == 2
    assert all(torch.equal(checkpoint["policy"]["state_dict"][k], v) for k, v in good.items())
    assert all(torch.isfinite(v).all() for v in checkpoint["policy"]["state_dict"].values())

    monkeypatch.setattr(a2c, "a2c_loss", real_loss)
    assert cli_main(["train", "--resume", str(run_dir)]) == 0
    rows = read_metrics(run_dir / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_es_stops_on_nan_fitness_and_the_cli_says_where(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    real_center = es.searcher_center
    calls = {"n": 0}

    def center_poisoned_at_generation_2(searcher):
        calls["n"] += 1
        center = real_center(searcher)
        return center * float("nan") if calls["n"] == 3 else center  # call 1 is before generation 1

    monkeypatch.setattr(es, "searcher_center", center_poisoned_at_generation_2)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"trainer": "es", **{**TINY_ES, "hidden_sizes": [8]}}))
    assert cli_main(["train", "--config", str(tmp_path / "c.yaml"), "--run-dir", str(run_dir)]) == 3
    err = capsys.readouterr().err
    assert "center became NaN or inf at generation 2" in err and "(generation 1) is kept" in err
    assert load_checkpoint(run_dir / CHECKPOINT_FILE)["step"] == 1


# ----------------------------------------------------------------------------------------- determinism
def test_a2c_same_seed_same_metrics(tmp_path):
    for name in ("a", "b"):
        a2c.train(a2c.Config(**TINY_A2C), tmp_path / name)
    a, b = (without_timing(read_metrics(tmp_path / n / "metrics.csv")) for n in ("a", "b"))
    assert a == b and len(a) == 4
    c = tmp_path / "c"
    a2c.train(a2c.Config(**{**TINY_A2C, "seed": 1}), c)
    assert without_timing(read_metrics(c / "metrics.csv")) != a


def test_es_same_seed_same_metrics_and_resume_is_bit_identical(tmp_path):
    config = es.Config(**{**TINY_ES, "generations": 3})
    es.train(config, tmp_path / "a")
    es.train(config, tmp_path / "b")
    a, b = (without_timing(read_metrics(tmp_path / n / "metrics.csv")) for n in ("a", "b"))
    assert a == b and len(a) == 3

    # Two generations, "killed", then resumed to three: the same as the unbroken run, bit for bit.
    es.train(es.Config(**{**TINY_ES, "generations": 2}), tmp_path / "c")
    es.train(config, tmp_path / "c", resume=True)
    c = without_timing(read_metrics(tmp_path / "c" / "metrics.csv"))
    assert c == a
    unbroken, resumed = (load_checkpoint(tmp_path / n / CHECKPOINT_FILE) for n in ("a", "c"))
    for key in ("mu", "sigma"):
        assert torch.equal(unbroken["searcher"]["distribution"][key], resumed["searcher"]["distribution"][key])
    assert torch.equal(unbroken["searcher"]["clipup_velocity"], resumed["searcher"]["clipup_velocity"])
    assert torch.equal(unbroken["obs_norm"]["sum"], resumed["obs_norm"]["sum"])
    assert torch.equal(unbroken["best_params"], resumed["best_params"])


def test_ppo_same_seed_same_metrics(tmp_path):
    from plastic_rl.agents import ppo_train

    fields = dict(env_id="CartPole-v1", policy="lstm", hidden_size=8, total_timesteps=96, n_envs=2, n_steps=16,
                  batch_size=32, sequence_length=8, n_epochs=2, checkpoint_every=1, progress=False, seed=5)
    for name in ("a", "b"):
        ppo_train.train(ppo_train.Config(**fields), tmp_path / name)
    a, b = (without_timing(read_metrics(tmp_path / n / "metrics.csv")) for n in ("a", "b"))
    assert a == b and len(a) == 3
    ppo_train.train(ppo_train.Config(**{**fields, "seed": 6}), tmp_path / "c")
    assert without_timing(read_metrics(tmp_path / "c" / "metrics.csv")) != a


# ---------------------------------------------------------------------------------- progress in a log file
def test_line_progress_writes_plain_lines_with_rate_eta_and_postfix():
    import io

    from plastic_rl.runs import LineProgress

    out = io.StringIO()
    bar = LineProgress(100, "maze a2c", "it", initial=20, interval=0.0, file=out)
    bar.update(30)
    bar.set_postfix(ret="12.5")
    bar.update(10)
    bar.close()  # the last step was already written: no repeat
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("maze a2c: 50/100 it (50%)") and "min left" in lines[0]
    assert lines[1].startswith("maze a2c: 60/100 it (60%)") and lines[1].endswith("ret=12.5")
    quiet = LineProgress(10, "ppo", "step", interval=3600.0, file=out)
    quiet.update(5)
    assert len(out.getvalue().splitlines()) == 2  # within the interval: nothing
    quiet.close()
    assert out.getvalue().splitlines()[-1].startswith("ppo: 5/10 step (50%)")


def test_a2c_off_a_terminal_reports_progress_in_lines(tmp_path, capsys):
    from plastic_rl.agents import a2c

    config = a2c.Config(iterations=2, batch_size=2, episode_length=5, maze_size=5, hidden_size=4, checkpoint_every=1)
    a2c.train(config, tmp_path / "run")
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    assert "maze a2c: 2/2 it (100%)" in err
