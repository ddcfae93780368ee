"""scripts/metaplastic_weights.py: the size of a continual run's weights and MetaplasticAdam's factor on them."""

from __future__ import annotations

import math

import pytest
import torch

from plastic_rl.runs import save_checkpoint


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("metaplastic_weights")


def fake_continual_run(path, optimizer="metaplastic", meta=2.0, meta_groups=None, exported=False):
    path.mkdir()
    policy = {"layer.weight": torch.tensor([[0.0, -0.25, 1.0]]), "layer.bias": torch.tensor([5.0]),
              "out.weight": torch.tensor([[0.0, -0.25, 1.0]])}
    if exported:  # A2C and ES learners save plastic_rl's exported policy, not a bare state dict
        policy = {"kind": "recurrent", "config": {}, "state_dict": policy}
    config = {"optimizer": optimizer, "meta": meta, "meta_groups": meta_groups or {}}
    save_checkpoint({"learner": {"policy": policy}, "config": config}, path / "checkpoint.pt")
    return path


def test_statistics_by_hand(script):
    stats = script.weight_statistics({"w": torch.tensor([[0.0, -0.25, 1.0]]), "b": torch.tensor([5.0])}, meta=2.0)
    assert list(stats) == ["w"]  # 1-D tensors get plain Adam: not reported
    assert stats["w"]["mean_abs"] == pytest.approx(1.25 / 3)
    assert stats["w"]["share_above_half"] == pytest.approx(1 / 3)
    assert stats["w"]["share_positive"] == pytest.approx(1 / 3)  # 0 counts as not positive
    assert stats["w"]["median_f_meta"] == pytest.approx(1 - math.tanh(0.5) ** 2)  # the middle |W| is 0.25
    signs = script.weight_statistics({"alpha": torch.tensor([[0.1, 0.2, -0.7]])}, meta=2.0)["alpha"]
    assert (signs["share_positive"], signs["share_above_half"]) == pytest.approx((2 / 3, 1 / 3))


def test_cli_reads_the_runs_own_meta_and_rejects_other_folders(script, tmp_path, capsys):
    meta_run = fake_continual_run(tmp_path / "meta")
    adam_run = fake_continual_run(tmp_path / "adam", optimizer="adam", meta=1.0)
    assert script.main([str(meta_run), str(adam_run)]) == 0
    out = capsys.readouterr().out
    assert "trained with m = 2; f_meta at m = 2" in out
    assert "trained with m = 0; f_meta at m = 3" in out  # an Adam run keeps a meta in its config that it never used
    rows = [line for line in out.splitlines() if line.startswith("| layer.weight |")]
    assert rows == [f"| layer.weight | 2 | 0.417 | 0.333 | 0.333 | {1 - math.tanh(2 * 0.25) ** 2:.3f} |",   # m = 2
                    f"| layer.weight | 3 | 0.417 | 0.333 | 0.333 | {1 - math.tanh(3 * 0.25) ** 2:.3f} |"]   # m = 3
    (tmp_path / "other").mkdir()
    save_checkpoint({"policy": {}}, tmp_path / "other" / "checkpoint.pt")
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(tmp_path / "other")])
    assert exit_info.value.code == 2 and "is not a continual run" in capsys.readouterr().err


def test_a_run_with_meta_groups_reads_each_tensor_at_its_own_m(script, tmp_path, capsys):
    run = fake_continual_run(tmp_path / "groups", meta=2.0, meta_groups={"out.*": 8})
    assert script.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert f"| layer.weight | 2 | 0.417 | 0.333 | 0.333 | {1 - math.tanh(2 * 0.25) ** 2:.3f} |" in out
    assert f"| out.weight | 8 | 0.417 | 0.333 | 0.333 | {1 - math.tanh(8 * 0.25) ** 2:.3f} |" in out
    assert script.main([str(run), "--meta", "3"]) == 0  # one m given: every tensor at it
    out = capsys.readouterr().out
    assert f"| out.weight | 3 | 0.417 | 0.333 | 0.333 | {1 - math.tanh(3 * 0.25) ** 2:.3f} |" in out


def test_an_a2c_or_es_run_reads_the_exported_policys_tensors(script, tmp_path, capsys):
    run = fake_continual_run(tmp_path / "a2c", exported=True)
    assert script.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert f"| layer.weight | 2 | 0.417 | 0.333 | 0.333 | {1 - math.tanh(2 * 0.25) ** 2:.3f} |" in out
    assert "| out.weight | 2 |" in out
