"""Evolution strategies through EvoTorch: trace reset, Ray actors, checkpoints and resume, errors."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import plastic_rl.envs  # noqa: F401
from plastic_rl.agents import es
from plastic_rl.agents.cli import main as cli_main
from plastic_rl.policies import load_policy
from plastic_rl.runs import CHECKPOINT_FILE, read_metrics

# A deterministic quadruped: no leg failure, no reset noise, so every episode starts in the same state.
DETERMINISTIC_ENV = {"failed_legs": [], "reset_noise_scale": 0.0}


def tiny_config(**overrides) -> es.Config:
    fields = dict(episode_length=20, popsize=4, generations=2, hidden_sizes=(8,), center_eval_episodes=0, seed=3)
    fields.update(overrides)
    return es.Config(**fields)


def strongly_plastic_policy(config: es.Config) -> torch.nn.Module:
    """A policy whose traces change its actions a lot, so that a leaked trace would show in the returns."""
    torch.manual_seed(0)
    policy = es.build_policy(config, 105, 8)
    with torch.no_grad():
        for layer in policy.layers:
            layer.plasticity.alpha.fill_(2.0)
            layer.weight.mul_(3.0)
    return policy


def manual_returns(policy: torch.nn.Module, episodes: int, carry_state: bool, length: int = 30) -> list:
    """Returns of consecutive deterministic episodes, carrying the adapter's h across episodes or not."""
    adapter = es.EvoTorchPolicy(policy)
    env = gym.make("plastic_rl/AntLegFailure-v0", max_episode_steps=length, **DETERMINISTIC_ENV)
    returns, h = [], None
    for _ in range(episodes):
        obs, _ = env.reset(seed=0)
        h = h if carry_state else None
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action, h = adapter(torch.as_tensor(obs, dtype=torch.float32), h)
            obs, reward, terminated, truncated, _ = env.step(action.numpy())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def test_adapter_is_stateless_and_follows_evotorch_protocol():
    config = tiny_config()
    policy = strongly_plastic_policy(config)
    adapter = es.EvoTorchPolicy(policy)
    x = torch.randn(105)
    y1, h1 = adapter(x)  # h=None starts an episode
    y2, h2 = adapter(x, h1)
    y3, _ = adapter(x)  # no hidden attribute remembers the previous call
    assert y1.shape == (8,) and torch.equal(y1, y3)
    assert not torch.allclose(y1, y2)  # the traces from step 1 change step 2's action
    assert (y1.abs() <= 1).all()  # tanh output: inside Ant's action box


def test_traces_reset_between_episodes_under_evotorch():
    # Control: carrying the traces into the next episode changes its return ...
    config = tiny_config(env_kwargs=DETERMINISTIC_ENV, episode_length=30, observation_normalization=False)
    policy = strongly_plastic_policy(config)
    leaked = manual_returns(policy, 2, carry_state=True)
    fresh = manual_returns(policy, 2, carry_state=False)
    assert fresh[0] == pytest.approx(fresh[1], abs=1e-9)
    assert abs(leaked[1] - leaked[0]) > 1e-3
    # ... so if EvoTorch's rollout leaked traces, 3 episodes would not average to the first one's return.
    params = torch.nn.utils.parameters_to_vector(policy.parameters()).detach()
    fitness = {}
    for n in (1, 3):
        problem = es.make_problem(es.Config(**{**config.__dict__, "num_episodes": n}), strongly_plastic_policy(config))
        batch = problem.generate_batch(2)
        batch.access_values()[:] = params  # two identical solutions, evaluated side by side
        problem.evaluate(batch)
        fitness[n] = batch.evals[:, 0].tolist()
    # EvoTorch's rollout is one batched forward over the population; its float rounding differs from the single
    # forward above by ~1e-8 per action, which this strongly plastic, chaotic policy amplifies over 30 steps (by how
    # much depends on the CPU's kernels: 0.5 of 65 on an AVX-512 machine). A leak moves the return by far more.
    leak = abs(leaked[1] - leaked[0])
    assert abs(fitness[1][0] - fresh[0]) < 0.1 * leak
    assert fitness[3] == pytest.approx(fitness[1], rel=1e-4)  # the same batched forward: episodes repeat exactly


@pytest.mark.parametrize("algorithm", ["pgpe", "openai-es", "snes", "cem", "cmaes"])
def test_searcher_state_round_trip(algorithm):
    config = tiny_config(algorithm=algorithm, episode_length=10)
    policy = es.build_policy(config, 105, 8)
    center = torch.nn.utils.parameters_to_vector(policy.parameters()).detach()
    problem = es.make_problem(config, policy)
    searcher = es.make_searcher(config, problem, center)
    searcher.step()
    searcher.step()
    state = es.searcher_state(searcher)
    fresh = es.make_searcher(config, es.make_problem(config, es.build_policy(config, 105, 8)), center)
    es.restore_searcher_state(fresh, state)
    restored = es.searcher_state(fresh)
    assert torch.equal(es.searcher_center(fresh), es.searcher_center(searcher))
    flat = lambda d: {k: v for k, v in _flatten(d)}  # noqa: E731
    a, b = flat(state), flat(restored)
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("algorithm", ["pgpe", "snes"])
def test_population_kept_as_its_seed_is_redrawn_bit_for_bit(algorithm):
    config = tiny_config(algorithm=algorithm, episode_length=10)
    center = torch.nn.utils.parameters_to_vector(es.build_policy(config, 105, 8).parameters()).detach()
    searcher = es.make_searcher(config, es.make_problem(config, es.build_policy(config, 105, 8)), center)
    for generation in range(2):
        es._seed_everything(es._generation_seed(config, generation))
        searcher.step()
    state = es.searcher_state(searcher, population_seed=es._generation_seed(config, 1))
    assert set(state["population"]) == {"evals", "seed"}  # no popsize x parameters tensor in the checkpoint
    fresh = es.make_searcher(config, es.make_problem(config, es.build_policy(config, 105, 8)), center)
    es.restore_searcher_state(fresh, state)
    assert torch.equal(fresh.population.values, searcher.population.values)
    assert torch.equal(fresh.population.evals, searcher.population.evals)
    # The next step updates from the redrawn population exactly as the unbroken searcher does.
    for s in (searcher, fresh):
        es._seed_everything(es._generation_seed(config, 2))
        s.step()
    assert torch.equal(es.searcher_center(fresh), es.searcher_center(searcher))
    # A seed that does not redraw the population (here the wrong generation's) keeps the values instead.
    state = es.searcher_state(searcher, population_seed=es._generation_seed(config, 0))
    assert torch.equal(state["population"]["values"], searcher.population.values) and "seed" not in state["population"]


def _flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        elif isinstance(v, list):
            yield from _flatten({str(i): x for i, x in enumerate(v)}, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


# Two local Ray starts: 42 s on an idle 2-core machine, but a Ray start alone took 3.5 min there beside two
# training runs (stops 14 and 15 hit the 300 s default), so this test gets more time before it counts as hung.
@pytest.mark.timeout(900)
def test_two_ray_actors_count_steps_and_repeat_bit_for_bit_after_a_resume(tmp_path):
    import ray

    # The rules-only variant also draws weights in the actors: they must repeat too.
    fields = dict(num_actors=2, generations=3, episode_length=15, random_weights=True, center_eval_episodes=1)
    summary = es.train(tiny_config(**fields), tmp_path / "a")
    assert not ray.is_initialized()  # train shuts down the Ray it started
    rows = read_metrics(tmp_path / "a" / "metrics.csv")
    assert [int(r["generation"]) for r in rows] == [1, 2, 3]
    steps = [int(r["env_steps"]) for r in rows]
    # The actors' counts come back to the main process: at most popsize × episode_length (+ the center's
    # episode) per generation.
    assert 0 < steps[0] <= 5 * 15 and steps[0] < steps[1] < steps[2] <= 3 * 5 * 15
    assert summary["generations"] == 3 and summary["env_steps"] == steps[2]

    # Which actor evaluates which half of the population varies from generation to generation, and a
    # resume starts new actors: the episodes must still be a function of (seed, generation) only.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # one Ray for both calls
    try:
        es.train(tiny_config(**{**fields, "generations": 2}), tmp_path / "c")
        es.train(tiny_config(**fields), tmp_path / "c", resume=True)
    finally:
        ray.shutdown()
    timing = {"wall_time", "seconds_per_generation", "steps_per_second"}
    strip = lambda table: [{k: v for k, v in row.items() if k not in timing} for row in table]  # noqa: E731
    assert strip(read_metrics(tmp_path / "c" / "metrics.csv")) == strip(rows)
    unbroken, resumed = (torch.load(tmp_path / n / CHECKPOINT_FILE, weights_only=True) for n in ("a", "c"))
    assert torch.equal(unbroken["searcher"]["distribution"]["mu"], resumed["searcher"]["distribution"]["mu"])


def test_checkpoint_resume_evaluate_round_trip(tmp_path):
    from plastic_rl.agents.evaluate import evaluate_run

    run = tmp_path / "run"
    config = tiny_config(center_eval_episodes=1)
    es.train(config, run)
    checkpoint = torch.load(run / CHECKPOINT_FILE, weights_only=True)  # tensors and plain values only
    assert checkpoint["generation"] == 2 and checkpoint["env"]["id"] == "plastic_rl/AntLegFailure-v0"
    assert set(checkpoint["obs_norm"]) >= {"mean", "stdev"} and checkpoint["obs_norm"]["mean"].shape == (105,)
    assert "population" in checkpoint["searcher"] and "clipup_velocity" in checkpoint["searcher"]
    assert set(checkpoint["searcher"]["population"]) == {"evals", "seed"}  # the population as its sampling seed
    center = load_policy(checkpoint["center_policy"])
    assert torch.equal(torch.nn.utils.parameters_to_vector(center.parameters()), checkpoint["searcher"]["distribution"]["mu"])
    first_rows = read_metrics(run / "metrics.csv")

    # Resume to a new total through the CLI, as a user would.
    assert cli_main(["train", "--resume", str(run), "--generations", "4"]) == 0
    rows = read_metrics(run / "metrics.csv")
    assert [int(r["generation"]) for r in rows] == [1, 2, 3, 4]
    assert rows[:2] == first_rows  # the first two generations are kept as they were
    steps = [int(r["env_steps"]) for r in rows]
    wall = [float(r["wall_time"]) for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == 4 and wall == sorted(wall)
    resumed = torch.load(run / CHECKPOINT_FILE, weights_only=True)
    assert resumed["generation"] == 4 and resumed["searcher"]["steps_count"] == 4
    assert not torch.equal(resumed["searcher"]["distribution"]["mu"], checkpoint["searcher"]["distribution"]["mu"])
    assert (run / "summary.json").is_file() and (run / "fitness.png").is_file()

    report = evaluate_run(run, failures="front_left", episodes=1, failure_step=10, json_out=tmp_path / "eval.json", quiet=True)
    assert list(report["conditions"]) == ["intact", "front_left", "front_left@10"]
    for stats in report["conditions"].values():
        assert {"mean_return", "std_return", "mean_forward_velocity", "episodes"} <= set(stats)
        assert np.isfinite(stats["mean_return"]) and stats["episodes"] == 1
    assert (tmp_path / "eval.json").is_file() and (tmp_path / "eval.png").is_file()


def test_bad_config_values_name_the_field():
    with pytest.raises(ValueError, match=r"'algorithm' must be one of pgpe, cmaes, snes, cem, openai-es; got 'adam'"):
        es.Config(algorithm="adam")
    with pytest.raises(ValueError, match="'popsize' must be even"):
        es.Config(popsize=5)
    with pytest.raises(ValueError, match="'policy' must be one of mlp, recurrent"):
        es.Config(policy="transformer")
    with pytest.raises(ValueError, match="'alpha_scale' must be a positive number; got -1"):
        es.Config(alpha_scale=-1.0)


def test_resume_mismatch_is_refused(tmp_path):
    run = tmp_path / "run"
    es.train(tiny_config(generations=1), run)
    with pytest.raises(es.RunDirError, match="'popsize'"):
        es.train(tiny_config(generations=2, popsize=6), run, resume=True)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plastic_rl.agents.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--preset", "ant-es", "--algorithm", "adam"], "'algorithm' must be one of"),
        (["train", "--resume", "{empty}"], "cannot resume"),
        (["evaluate", "{empty}"], "has no checkpoint.pt"),
    ],
)
def test_cli_errors_exit_2_with_one_sentence(tmp_path, args, words):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _cli(*[a.format(empty=empty) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plastic-rl: error:") and words in lines[0]


def test_recurrent_lstm_state_resets_between_episodes_under_evotorch():
    # The plastic LSTM's (h, c, traces) also travel in EvoTorch's h: 2 episodes average to the first one's return.
    config = tiny_config(
        policy="recurrent", cell="lstm", hidden_size=8, env_kwargs=DETERMINISTIC_ENV, episode_length=20,
        observation_normalization=False,
    )
    torch.manual_seed(1)
    params = torch.nn.utils.parameters_to_vector(es.build_policy(config, 105, 8).parameters()).detach() * 3
    fitness = {}
    for n in (1, 2):
        problem = es.make_problem(es.Config(**{**config.__dict__, "num_episodes": n}), es.build_policy(config, 105, 8))
        batch = problem.generate_batch(1)
        batch.access_values()[:] = params
        problem.evaluate(batch)
        fitness[n] = float(batch.evals[0, 0])
    assert fitness[2] == pytest.approx(fitness[1], rel=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(plastic=False),
        dict(modulation="simple"),
        dict(modulation="none"),
        dict(modulation="retroactive"),
        dict(rule="oja", modulation="none"),
        dict(rule="bcm", modulation="retroactive"),
        dict(rule="abcd", modulation="simple"),
        dict(policy="recurrent", cell="rnn"),
        dict(policy="recurrent", cell="lstm", modulation="retroactive"),
        dict(alpha_scale=0.1),
    ],
    ids=lambda o: "-".join(f"{v}" for v in o.values()),
)
def test_population_policy_equals_evotorch_vmapped_policy(overrides):
    """One batched forward with per-member weights gives EvoTorch's vmap result, resets included."""
    from evotorch.neuroevolution.net.vecrl import Policy

    config = tiny_config(hidden_size=6, **overrides)
    torch.manual_seed(0)
    adapter = es.EvoTorchPolicy(es.build_policy(config, 7, 3))
    n = sum(p.numel() for p in adapter.parameters())
    params = torch.randn(5, n) * 0.5  # five different members; large alpha so traces matter
    reference, batched = Policy(adapter), es.PopulationPolicy(adapter)
    reference.set_parameters(params.clone())
    batched.set_parameters(params.clone())
    obs = torch.randn(12, 5, 7)
    for t in range(12):
        expected, got = reference(obs[t]), batched(obs[t])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        if t == 5:  # members 1 and 3 start a new episode
            done = torch.tensor([False, True, False, True, False])
            reference.reset(done)
            batched.reset(done)
    # Replacing one member's parameters resets only that member.
    new = torch.randn(1, n) * 0.5
    reference.set_parameters(new, indices=[2])
    batched.set_parameters(new.clone(), indices=[2])
    torch.testing.assert_close(batched(obs[0]), reference(obs[0]), rtol=1e-5, atol=1e-6)


def test_decrease_rewards_by_removes_the_alive_bonus_from_fitness(tmp_path):
    # Same seed, same samples, a deterministic env and episodes too short to fall: the only difference
    # is the constant subtracted at each of the 20 steps, in the population's and the center's fitness.
    fitness = {}
    for d in (0.0, 1.0):
        config = tiny_config(env_kwargs=DETERMINISTIC_ENV, center_eval_episodes=1, decrease_rewards_by=d, generations=1)
        es.train(config, tmp_path / f"run{d}")
        (row,) = read_metrics(tmp_path / f"run{d}" / "metrics.csv")
        assert int(row["env_steps"]) == 4 * 20  # nobody fell: every episode ran its 20 steps
        fitness[d] = (float(row["mean_fitness"]), float(row["center_fitness"]))
    assert fitness[1.0][0] == pytest.approx(fitness[0.0][0] - 20, abs=1e-3)
    assert fitness[1.0][1] == pytest.approx(fitness[0.0][1] - 20, abs=1e-3)
    with pytest.raises(ValueError, match="'decrease_rewards_by' must be a finite number or null"):
        es.Config(decrease_rewards_by=float("nan"))


def test_shipped_yaml_config_is_the_preset():
    from pathlib import Path

    from plastic_rl.agents.presets import PRESETS
    from plastic_rl.config import config_from_dict, load_yaml

    data = load_yaml(Path(__file__).parent.parent / "configs" / "ant_es.yaml")
    assert data.pop("trainer") == "es"
    preset = {k: v for k, v in PRESETS["ant-es"].items() if k != "trainer"}
    assert config_from_dict(es.Config, data) == es.Config(**preset)


@pytest.mark.parametrize("algorithm", ["pgpe", "openai-es"])
def test_resume_with_a_lower_center_step(tmp_path, algorithm):
    run = tmp_path / "run"
    es.train(tiny_config(algorithm=algorithm, center_learning_rate=0.05), run)
    before = torch.load(run / CHECKPOINT_FILE, weights_only=True)["searcher"]["distribution"]["mu"]
    assert cli_main(["train", "--resume", str(run), "--generations", "3", "--center-learning-rate", "1e-5"]) == 0
    checkpoint = torch.load(run / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["config"]["center_learning_rate"] == 1e-5
    moved = float((checkpoint["searcher"]["distribution"]["mu"] - before).abs().max())
    # The new step is in force: ClipUp's max speed is 2e-5; Adam moves each parameter by about lr.
    # At the old step (0.05) one generation moves the center by orders of magnitude more.
    assert 0 < moved < 1e-4
    if algorithm == "openai-es":
        assert checkpoint["searcher"]["torch_optimizer"]["param_groups"][0]["lr"] == 1e-5


def test_es_searches_only_what_the_deterministic_policy_uses():
    # No log std and no value head: every searched parameter changes the action.
    policy = es.build_policy(tiny_config(), 105, 8)
    names = {name for name, _ in policy.named_parameters()}
    assert not any(name.startswith(("log_std", "value_head")) for name in names)
    with pytest.raises(ValueError, match="log_std_init=None"):
        policy.distribution(policy(torch.zeros(1, 105))[0])


def test_alpha_scale_reaches_every_plastic_layer_and_its_export(tmp_path):
    """config alpha_scale: every plasticity module of the searched policy stores alpha / alpha_scale, and a
    trained run's exported policy (rebuilt from the run folder) computes with the same effective alpha."""
    from plastic_rl.agents.evaluate import load_quadruped_run

    config = tiny_config(alpha_scale=0.1, generations=1)
    policy = es.build_policy(config, 27, 8)
    scales = [m.alpha_scale for m in policy.modules() if hasattr(m, "effective_alpha")]
    assert scales and all(s == 0.1 for s in scales)
    es.train(config, tmp_path / "run")
    run = load_quadruped_run(tmp_path / "run", "center_policy")
    assert all(m.alpha_scale == 0.1 for m in run["policy"].modules() if hasattr(m, "effective_alpha"))


def test_init_from_starts_the_search_at_another_runs_center_and_obs_stats(tmp_path):
    source, tuned = tmp_path / "source", tmp_path / "tuned"
    es.train(tiny_config(), source)
    origin = torch.load(source / CHECKPOINT_FILE, weights_only=True)
    # A zero step and a fixed σ keep the center where it started: it must be the source's center, not a fresh policy.
    config = tiny_config(generations=1, seed=11, init_from=str(source), center_learning_rate=0.0, stdev_learning_rate=0.0,
                         env_kwargs={"failed_legs": ["front_left"]})
    es.train(config, tuned)
    after = torch.load(tuned / CHECKPOINT_FILE, weights_only=True)
    assert torch.equal(after["searcher"]["distribution"]["mu"], origin["searcher"]["distribution"]["mu"])
    fresh = tiny_config(generations=1, seed=11, center_learning_rate=0.0, stdev_learning_rate=0.0)
    es.train(fresh, tmp_path / "fresh")
    fresh_mu = torch.load(tmp_path / "fresh" / CHECKPOINT_FILE, weights_only=True)["searcher"]["distribution"]["mu"]
    assert not torch.equal(fresh_mu, origin["searcher"]["distribution"]["mu"])
    # The observation statistics go on from the source's (its count plus this generation's observations).
    assert after["obs_norm"]["count"] > origin["obs_norm"]["count"]
    # A checkpoint file works as well as its folder, and a resume ignores init_from (the checkpoint's center wins).
    es.train(tiny_config(generations=1, init_from=str(source / CHECKPOINT_FILE)), tmp_path / "by_file")
    es.train(tiny_config(generations=2, seed=11, init_from=str(source), center_learning_rate=0.0, stdev_learning_rate=0.0,
                         env_kwargs={"failed_legs": ["front_left"]}), tuned, resume=True)
    assert torch.load(tuned / CHECKPOINT_FILE, weights_only=True)["generation"] == 2


@pytest.mark.parametrize("source_overrides, words", [(None, "neither"), ({"plastic": False}, "does not fit this run's network")])
def test_init_from_a_bad_source_is_refused_before_anything_is_written(tmp_path, source_overrides, words):
    source = tmp_path / "source"
    if source_overrides is not None:
        es.train(tiny_config(generations=1, **source_overrides), source)
    with pytest.raises(es.ConfigError, match=words):
        es.train(tiny_config(generations=1, init_from=str(source)), tmp_path / "tuned")
    assert not (tmp_path / "tuned").exists()
    with pytest.raises(ValueError, match="'init_from' must be"):
        tiny_config(init_from="")


@pytest.mark.parametrize("shared", ["none", "pairs", "generation"])
def test_shared_episodes_give_the_members_that_share_them_the_same_episodes(shared):
    # Six copies of one policy on random leg failures with Ant's start noise: a member's fitness is then a
    # function of its episode only, so equal fitness <=> same episode (start noise and drawn failure).
    from evotorch import SolutionBatch

    config = tiny_config(popsize=6, shared_episodes=shared)
    policy = strongly_plastic_policy(config)
    problem = es.make_problem(config, policy)
    batch = SolutionBatch(problem, popsize=6, empty=True)
    batch.access_values()[:] = torch.nn.utils.parameters_to_vector(policy.parameters())
    es._seed_everything(0)
    problem.evaluate(batch)
    fitness = batch.evals[:, 0].tolist()
    distinct = len(set(fitness))
    if shared == "none":
        assert distinct == 6
    elif shared == "pairs":
        assert fitness[0] == fitness[1] and fitness[2] == fitness[3] and fitness[4] == fitness[5]
        assert distinct == 3
    else:
        assert distinct == 1
    # The next evaluation draws new episodes.
    problem.evaluate(batch)
    assert batch.evals[0, 0].item() != fitness[0]


def test_shared_episodes_bad_values_name_the_field():
    with pytest.raises(ValueError, match="'shared_episodes' must be one of none, pairs, generation; got 'all'"):
        es.Config(shared_episodes="all")
    with pytest.raises(ValueError, match="'shared_episodes' can be 'pairs' only with pgpe or openai-es"):
        es.Config(shared_episodes="pairs", algorithm="cmaes")
    with pytest.raises(ValueError, match=r"'popsize' must be a multiple of 2 x num_actors \(4\)"):
        es.Config(shared_episodes="pairs", num_actors=2, popsize=6)


@pytest.mark.parametrize("algorithm", ["pgpe", "openai-es"])
def test_symmetric_populations_hold_each_pair_in_rows_2k_and_2k_plus_1(algorithm):
    # shared_episodes: pairs relies on this layout of EvoTorch's symmetric sampling.
    config = tiny_config(algorithm=algorithm, popsize=6, env_kwargs=DETERMINISTIC_ENV, episode_length=3)
    policy = es.build_policy(config, 105, 8)
    center = torch.nn.utils.parameters_to_vector(policy.parameters()).detach()
    searcher = es.make_searcher(config, es.make_problem(config, policy), center)
    searcher.step()
    values = searcher.population.values.detach()
    torch.testing.assert_close(values[0::2] + values[1::2], 2 * center.expand(3, -1), atol=1e-5, rtol=0)
    assert not torch.allclose(values[0::2] + values[2:3], 2 * center.expand(3, -1), atol=1e-5)
