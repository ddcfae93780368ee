"""The rules-only policy (Najarro & Risi 2020): random weights every episode, only the plasticity learned."""

from __future__ import annotations

import pytest
import torch

from plastic_rl import state as state_ops
from plastic_rl.policies import MLPActorCritic, export_policy, load_policy
from plastic_rl.random_weights import RandomWeightLinear, RandomWeightState


def rules_only(seed: int = 0, **kwargs) -> MLPActorCritic:
    torch.manual_seed(seed)
    return MLPActorCritic(6, 2, hidden_sizes=(5,), random_weights=True, rule="abcd", modulation="none",
                          value_head=False, output_activation="tanh", **kwargs)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rollout(policy, state, steps: int = 5):
    x = torch.linspace(-1, 1, 6).repeat(state[0].weight.shape[0], 1)
    actions = []
    for _ in range(steps):
        out, state = policy(x, state)
        actions.append(out.action_params)
    return torch.stack(actions), state


def test_only_the_plasticity_is_learned():
    names = [n for n, _ in rules_only().named_parameters()]
    assert not any(n.endswith(".weight") or n.endswith(".bias") for n in names if n.startswith("layers."))
    assert {n.split(".")[-1] for n in names if n.startswith("layers.")} == {"alpha", "eta", "rule_a", "rule_b", "rule_c", "rule_d"}
    with pytest.raises(ValueError, match="random_weights=True needs plastic=True"):
        MLPActorCritic(6, 2, random_weights=True, plastic=False)


def test_two_episodes_start_from_different_weights_and_the_seed_repeats_them():
    policy = rules_only()
    g = gen(7)
    first = policy.initial_state(1, generator=g)
    second = policy.initial_state(1, generator=g)  # the next episode from the same stream
    assert not torch.equal(first[0].weight, second[0].weight)
    again = policy.initial_state(1, generator=gen(7))
    for a, b in zip(first, again):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.hebb, b.hebb)
    # The weights matter: two episodes with the same learned rule act differently, a repeated seed identically.
    act_first, _ = rollout(policy, first)
    act_second, _ = rollout(policy, second)
    act_again, _ = rollout(policy, again)
    assert not torch.allclose(act_first, act_second)
    assert torch.equal(act_first, act_again)
    bound = 1 / 6**0.5
    assert first[0].weight.abs().max() <= bound and first[0].weight.std() > bound / 4


def test_reset_state_redraws_the_finished_rows_only():
    policy = rules_only()
    _, state = rollout(policy, policy.initial_state(3, generator=gen(1)))
    assert state[0].hebb.abs().sum() > 0  # the traces moved during the episode
    done = torch.tensor([True, False, False])
    new = policy.reset_state(state, done, generator=gen(2))
    for layer_old, layer_new in zip(state, new):
        assert not torch.equal(layer_new.weight[0], layer_old.weight[0])
        assert torch.all(layer_new.hebb[0] == 0)
        assert torch.equal(layer_new.weight[1:], layer_old.weight[1:]) and torch.equal(layer_new.hebb[1:], layer_old.hebb[1:])
    again = policy.reset_state(state, done, generator=gen(2))
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(new, again))


def test_a_zeroed_row_is_a_fresh_episode_with_new_weights():
    # Trainers reset finished episodes by zeroing their rows (EvoTorch, plastic_rl.state.reset_state).
    policy = rules_only()
    _, state = rollout(policy, policy.initial_state(2, generator=gen(3)))
    zeroed = state_ops.reset_state(state, torch.tensor([True, False]))
    torch.manual_seed(11)
    _, after = policy(torch.zeros(2, 6), zeroed)
    assert after[0].weight[0].abs().amax() > 0  # drawn, not left at zero
    assert torch.equal(after[0].weight[1], state[0].weight[1])
    torch.manual_seed(11)
    _, repeat = policy(torch.zeros(2, 6), zeroed)
    assert torch.equal(repeat[0].weight, after[0].weight)  # the global generator, seeded by the trainer
    # state=None starts every row from fresh weights too.
    torch.manual_seed(0)
    out_a, _ = policy(torch.ones(2, 6), None)
    assert not torch.allclose(out_a.action_params[0], out_a.action_params[1])


def test_layer_state_and_checkpoint_round_trip():
    layer = RandomWeightLinear(4, 3, rule="hebbian", modulation="simple")
    state = layer.initial_state(2, generator=gen(0))
    assert isinstance(state, RandomWeightState) and state.weight.shape == (2, 3, 4) and state.hebb.shape == (2, 3, 4)
    y, new = layer(torch.randn(2, 4), state)
    assert y.shape == (2, 3) and torch.equal(new.weight, state.weight)
    policy = rules_only()
    copy = load_policy(export_policy(policy))
    s = policy.initial_state(2, generator=gen(5))
    assert copy.config["random_weights"] is True
    assert torch.equal(rollout(policy, s)[0], rollout(copy, s)[0])


def test_recurrent_rules_only_policy_redraws_its_cell_weights_every_episode():
    from plastic_rl.policies import RecurrentActorCritic

    torch.manual_seed(0)
    policy = RecurrentActorCritic(15, 4, hidden_size=8, random_weights=True)
    cell_params = {n for n, _ in policy.cell.named_parameters()}
    assert cell_params == {"plasticity.alpha", "plasticity.modulator.weight", "plasticity.modulator.bias"}
    first = policy.initial_state(2, generator=gen(1))
    assert not torch.equal(first.weight_hh[0], first.weight_hh[1])  # each episode its own weights
    assert torch.equal(first.weight_ih, policy.initial_state(2, generator=gen(1)).weight_ih)
    x = torch.randn(2, 15)
    out, state = policy(x, first)
    new = policy.reset_state(state, torch.tensor([False, True]), generator=gen(2))
    assert torch.equal(new.weight_hh[0], state.weight_hh[0]) and not torch.equal(new.weight_hh[1], state.weight_hh[1])
    assert torch.all(new.h[1] == 0) and torch.all(new.hebb[1] == 0)
    zeroed = state_ops.reset_state(state, torch.tensor([True, False]))
    _, after = policy(x, zeroed)
    assert after.weight_hh[0].abs().amax() > 0 and torch.equal(after.weight_hh[1], state.weight_hh[1])
    with pytest.raises(ValueError, match="random_weights=True needs plastic=True and cell='rnn'"):
        RecurrentActorCritic(15, 4, cell="lstm", random_weights=True)


def test_a2c_trains_the_rules_only_recurrent_policy(tmp_path):
    from plastic_rl.agents import a2c
    from plastic_rl.config import ConfigError

    with pytest.raises(ConfigError, match="random_weights needs plastic: true and cell: rnn"):
        a2c.Config(random_weights=True, cell="lstm")
    config = a2c.Config(maze_size=7, episode_length=15, hidden_size=8, batch_size=3, iterations=2, random_weights=True,
                        progress=False, tensorboard=False)
    torch.manual_seed(config.seed)  # as train() does, so `before` is the run's initial policy
    policy = a2c.build_policy_for(config)
    assert policy.config["random_weights"] and not hasattr(policy.cell, "weight_hh")
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    a2c.train(config, tmp_path / "run")
    trained = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["policy"]["state_dict"]
    assert any(not torch.equal(trained[n], before[n]) for n in before if n.startswith("cell.plasticity"))
