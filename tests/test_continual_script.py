"""scripts/continual_metaplasticity.py: the variants, their run folders, the table, bad options."""

from __future__ import annotations

import csv
import fcntl
import json
import threading

import pytest
import yaml

TWO_MAZES = """\
tasks:
  - {name: pillars, env_id: plastic_rl/Maze-v0, kwargs: {size: 7, episode_length: 20}}
  - {name: open, env_id: plastic_rl/Maze-v0, kwargs: {size: 7, episode_length: 20, layout: open}}
"""


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("continual_metaplasticity")


def test_l2_variant_without_references_writes_its_row(script, tmp_path, capsys):
    (tmp_path / "mazes.yaml").write_text(TWO_MAZES)
    (tmp_path / "a2c.yaml").write_text("hidden_size: 8\nbatch_size: 4\n")
    out = tmp_path / "out"
    args = ["--sequence", str(tmp_path / "mazes.yaml"), "--method", "a2c", "--variants", "fp-l2", "--seeds", "0",
            "--steps-per-task", "80", "--eval-episodes", "2", "--l2-strength", "0.5", "--no-reference",
            "--env-kwargs", "{wall_penalty: 0.1}", "--method-config", str(tmp_path / "a2c.yaml"), "--out", str(out)]
    assert script.main(args) == 0
    run = out / "runs" / "plastic-fp-l2-seed0"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["regularizer"], config["regularizer_strength"], config["reference"]) == ("l2", 0.5, False)
    assert config["env_kwargs"] == {"wall_penalty": 0.1} and config["binary"] is False
    rows = list(csv.DictReader((out / "continual_metaplasticity.csv").open()))
    assert [r["name"] for r in rows] == ["plastic-fp-l2"]
    assert rows[0]["mean_forward_transfer_raw"] == ""  # no from-scratch references: no forward transfer
    assert json.loads((out / "continual_metaplasticity.json").read_text())["runs"][0]["env_steps"] > 0
    assert float(rows[0]["mean_learning"]) == pytest.approx(float(json.loads((run / "summary.json").read_text())["mean_learning"]))
    assert "| plastic-fp-l2 |" in capsys.readouterr().out
    # A table written before the mean_learning column existed: its rows keep a blank there.
    report = json.loads((out / "continual_metaplasticity.json").read_text())
    del report["runs"][0]["mean_learning"]
    (out / "continual_metaplasticity.json").write_text(json.dumps(report))
    # A second process (another variant, same OUT) adds its row and keeps the first one's.
    assert script.main([*args[:args.index("--variants") + 1], "fp-adam", *args[args.index("--variants") + 2:]]) == 0
    rows = list(csv.DictReader((out / "continual_metaplasticity.csv").open()))
    assert [r["name"] for r in rows] == ["plastic-fp-l2", "plastic-fp-adam"]
    assert rows[0]["mean_learning"] == "" and rows[1]["mean_learning"] != ""
    # Re-tabulating the first variant replaces its row in place; both commands are recorded. The merge waits
    # for the table's lock, so two processes finishing together cannot each drop the other's row.
    with open(out / script.LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report_only = threading.Thread(target=script.main, args=([*args, "--report-only"],))
        report_only.start()
        report_only.join(timeout=1.0)
        assert report_only.is_alive()  # blocked on the lock, table untouched
        assert len(json.loads((out / "continual_metaplasticity.json").read_text())["commands"]) == 2
    report_only.join(timeout=30)
    assert not report_only.is_alive()
    report = json.loads((out / "continual_metaplasticity.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["plastic-fp-l2", "plastic-fp-adam"]
    assert len(report["commands"]) == 3 and report["commands"][-1].endswith("--report-only")
    # Run again without --no-reference, a finished run gets its from-scratch references: forward transfer appears.
    assert script.main([a for a in args if a != "--no-reference"]) == 0
    rows = {r["name"]: r for r in csv.DictReader((out / "continual_metaplasticity.csv").open())}
    assert rows["plastic-fp-l2"]["mean_forward_transfer_raw"] != "" and rows["plastic-fp-adam"]["mean_forward_transfer_raw"] == ""
    assert yaml.safe_load((run / "config.yaml").read_text())["reference"] is True


@pytest.mark.parametrize("bad", ["[1, 2]", "{a: [", "3"])
def test_env_kwargs_must_be_a_mapping(script, tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--env-kwargs", bad, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "--env-kwargs must be a mapping" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_meta_groups_runs_carry_their_tag_and_groups(script, tmp_path, capsys):
    (tmp_path / "mazes.yaml").write_text(TWO_MAZES)
    (tmp_path / "a2c.yaml").write_text("hidden_size: 8\nbatch_size: 4\n")
    out = tmp_path / "out"
    args = ["--sequence", str(tmp_path / "mazes.yaml"), "--method", "a2c", "--variants", "binary-meta", "--metas", "2",
            "--seeds", "0", "--steps-per-task", "80", "--eval-episodes", "2", "--no-reference",
            "--method-config", str(tmp_path / "a2c.yaml"), "--meta-groups", "{action_head.weight: 30}", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)  # no --tag: its runs would take the plain m = 2 runs' folders
    assert exit_info.value.code == 2 and "--meta-groups needs --tag" in capsys.readouterr().err
    assert not out.exists()
    assert script.main([*args, "--tag", "out30"]) == 0
    config = yaml.safe_load((out / "runs" / "plastic-binary-meta-m2-out30-seed0" / "config.yaml").read_text())
    assert (config["optimizer"], config["meta"], config["meta_groups"]) == ("metaplastic", 2.0, {"action_head.weight": 30})
    assert "| plastic-binary-meta-m2-out30 |" in capsys.readouterr().out


def test_method_override_merges_over_the_method_config(script, tmp_path, capsys):
    assert script.merged({"n_steps": 8, "policy_kwargs": {"hidden_sizes": [4], "rule": "hebbian"}},
                         {"policy_kwargs": {"rule": "oja"}, "n_epochs": 2}) == \
        {"n_steps": 8, "policy_kwargs": {"hidden_sizes": [4], "rule": "oja"}, "n_epochs": 2}
    (tmp_path / "mazes.yaml").write_text(TWO_MAZES)
    (tmp_path / "a2c.yaml").write_text("hidden_size: 8\nbatch_size: 4\n")
    out = tmp_path / "out"
    args = ["--sequence", str(tmp_path / "mazes.yaml"), "--method", "a2c", "--variants", "binary-adam", "--seeds", "0",
            "--steps-per-task", "80", "--eval-episodes", "2", "--no-reference", "--method-config", str(tmp_path / "a2c.yaml"),
            "--method-override", "{binary_plasticity: true, alpha_scale: 0.05}", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)  # no --tag: its runs would take the runs' folders without the override
    assert exit_info.value.code == 2 and "--method-override needs --tag" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        script.main([*args[:-3], "[1]", "--tag", "bp", "--out", str(out)])
    assert exit_info.value.code == 2 and "--method-override must be a mapping" in capsys.readouterr().err
    assert not out.exists()
    assert script.main([*args, "--tag", "bp"]) == 0
    config = yaml.safe_load((out / "runs" / "plastic-binary-adam-bp-seed0" / "config.yaml").read_text())
    assert config["method_config"] == {"hidden_size": 8, "batch_size": 4, "binary_plasticity": True, "alpha_scale": 0.05}
