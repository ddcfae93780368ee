"""The ``ppo`` trainer: PlasticPPO on any gymnasium env, in a run folder (``plastic-rl train --preset ant-ppo``).

Read top to bottom: :class:`Config` says what can be set; :func:`make_env` builds the
vector env (``make_vec_env``, optionally ``SubprocVecEnv`` and ``VecNormalize``);
:func:`make_model` the :class:`~plastic_rl.agents.ppo.PlasticPPO`; :class:`RunRecorder`
is the SB3 callback that logs one metrics row per rollout and writes checkpoints;
:func:`train` ties them together with resume.

The run folder is the one every trainer writes (config.yaml, metrics.csv, tb/,
checkpoint.pt, summary.json, learning_curve.png) plus ``model.zip`` (SB3's own save
format: ``PlasticPPO.load("RUN/model.zip")``) and ``vecnormalize.pkl`` (SB3's
``VecNormalize.load``). ``checkpoint.pt`` holds everything a resume needs as plain
tensors (weights, Adam state, VecNormalize statistics, step counts, RNG) and, like
the ES trainer's, ``policy`` (the actor as :func:`~plastic_rl.policies.export_policy`),
``obs_norm`` and ``env``, which ``plastic-rl evaluate`` reads. A resumed run starts
new episodes (the envs are reset); everything else continues.
"""

from __future__ import annotations

import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from plastic_rl.config import ConfigError, check_device, check_seed
from plastic_rl.plasticity import MODULATIONS, RULES
from plastic_rl.policies import count_parameters, export_policy
from plastic_rl.runs import CHECKPOINT_FILE, METRICS_FILE, Run, plot_curves, read_metrics

__all__ = ["Config", "make_env", "make_model", "RunRecorder", "train", "RESUMABLE_FIELDS", "POLICIES"]

#: Config.policy -> PlasticPPO policy name
POLICIES = {"lstm": "PlasticLstmPolicy", "rnn": "PlasticRnnPolicy", "spiking": "PlasticSpikingPolicy", "mlp": "PlasticMlpPolicy"}
ALGORITHMS = ("plastic-ppo", "recurrent-ppo")
CURVE_FILE = "learning_curve.png"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
METRIC_FIELDS = (
    "iteration", "env_steps", "wall_time", "episodes", "mean_return", "mean_length", "loss", "policy_loss",
    "value_loss", "entropy_loss", "approx_kl", "clip_fraction", "explained_variance", "steps_per_second",
)
# Fields a resumed run may change (how far to go, where and how fast to run); everything else must match.
RESUMABLE_FIELDS = ("total_timesteps", "device", "num_threads", "vec_env", "checkpoint_every", "tensorboard", "progress")


# --------------------------------------------------------------------------------------------------- config
@dataclass
class Config:
    """PlasticPPO on a gymnasium env (stored as ``config.yaml`` in the run folder)."""

    # --- environment
    env_id: str = "plastic_rl/AntLegFailure-v0"  #: any registered gymnasium env with a Box or Discrete observation
    env_kwargs: Dict[str, Any] = field(default_factory=dict)  #: passed to gym.make
    episode_length: Optional[int] = None  #: time limit of an episode (gym.make's max_episode_steps); null: the env's own
    n_envs: int = 8  #: envs stepped side by side
    vec_env: str = "dummy"  #: "dummy" (one process) or "subproc" (one process per env, SB3's SubprocVecEnv)
    normalize_obs: bool = True  #: VecNormalize's running observation normalization
    normalize_reward: bool = True  #: VecNormalize's return-based reward scaling

    # --- algorithm
    #: "plastic-ppo" (PlasticPPO with the core's policies) or "recurrent-ppo" (sb3-contrib's RecurrentPPO with
    #: its MlpLstmPolicy of hidden_size units: the gradient anchor of the maze comparison; policy must be lstm)
    algorithm: str = "plastic-ppo"

    # --- policy (the core's names)
    policy: str = "lstm"  #: "lstm" (PlasticLstmPolicy), "rnn" (PlasticRnnPolicy), "spiking" (PlasticSpikingPolicy) or "mlp" (PlasticMlpPolicy)
    hidden_size: int = 64  #: lstm/rnn: units of the cell
    hidden_sizes: Tuple[int, ...] = (64, 64)  #: mlp: hidden layer sizes
    output_activation: str = "identity"  #: mlp: activation of the action layer ("tanh" keeps the Gaussian mean in [-1, 1], as ES's policies)
    plastic: bool = True  #: False: the static twin, widened to the plastic network's parameter count
    modulation: str = "simple"  #: "none", "simple" or "retroactive"
    rule: str = "hebbian"  #: "hebbian", "oja", "bcm" or "abcd"
    clip: float = 1.0  #: Hebbian traces stay in [-clip, clip]
    critic: str = "separate"  #: "separate" (a non-plastic critic network) or "shared" (value head on the actor)
    log_std_init: float = 0.0  #: initial log std of Gaussian actions
    random_weights: bool = False  #: rules-only (Najarro & Risi 2020): the actor's weights drawn at random every episode, only its plasticity learned (policy mlp or rnn, plastic)
    binary: bool = False  #: binarized hidden layers: sign of real hidden weights, straight-through gradient (policy lstm, rnn or mlp)

    # --- PPO (stable-baselines3's names and defaults unless noted)
    total_timesteps: int = 1_000_000  #: env steps to train for, over all envs (on resume: the new total)
    n_steps: int = 256  #: steps per env per rollout
    batch_size: int = 256  #: steps per minibatch (whole sequences)
    sequence_length: int = 16  #: steps per sequence re-run in the update (divides n_steps and batch_size)
    n_epochs: int = 10  #: passes over each rollout
    learning_rate: float = 3e-4  #: Adam step size
    #: "constant", or "linear": from learning_rate down to 0 at total_timesteps (CleanRL's anneal_lr; a resume
    #: to a larger total stretches the rest of the ramp, so the step size rises a little at the resume)
    learning_rate_schedule: str = "constant"
    gamma: float = 0.99  #: discount
    gae_lambda: float = 0.95  #: GAE λ
    clip_range: float = 0.2  #: PPO's ratio clip
    ent_coef: float = 0.0  #: entropy bonus
    vf_coef: float = 0.5  #: value-loss weight
    max_grad_norm: float = 0.5  #: gradient-norm clip
    target_kl: Optional[float] = None  #: stop an update's epochs early above 1.5 x this KL

    # --- run
    seed: int = 0  #: seeds the network, the sampling and the envs
    device: str = "cpu"  #: torch device
    num_threads: int = 1  #: torch CPU threads
    checkpoint_every: int = 10  #: rollouts between checkpoints (and always at the end)
    tensorboard: bool = True  #: also write TensorBoard events under RUN_DIR/tb
    progress: bool = True  #: show a progress bar on stderr

    def __post_init__(self) -> None:
        choices = {"algorithm": ALGORITHMS, "policy": tuple(POLICIES), "vec_env": ("dummy", "subproc"), "modulation": MODULATIONS,
                   "rule": RULES, "critic": ("separate", "shared"), "learning_rate_schedule": ("constant", "linear"),
                   "output_activation": ("identity", "tanh", "relu", "sigmoid")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"config field {name!r} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}.")
        positive = ("n_envs", "hidden_size", "total_timesteps", "n_steps", "batch_size", "sequence_length", "n_epochs",
                    "num_threads", "checkpoint_every")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"config field {name!r} must be a positive integer; got {value!r}.")
        if self.episode_length is not None and self.episode_length < 1:
            raise ConfigError(f"config field 'episode_length' must be a positive integer or null; got {self.episode_length!r}.")
        if not self.hidden_sizes or any(int(s) < 1 for s in self.hidden_sizes):
            raise ConfigError(f"config field 'hidden_sizes' must be a non-empty list of positive integers; got {self.hidden_sizes!r}.")
        for name in ("learning_rate", "clip_range", "max_grad_norm", "clip"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"config field {name!r} must be a positive number; got {getattr(self, name)!r}.")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"config field {name!r} must be in [0, 1]; got {getattr(self, name)!r}.")
        for name in ("ent_coef", "vf_coef"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"config field {name!r} must be >= 0; got {getattr(self, name)!r}.")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ConfigError(f"config field 'target_kl' must be a positive number or null; got {self.target_kl!r}.")
        if self.algorithm == "recurrent-ppo" and self.policy != "lstm":
            raise ConfigError(f"config field 'policy' must be lstm for the recurrent-ppo algorithm (sb3-contrib's MlpLstmPolicy); got {self.policy!r}.")
        if self.algorithm == "plastic-ppo" and (self.policy != "mlp" or self.plastic):  # stateful: minibatches hold whole sequences
            if self.n_steps % self.sequence_length:
                raise ConfigError(f"config field 'n_steps' ({self.n_steps}) must be a multiple of 'sequence_length' ({self.sequence_length}).")
            if self.batch_size % self.sequence_length:
                raise ConfigError(f"config field 'batch_size' ({self.batch_size}) must be a multiple of 'sequence_length' ({self.sequence_length}).")
        if self.random_weights and (not self.plastic or self.policy not in ("mlp", "rnn") or self.algorithm != "plastic-ppo"):
            raise ConfigError("config field 'random_weights' needs plastic: true, policy: mlp or rnn and algorithm: plastic-ppo; "
                              f"got plastic={self.plastic!r}, policy={self.policy!r}, algorithm={self.algorithm!r}.")
        if self.binary and (self.random_weights or self.policy == "spiking" or self.algorithm != "plastic-ppo"):
            raise ConfigError("config field 'binary' needs policy lstm, rnn or mlp, random_weights: false and algorithm: plastic-ppo; "
                              f"got policy={self.policy!r}, random_weights={self.random_weights!r}, algorithm={self.algorithm!r}.")
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"config field 'env_kwargs' must be a mapping of keyword: value; got {self.env_kwargs!r}.")
        if "max_episode_steps" in self.env_kwargs:
            raise ConfigError("config field 'env_kwargs' must not set max_episode_steps; set the config field 'episode_length' instead.")
        check_seed(self.seed)
        check_device(self.device)

    def policy_kwargs(self) -> Dict[str, Any]:
        """``policy_kwargs`` of :class:`~plastic_rl.agents.ppo.PlasticPPO` for this config."""
        kwargs: Dict[str, Any] = dict(plastic=self.plastic, modulation=self.modulation, rule=self.rule, clip=self.clip,
                                      critic=self.critic, log_std_init=self.log_std_init)
        if self.policy == "mlp":
            kwargs.update(hidden_sizes=list(self.hidden_sizes), output_activation=self.output_activation)
        else:
            kwargs.update(hidden_size=self.hidden_size)
        kwargs.update({name: True for name in ("random_weights", "binary") if getattr(self, name)})
        return kwargs


# ------------------------------------------------------------------------------------------ env and model
def _make_kwargs(config: Config) -> Dict[str, Any]:
    kwargs = dict(config.env_kwargs)
    if config.episode_length is not None:
        kwargs["max_episode_steps"] = config.episode_length
    return kwargs


def check_env(config: Config) -> None:
    """Build one env of ``config`` once; raise :class:`ConfigError` naming the field if it cannot be made."""
    import gymnasium as gym

    import plastic_rl.envs  # noqa: F401  (registers plastic_rl/*)

    try:
        gym.make(config.env_id, **_make_kwargs(config)).close()
    except gym.error.Error as err:
        raise ConfigError(f"config field 'env_id' must name a registered gymnasium env; {config.env_id!r} failed ({err}).") from None
    except (OSError, TypeError, ValueError) as err:
        raise ConfigError(f"config field 'env_kwargs' is not accepted by {config.env_id!r}: {err}") from None


def make_env(config: Config, seed: int, training: bool = True):
    """The vector env of ``config``: ``make_vec_env`` (+ ``SubprocVecEnv``) (+ ``VecNormalize``).

    :param config: the run's config.
    :param seed: env ``i`` is seeded with ``seed + i``.
    :param training: False freezes VecNormalize's statistics and leaves rewards unscaled (evaluation).
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    check_env(config)  # one clear sentence before any subprocess starts
    env_id = f"plastic_rl.envs:{config.env_id}" if config.env_id.startswith("plastic_rl/") else config.env_id
    vec_cls = SubprocVecEnv if config.vec_env == "subproc" else DummyVecEnv
    env = make_vec_env(env_id, n_envs=config.n_envs, seed=seed, env_kwargs=_make_kwargs(config), vec_env_cls=vec_cls)
    if config.normalize_obs or config.normalize_reward:
        env = VecNormalize(env, norm_obs=config.normalize_obs, norm_reward=config.normalize_reward and training,
                           gamma=config.gamma, training=training)
    return env


def learning_rate(config: Config):
    """SB3's ``learning_rate`` argument for ``config``: the number, or a schedule of the remaining progress."""
    if config.learning_rate_schedule == "linear":
        from stable_baselines3.common.utils import LinearSchedule

        return LinearSchedule(config.learning_rate, 0.0, 1.0)
    return config.learning_rate


def make_model(config: Config, env):
    """The :class:`~plastic_rl.agents.ppo.PlasticPPO` of ``config`` on ``env`` (or sb3-contrib's RecurrentPPO)."""
    from plastic_rl.agents.ppo import PlasticPPO

    if config.algorithm == "recurrent-ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO(
            "MlpLstmPolicy", env, n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.n_epochs,
            learning_rate=learning_rate(config), gamma=config.gamma, gae_lambda=config.gae_lambda, clip_range=config.clip_range,
            ent_coef=config.ent_coef, vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm, target_kl=config.target_kl,
            policy_kwargs=dict(lstm_hidden_size=config.hidden_size), seed=config.seed, device=config.device, verbose=0,
        )
    try:
        return PlasticPPO(
            POLICIES[config.policy], env, sequence_length=config.sequence_length, n_steps=config.n_steps,
            batch_size=config.batch_size, n_epochs=config.n_epochs, learning_rate=learning_rate(config), gamma=config.gamma,
            gae_lambda=config.gae_lambda, clip_range=config.clip_range, ent_coef=config.ent_coef, vf_coef=config.vf_coef,
            max_grad_norm=config.max_grad_norm, target_kl=config.target_kl, policy_kwargs=config.policy_kwargs(),
            seed=config.seed, device=config.device, verbose=0,
        )
    except ValueError as err:  # e.g. an action space the policies do not support
        raise ConfigError(str(err)) from None


def _vec_normalize(env):
    from stable_baselines3.common.vec_env import VecNormalize

    return env if isinstance(env, VecNormalize) else None


def obs_norm_record(env) -> Optional[Dict[str, Any]]:
    """``{"mean", "stdev", "clip"}`` of VecNormalize's observation statistics (what ``plastic-rl evaluate`` applies)."""
    norm = _vec_normalize(env)
    if norm is None or not norm.norm_obs:
        return None
    return {
        "mean": torch.as_tensor(norm.obs_rms.mean, dtype=torch.float32),
        "stdev": torch.as_tensor(np.sqrt(norm.obs_rms.var + norm.epsilon), dtype=torch.float32),
        "clip": float(norm.clip_obs),
    }


def vec_normalize_state(env) -> Optional[Dict[str, Any]]:
    """VecNormalize's running statistics of ``env`` as float64 tensors (None without VecNormalize)."""
    norm = _vec_normalize(env)
    if norm is None:
        return None
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    return {"obs_mean": as_tensor(norm.obs_rms.mean), "obs_var": as_tensor(norm.obs_rms.var), "obs_count": float(norm.obs_rms.count),
            "ret_mean": as_tensor(norm.ret_rms.mean), "ret_var": as_tensor(norm.ret_rms.var), "ret_count": float(norm.ret_rms.count)}


def restore_vec_normalize(env, state: Optional[Dict[str, Any]]) -> None:
    """Put :func:`vec_normalize_state`'s statistics back into ``env``'s VecNormalize (in place: every holder sees them)."""
    norm = _vec_normalize(env)
    if norm is None or state is None:
        return
    norm.obs_rms.mean, norm.obs_rms.var, norm.obs_rms.count = state["obs_mean"].numpy(), state["obs_var"].numpy(), state["obs_count"]
    norm.ret_rms.mean, norm.ret_rms.var, norm.ret_rms.count = state["ret_mean"].numpy(), state["ret_var"].numpy(), state["ret_count"]


def _env_record(config: Config) -> Dict[str, Any]:
    import gymnasium as gym

    length = config.episode_length
    if length is None:
        spec = gym.spec(config.env_id)
        length = spec.max_episode_steps or int(config.env_kwargs.get("episode_length", 1000))
    return {"id": config.env_id, "kwargs": dict(config.env_kwargs), "episode_length": int(length)}


def checkpoint_payload(config: Config, model, env, iteration: int, wall_time: float) -> Dict[str, Any]:
    """Everything a resume needs (plain tensors), plus what ``plastic-rl evaluate`` reads (policy, obs_norm, env).

    :param config: the run's config.
    :param model: the PlasticPPO (or RecurrentPPO) model.
    :param env: its vector env.
    :param iteration: rollouts done.
    :param wall_time: seconds of training so far.
    """
    policy = model.policy
    return {
        "iteration": iteration,
        "env_steps": int(model.num_timesteps),
        "wall_time": float(wall_time),
        # The plastic-core actor, which `plastic-rl evaluate` rebuilds (RecurrentPPO's policy is not a core policy).
        **({"policy": export_policy(policy.core)} if hasattr(policy, "core") else {}),
        "obs_norm": obs_norm_record(env),
        "env": _env_record(config),
        "model": {
            "policy_state": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()},
            "optimizer": policy.optimizer.state_dict(),
            "num_timesteps": int(model.num_timesteps),
            "n_updates": int(model._n_updates),
        },
        "vec_normalize": vec_normalize_state(env),
        "torch_rng": torch.get_rng_state(),
    }


def restore(model, env, checkpoint: Dict[str, Any]) -> float:
    """Put a checkpoint's weights, optimizer, step counts, VecNormalize statistics and RNG back; return its wall time."""
    state = checkpoint["model"]
    model.policy.load_state_dict(state["policy_state"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = int(state["num_timesteps"])
    model._n_updates = int(state["n_updates"])
    restore_vec_normalize(env, checkpoint.get("vec_normalize"))
    torch.set_rng_state(checkpoint["torch_rng"])
    return float(checkpoint["wall_time"])


# -------------------------------------------------------------------------------------------- the callback
class RunRecorder(BaseCallback):
    """Logs one metrics row per rollout (after its update) and writes the run's checkpoints.

    SB3 calls ``on_rollout_start`` after the previous rollout's ``train()``, so a row (and a
    checkpoint) is written there for the rollout before, and the last one at ``on_training_end``.

    :param run: the :class:`~plastic_rl.runs.Run`.
    :param config: the run's config.
    :param env: the training env (for the VecNormalize statistics).
    :param logger_csv: the run's metrics logger.
    :param bar: the progress bar (counts env steps).
    :param start_iteration: rollouts done before this process.
    :param wall_offset: wall time of the run before this process.
    """

    def __init__(self, run: Run, config: Config, env, logger_csv, bar, start_iteration: int, wall_offset: float) -> None:
        super().__init__()
        self.run, self.config, self.env, self.csv, self.bar = run, config, env, logger_csv, bar
        self.iteration, self.wall_offset = start_iteration, wall_offset
        self.pending = False
        self.returns: List[float] = []
        self.lengths: List[int] = []

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter() - self.wall_offset
        self.tic, self.steps0 = time.perf_counter(), self.model.num_timesteps

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:  # SB3's Monitor: the env's own (unnormalized) return
                self.returns.append(float(info["episode"]["r"]))
                self.lengths.append(int(info["episode"]["l"]))
        return True

    def _on_rollout_end(self) -> None:
        self.pending = True

    def _on_rollout_start(self) -> None:
        if self.pending:
            self._record()

    def _on_training_end(self) -> None:
        if self.pending:
            self._record(final=True)

    def _record(self, final: bool = False) -> None:
        self.pending = False
        self.iteration += 1
        values = self.model.logger.name_to_value
        now = time.perf_counter()
        row = {
            "iteration": self.iteration, "env_steps": int(self.model.num_timesteps), "wall_time": round(now - self.t0, 3),
            "episodes": len(self.returns),
            "mean_return": float(np.mean(self.returns)) if self.returns else float("nan"),
            "mean_length": float(np.mean(self.lengths)) if self.lengths else float("nan"),
            "steps_per_second": round((self.model.num_timesteps - self.steps0) / max(now - self.tic, 1e-9), 1),
        }
        for key in ("loss", "policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction", "explained_variance"):
            if f"train/{key}" in values:
                row["policy_loss" if key == "policy_gradient_loss" else key] = float(values[f"train/{key}"])
        self.csv.log(row)
        self.returns, self.lengths = [], []
        self.tic, self.steps0 = now, self.model.num_timesteps
        self.bar.update(self.model.n_steps * self.model.n_envs)
        if row["episodes"]:
            self.bar.set_postfix(ret=f"{row['mean_return']:.1f}", refresh=False)
        self.run.check_finite(self.iteration, loss=row.get("loss", 0.0), parameters=list(self.model.policy.parameters()))
        if final or self.iteration % self.config.checkpoint_every == 0:
            self.save(now - self.t0)

    def save(self, wall_time: float) -> None:
        """Write checkpoint.pt (first, atomically), then SB3's model.zip and vecnormalize.pkl."""
        self.run.save_checkpoint(checkpoint_payload(self.config, self.model, self.env, self.iteration, wall_time), self.iteration)
        self.run.write_file(MODEL_FILE, lambda f: self.model.save(f))
        if _vec_normalize(self.env) is not None:
            self.run.write_file(VECNORMALIZE_FILE, lambda f: pickle.dump(self.env, f))


# ------------------------------------------------------------------------------------------------- train
def write_curve(run_dir: Path, rows: List[Dict[str, str]], title: str) -> Path:
    """``learning_curve.png``: mean training-episode return per rollout against env steps."""
    points = [(int(r["env_steps"]), float(r["mean_return"])) for r in rows if r.get("mean_return") not in ("", "nan", None)]
    points = [(x, y) for x, y in points if math.isfinite(y)]
    path = run_dir / CURVE_FILE
    plot_curves(path, [x for x, _ in points], {"mean episode return": [y for _, y in points]},
                xlabel="env steps", ylabel="episode return (training episodes)", title=title)
    return path


def _actor(model) -> torch.nn.Module:
    """The network that acts: PlasticPPO's core policy, or RecurrentPPO's whole policy."""
    return getattr(model.policy, "core", model.policy)


def train(config: Config, run_dir: str | Path, resume: bool = False) -> Dict[str, Any]:
    """Train (or continue) PlasticPPO as ``config`` says; write the run folder; return the summary.

    :param config: the run's config.
    :param run_dir: the run folder (new, or one to resume).
    :param resume: continue ``run_dir`` from its checkpoint up to ``config.total_timesteps``.
    """
    check_env(config)  # before the folder is touched
    run = Run.open(run_dir, "ppo", config, resume=resume, resumable=RESUMABLE_FIELDS,
                   files=(CURVE_FILE, MODEL_FILE, VECNORMALIZE_FILE), step_name="iteration")
    torch.set_num_threads(config.num_threads)
    iteration = run.start_step
    # A resumed run plays new episodes: its envs are seeded past the ones already played.
    env = make_env(config, seed=config.seed * 1_000_003 + iteration * config.n_envs)
    try:
        model = make_model(config, env)
        wall_offset = restore(model, env, run.checkpoint) if run.resumed else 0.0
        remaining = config.total_timesteps - model.num_timesteps
        logger = run.metrics(METRIC_FIELDS)
        bar = run.progress(config.total_timesteps, desc=f"ppo {config.policy}", unit="step")
        bar.n = model.num_timesteps
        recorder = RunRecorder(run, config, env, logger, bar, iteration, wall_offset)
        kind = "sb3-contrib MlpLstmPolicy" if config.algorithm == "recurrent-ppo" else f"{'plastic' if config.plastic else 'static'} {config.policy}"
        print(f"{config.algorithm} on {config.env_id}: {kind}, "
              f"{count_parameters(_actor(model))} actor parameters, steps {model.num_timesteps}→{config.total_timesteps}", flush=True)
        try:
            if remaining > 0:
                model.learn(remaining, callback=recorder, reset_num_timesteps=not run.resumed)
            elif not run.resumed:
                recorder.save(0.0)
        finally:
            logger.close()
            bar.close()
        wall_time = time.perf_counter() - recorder.t0 if hasattr(recorder, "t0") else wall_offset
        iteration = recorder.iteration
    finally:
        env.close()

    rows = read_metrics(run.path / METRICS_FILE)
    finished = [float(r["mean_return"]) for r in rows if r.get("mean_return") not in ("", "nan", None)]
    finished = [x for x in finished if math.isfinite(x)]
    tail = finished[-max(1, len(finished) // 10):] if finished else []
    curve = write_curve(run.path, rows, f"PlasticPPO on {config.env_id} ({'plastic' if config.plastic else 'static'} {config.policy})")
    return run.finish({
        "trainer": "ppo",
        "policy": config.policy,
        "plastic": config.plastic,
        "iterations": iteration,
        "env_steps": int(model.num_timesteps),
        "final_reward": float(np.mean(tail)) if tail else float("nan"),
        "final_reward_window": len(tail),
        "algorithm": config.algorithm,
        "parameters": count_parameters(_actor(model)),
        "state_storage_bytes": int(getattr(model.rollout_buffer, "state_storage_bytes", 0)),
        "wall_time": wall_time,
        "curve_png": str(curve),
        "checkpoint": str(run.path / CHECKPOINT_FILE),
        "model_zip": str(run.path / MODEL_FILE),
    })
