"""Actor-critic policies: shapes, distributions, parameter matching, rebuild from config, state helpers."""

import pytest
import torch

from plastic_rl import (
    MLPActorCritic,
    RecurrentActorCritic,
    build_policy,
    count_parameters,
    flatten_state,
    index_state,
    reset_state,
    unflatten_state,
)
from plastic_rl.policies import policy_kind


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_recurrent_policy_discrete(cell):
    torch.manual_seed(0)
    policy = RecurrentActorCritic(15, 4, hidden_size=16, cell=cell, modulation="retroactive")
    obs = torch.randn(5, 15)
    out, state = policy(obs)
    assert out.action_params.shape == (5, 4) and out.value.shape == (5,)
    assert state.hebb.shape == (5, 16, 16)
    dist = policy.distribution(out)
    assert dist.sample().shape == (5,)
    action, _ = policy.act(obs, state, deterministic=True)
    out2, _ = policy(obs, state)
    assert torch.equal(action, out2.action_params.argmax(-1))


def test_mlp_policy_continuous_without_value_head():
    policy = MLPActorCritic(27, 8, hidden_sizes=(32, 16), output_activation="tanh", value_head=False)
    out, state = policy(torch.randn(3, 27))
    assert out.value is None
    assert out.action_params.abs().max() <= 1
    assert [s.hebb.shape for s in state] == [(3, 32, 27), (3, 16, 32), (3, 8, 16)]
    assert policy.distribution(out).log_prob(torch.zeros(3, 8)).shape == (3,)
    assert not any("value" in n for n, _ in policy.named_parameters())


def test_mlp_plasticity_changes_behaviour_within_an_episode():
    """Same observation twice: a plastic policy answers differently the second time, a static one identically."""
    torch.manual_seed(0)
    obs = torch.randn(1, 6)
    for plastic in (True, False):
        policy = MLPActorCritic(6, 2, hidden_sizes=(8,), plastic=plastic, alpha_init=1.0, modulation="none", eta_init=0.5)
        out1, state = policy(obs)
        out2, _ = policy(obs, state)
        assert torch.allclose(out1.action_params, out2.action_params) is (not plastic)


@pytest.mark.parametrize("family,kwargs", [
    (RecurrentActorCritic, dict(obs_size=15, action_size=4, hidden_size=100)),
    (RecurrentActorCritic, dict(obs_size=15, action_size=4, hidden_size=32, cell="lstm", modulation="retroactive")),
    (MLPActorCritic, dict(obs_size=27, action_size=8, hidden_sizes=(64, 64), value_head=False)),
])
def test_matching_gives_a_fair_non_plastic_twin(family, kwargs):
    plastic = family(**kwargs)
    twin = family.matching(plastic, plastic=False)
    assert not any("plasticity" in n for n, _ in twin.named_parameters())
    n_plastic, n_twin = count_parameters(plastic), count_parameters(twin)
    assert n_plastic > count_parameters(family(**{**kwargs, "plastic": False}))
    # Within one width step of the target.
    assert abs(n_twin - n_plastic) / n_plastic < 0.02


def test_build_policy_round_trip_from_config():
    policy = RecurrentActorCritic(15, 4, hidden_size=8, modulation="none", rule="oja")
    clone = build_policy(policy_kind(policy), **policy.config)
    clone.load_state_dict(policy.state_dict())
    obs = torch.randn(2, 15)
    torch.testing.assert_close(policy(obs)[0].action_params, clone(obs)[0].action_params)
    mlp = MLPActorCritic(4, 2, width=5)
    assert build_policy("mlp", **mlp.config).config == mlp.config
    with pytest.raises(ValueError, match="policy kind must be one of 'recurrent', 'mlp'"):
        build_policy("transformer")


def test_policy_argument_errors():
    with pytest.raises(ValueError, match="action_type must be one of 'discrete', 'continuous'"):
        RecurrentActorCritic(3, 2, action_type="multibinary")
    with pytest.raises(ValueError, match="cell must be one of 'rnn', 'lstm'"):
        RecurrentActorCritic(3, 2, cell="gru")
    with pytest.raises(ValueError, match="hidden_sizes must name at least one hidden layer"):
        MLPActorCritic(3, 2, hidden_sizes=())
    with pytest.raises(ValueError, match="state must hold one entry per layer"):
        MLPActorCritic(3, 2, hidden_sizes=(4,))(torch.randn(1, 3), state=())


def test_state_helpers_on_nested_states():
    policy = MLPActorCritic(4, 2, hidden_sizes=(5,), modulation="retroactive", rule="bcm")
    _, state = policy(torch.randn(3, 4))
    _, state = policy(torch.randn(3, 4), state)  # retroactive: the trace moves from the second step on
    flat = flatten_state(state)
    assert flat.shape[0] == 3
    back = unflatten_state(flat, state)
    for a, b in zip(flatten_state(back).unbind(1), flat.unbind(1)):
        assert torch.equal(a, b)
    assert type(back[0]) is type(state[0])
    one = index_state(state, slice(1, 2))
    assert one[0].hebb.shape == (1, 5, 4)
    reset = reset_state(state, torch.tensor([False, True, False]))
    assert reset[0].hebb[1].abs().sum() == 0 and reset[0].hebb[0].abs().sum() > 0
    with pytest.raises(ValueError, match=r"flat state must have shape \(batch, "):
        unflatten_state(flat[:, :-1], state)


@pytest.mark.parametrize("kind", ["mlp", "recurrent"])
def test_export_load_round_trip_through_weights_only_torch_load(kind, tmp_path):
    from plastic_rl import build_policy, export_policy, load_policy

    config = dict(obs_size=6, action_size=3, action_type="discrete")
    config.update(hidden_sizes=(8, 8)) if kind == "mlp" else config.update(hidden_size=8)
    policy = build_policy(kind, **config)
    torch.save(export_policy(policy), tmp_path / "p.pt")
    clone = load_policy(torch.load(tmp_path / "p.pt", weights_only=True))
    obs = torch.randn(4, 6)
    (out_a, state_a), (out_b, state_b) = policy(obs), clone(obs)
    assert torch.equal(out_a.action_params, out_b.action_params)
    with pytest.raises(ValueError, match="state_dict"):
        load_policy({"kind": kind, "config": config})


@pytest.mark.parametrize("cell,binary", [("rnn", False), ("lstm", False), ("lstm", True), ("spiking", False)])
def test_run_sequence_equals_step_by_step_forward_with_episode_starts(cell, binary):
    torch.manual_seed(0)
    policy = RecurrentActorCritic(obs_size=5, action_size=3, hidden_size=7, cell=cell, binary=binary)
    length, rows = 6, 4
    x = torch.randn(length, rows, 5)
    starts = torch.zeros(length, rows)
    starts[2, 1] = starts[4, 3] = 1.0
    state = policy.initial_state(rows)
    state = policy(torch.randn(rows, 5), state)[1]  # a non-zero state entering the sequence
    params, values, stepped = [], [], state
    for t in range(length):
        stepped = policy.reset_state(stepped, starts[t])
        output, stepped = policy(x[t], stepped)
        params.append(output.action_params)
        values.append(output.value)
    output, final = policy.run_sequence(x, state, starts)
    torch.testing.assert_close(output.action_params, torch.cat(params), rtol=0, atol=1e-6)
    torch.testing.assert_close(output.value, torch.cat(values), rtol=0, atol=1e-6)
    torch.testing.assert_close(flatten_state(final), flatten_state(stepped), rtol=0, atol=1e-6)


def test_run_sequence_of_a_rules_only_policy_equals_step_by_step_forward():
    # Its input weights live in the state (redrawn at episode starts), so nothing is projected ahead.
    policy = RecurrentActorCritic(obs_size=5, action_size=3, hidden_size=7, random_weights=True)
    length, rows = 5, 3
    x, starts = torch.randn(length, rows, 5), torch.zeros(length, rows)
    starts[2, 1] = 1.0
    torch.manual_seed(1)
    state = stepped = policy.initial_state(rows)
    params = []
    for t in range(length):
        if starts[t].any():  # as run_sequence: a reset draws a whole batch of weights, so only where one is due
            stepped = policy.reset_state(stepped, starts[t])
        output, stepped = policy(x[t], stepped)
        params.append(output.action_params)
    torch.manual_seed(1)
    policy.initial_state(rows)  # the same draws as above, in the same order
    output, final = policy.run_sequence(x, state, starts)
    torch.testing.assert_close(output.action_params, torch.cat(params), rtol=0, atol=1e-6)
    torch.testing.assert_close(flatten_state(final), flatten_state(stepped), rtol=0, atol=1e-6)
