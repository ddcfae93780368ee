"""The metaplasticity effect, small and seeded: MetaplasticAdam keeps the first digits task, Adam forgets it.

A smaller, faster version of scripts/digits_metaplasticity.py (the README figures):
hidden 256, 5 epochs per task, lr 0.02 instead of 1024 / 40 / 0.005. Measured when
written (seed 0): task 1 falls from 0.96 to 0.42 with meta = 0 and from 0.97 to
0.66 with meta = 3 (seeds 1-2: 0.28 / 0.38 against 0.66 / 0.69).
"""

import pytest
import torch

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits(load_script):
    return load_script("digits_metaplasticity")


def test_metaplastic_adam_forgets_less_than_adam(digits):
    torch.set_num_threads(1)
    tasks = digits.load_digits_tasks()
    small = dict(hidden=256, epochs=5, batch_size=20, lr=0.02, tasks=tasks)
    adam = digits.run_sequence(0.0, seed=0, **small)
    meta = digits.run_sequence(3.0, seed=0, **small)
    for run in (adam, meta):
        assert run["task1_after_task1"] > 0.9 and run["task2_after_task2"] > 0.9  # both learn both tasks
    assert adam["task1_after_task2"] < 0.6  # plain Adam overwrites task 1
    assert meta["task1_after_task2"] > adam["task1_after_task2"] + 0.15
    # The mechanism: consolidated hidden weights grow, so f_meta shrinks their steps toward zero.
    assert meta["mean_abs_hidden_weight"] > adam["mean_abs_hidden_weight"]


def test_permuted_task_is_a_permutation_of_the_first(digits):
    first, second = digits.load_digits_tasks()
    assert torch.equal(first.y_train, second.y_train)
    assert torch.equal(first.x_train.sort(dim=1).values, second.x_train.sort(dim=1).values)
    assert not torch.equal(first.x_train, second.x_train)
