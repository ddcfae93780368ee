"""A run made before a config field existed resumes with that field at its default (and only then)."""

import pytest
import yaml

from plastic_rl.agents.a2c import Config, train
from plastic_rl.config import config_from_dict
from plastic_rl.runs import RunDirError, load_checkpoint, save_checkpoint

TINY = dict(maze_size=5, episode_length=10, batch_size=2, hidden_size=4, iterations=1, tensorboard=False, progress=False)


def _drop_field(run_dir, name):
    """Make the run look as if it had been written before config field ``name`` existed."""
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    del ckpt["config"][name]
    save_checkpoint(ckpt, run_dir / "checkpoint.pt")
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    del data[name]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_old_run_resumes_with_a_new_field_at_its_default(tmp_path):
    train(Config(**TINY), tmp_path / "run")
    _drop_field(tmp_path / "run", "binary")
    summary = train(config_from_dict(Config, {**TINY, "iterations": 2}), tmp_path / "run", resume=True)
    assert summary["iterations"] == 2


def test_old_run_still_refuses_a_new_field_changed_from_its_default(tmp_path):
    train(Config(**TINY), tmp_path / "run")
    _drop_field(tmp_path / "run", "binary")
    with pytest.raises(RunDirError, match="config field 'binary' is False in the run but True now"):
        train(Config(**{**TINY, "iterations": 2, "binary": True}), tmp_path / "run", resume=True)
