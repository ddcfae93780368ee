"""Spiking plastic networks (SpikePropamine) on a cue–reward association task, with and without plasticity.

The task (:class:`CueRewardTask`, batched tensors) needs learning within the
episode: each episode one of ``cues`` cues is secretly the rewarded one, drawn
anew. Each trial shows one cue (one-hot) together with the outcome of the
previous trial (1 if the previous cue was the rewarded one, else 0); the network
must say whether the cue shown now is the rewarded one. A network that does not
learn within the episode cannot beat chance on that question; one that links
the rewarded cue to its outcome answers every later trial correctly. Each trial
lasts ``steps_per_trial`` simulation steps (the input held), and the answer is
read at its last step: a plastic connection ``(W + A ⊙ Hebb) s_{t-1}`` acts one
step after its presynaptic spikes, so a one-step trial could not use it.

The network is ``RecurrentActorCritic(cell="spiking")`` (LIF neurons, the action
head reading the non-spiking leaky readout), its two "actions" being the answer
(not rewarded, rewarded), trained by cross-entropy on every trial (supervised,
full-episode BPTT with the surrogate gradient). It is plastic with one rule and
modulation, or non-plastic with its hidden size matched to the plastic
Hebbian/simple network's parameter count (``RecurrentActorCritic.matching``).
The noise condition adds Gaussian noise of standard deviation ``noise`` to every
input (training and evaluation), as SpikePropamine tested its networks under noise.

Why supervised: the reinforcement version (respond or withhold, +1 for the
rewarded cue, a penalty for the others, full-episode A2C) collapsed to the best
memoryless policy for both the spiking and the rate RNN in 800-iteration pilots,
so it could not tell plastic from non-plastic networks at a budget this machine allows.

Score: balanced accuracy ((hit rate + correct-rejection rate) / 2) over the
trials after the rewarded cue's outcome has first been shown, on 1,000 fresh
episodes; chance (and any memoryless network) is 0.5. It is also reported with
alpha set to 0, which shows whether a plastic network uses its traces.

Every run is a run folder (``plastic_rl.runs.Run``) under ``OUT/runs``; running the
script again resumes unfinished runs from their checkpoints and skips finished
ones. The script writes ``OUT/spiking_plasticity.csv`` / ``.json``: per variant and
noise level, the median and IQR over seeds, parameters, wall time, for every
finished run in ``OUT`` at the given ``--iterations`` (also those of earlier invocations).

Example (the README's table)::

    python scripts/spiking_plasticity.py --seeds 0 1 2 --iterations 1000 --out results/spiking
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F

from plastic_rl.config import ConfigError, config_from_dict
from plastic_rl.policies import RecurrentActorCritic, count_parameters, export_policy
from plastic_rl.runs import Run, atomic_write_json, atomic_write_text

# name -> policy overrides; the non-plastic twin matches the parameter count of the plastic hebbian/simple network.
VARIANTS: Dict[str, Dict[str, Any]] = {
    "hebbian-simple": dict(plastic=True, rule="hebbian", modulation="simple"),
    "hebbian-none": dict(plastic=True, rule="hebbian", modulation="none"),
    "hebbian-retroactive": dict(plastic=True, rule="hebbian", modulation="retroactive"),
    "oja-simple": dict(plastic=True, rule="oja", modulation="simple"),
    "bcm-simple": dict(plastic=True, rule="bcm", modulation="simple"),
    "abcd-simple": dict(plastic=True, rule="abcd", modulation="simple"),
    "non-plastic": dict(plastic=False),
}


# ------------------------------------------------------------------------------------------------ the task
class CueRewardTask:
    """Cue–reward association episodes, drawn in batches.

    Observation per trial (``cues + 1``): the one-hot cue shown now and the previous
    trial's outcome (1 if its cue was the rewarded one), plus ``noise`` × N(0, 1) on
    every entry. Target per trial: 1 if the cue shown now is the rewarded one.

    :param cues: number of cues; one per episode is rewarded.
    :param trials: trials per episode.
    :param noise: standard deviation of the Gaussian input noise.
    """

    def __init__(self, cues: int, trials: int, noise: float) -> None:
        self.cues, self.trials, self.noise = cues, trials, noise
        self.obs_size = cues + 1

    def sample(self, batch: int, generator: torch.Generator) -> Tuple[Tensor, Tensor, Tensor]:
        """``(obs (trials, batch, cues + 1), target (trials, batch), revealed (trials, batch))`` for ``batch`` episodes.

        ``revealed[t]`` is true once the rewarded cue's outcome has been shown before trial ``t``.

        :param batch: episodes.
        :param generator: draws the rewarded cues, the cue sequences and the noise.
        """
        rewarded = torch.randint(0, self.cues, (batch,), generator=generator)
        shown = torch.randint(0, self.cues, (self.trials, batch), generator=generator)
        target = (shown == rewarded).float()
        obs = F.one_hot(shown, self.cues).float()
        outcome = torch.cat([torch.zeros(1, batch), target[:-1]])
        obs = torch.cat([obs, outcome.unsqueeze(2)], dim=2)
        revealed = torch.cumsum(outcome, 0) > 0
        if self.noise > 0:
            obs = obs + self.noise * torch.randn(obs.shape, generator=generator)
        return obs, target, revealed


# ------------------------------------------------------------------------------------------------ one run
@dataclass
class RunConfig:
    """One training run of the cue–reward experiment (stored as ``config.yaml`` in its run folder)."""

    variant: str = "hebbian-simple"  #: a key of VARIANTS
    hidden_size: int = 32  #: LIF neurons of the plastic network (the non-plastic twin is matched to its parameter count)
    noise: float = 0.0  #: standard deviation of the Gaussian input noise
    cues: int = 4  #: cues per episode, one rewarded
    trials: int = 12  #: trials per episode
    steps_per_trial: int = 2  #: simulation steps per trial (the input is held; the answer is read at the last)
    iterations: int = 1000  #: gradient steps (on resume: the new total)
    batch_size: int = 32  #: episodes per gradient step
    learning_rate: float = 3e-3  #: Adam step
    max_grad_norm: float = 4.0  #: gradient-norm clip
    checkpoint_every: int = 100  #: iterations between checkpoints
    seed: int = 0  #: seeds the network, the episodes and the noise
    progress: bool = False  #: progress bar on stderr
    tensorboard: bool = False  #: TensorBoard events under the run folder

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}; got {self.variant!r}.")
        for name in ("hidden_size", "trials", "steps_per_trial", "iterations", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer; got {getattr(self, name)!r}.")
        if self.cues < 2:
            raise ConfigError(f"cues must be at least 2; got {self.cues!r}.")
        if self.noise < 0:
            raise ConfigError(f"noise must be >= 0; got {self.noise!r}.")
        for name in ("learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0; got {getattr(self, name)!r}.")


def build_network(config: RunConfig) -> RecurrentActorCritic:
    """The spiking network of ``config.variant`` (two outputs: not rewarded / rewarded)."""
    overrides = VARIANTS[config.variant]
    obs_size = config.cues + 1
    if overrides["plastic"]:
        return RecurrentActorCritic(obs_size, 2, "discrete", hidden_size=config.hidden_size, cell="spiking",
                                    value_head=False, rule=overrides["rule"], modulation=overrides["modulation"])
    reference = RecurrentActorCritic(obs_size, 2, "discrete", hidden_size=config.hidden_size, cell="spiking",
                                     value_head=False, rule="hebbian", modulation="simple")
    return RecurrentActorCritic.matching(reference, plastic=False)


def answers(network: RecurrentActorCritic, obs: Tensor, steps_per_trial: int) -> Tensor:
    """The network's logits at the last step of every trial, ``(trials, batch, 2)``; the state starts at zero."""
    state, logits = None, []
    for x in obs:
        for _ in range(steps_per_trial):
            out, state = network(x, state)
        logits.append(out.action_params)
    return torch.stack(logits)


def balanced_accuracy(logits: Tensor, target: Tensor, revealed: Tensor) -> float:
    """(hit rate + correct-rejection rate) / 2 over the trials after the rewarded cue's outcome was shown."""
    said = logits.argmax(-1) == 1
    rewarded = target.bool()
    hits = (said & rewarded & revealed).sum() / (rewarded & revealed).sum().clamp(min=1)
    rejections = (~said & ~rewarded & revealed).sum() / (~rewarded & revealed).sum().clamp(min=1)
    return float((hits + rejections) / 2)


def evaluate(network: RecurrentActorCritic, config: RunConfig, episodes: int = 1000, seed: int = 10**6,
             without_plasticity: bool = False) -> float:
    """Balanced accuracy on ``episodes`` fresh episodes (optionally with alpha set to 0, restored afterwards)."""
    task = CueRewardTask(config.cues, config.trials, config.noise)
    obs, target, revealed = task.sample(episodes, torch.Generator().manual_seed(seed))
    plasticity = network.cell.plasticity
    saved = plasticity.alpha.detach().clone() if plasticity is not None else None
    with torch.no_grad():
        if without_plasticity and plasticity is not None:
            plasticity.alpha.zero_()
        try:
            return balanced_accuracy(answers(network, obs, config.steps_per_trial), target, revealed)
        finally:
            if saved is not None:
                plasticity.alpha.copy_(saved)


def train_one(config: RunConfig, run_dir: Path, resume: bool = False) -> Dict[str, Any]:
    """Train one run (or continue it from its checkpoint) and return its summary.

    :param config: the run's configuration.
    :param run_dir: its run folder.
    :param resume: continue from the folder's checkpoint.
    """
    run = Run.open(run_dir, trainer="spiking-cue-reward", config=config, resume=resume,
                   resumable=("iterations",), step_name="iteration")
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    network = build_network(config)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed + 1)
    wall = 0.0
    if run.checkpoint is not None:
        network.load_state_dict(run.checkpoint["policy"]["state_dict"])
        optimizer.load_state_dict(run.checkpoint["optimizer"])
        generator.set_state(run.checkpoint["generator"])
        wall = float(run.checkpoint["wall_time"])
    task = CueRewardTask(config.cues, config.trials, config.noise)
    logger = run.metrics(("iteration", "loss", "balanced_accuracy", "grad_norm", "wall_time"))
    start = time.perf_counter() - wall
    try:
        for iteration in range(run.start_step + 1, config.iterations + 1):
            obs, target, revealed = task.sample(config.batch_size, generator)
            logits = answers(network, obs, config.steps_per_trial)
            loss = F.cross_entropy(logits.reshape(-1, 2), target.reshape(-1).long())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
            run.check_finite(iteration, loss=loss, grad_norm=grad_norm)
            optimizer.step()
            logger.log({"iteration": iteration, "loss": float(loss.detach()),
                        "balanced_accuracy": balanced_accuracy(logits.detach(), target, revealed),
                        "grad_norm": float(grad_norm), "wall_time": time.perf_counter() - start})
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                run.save_checkpoint({"policy": export_policy(network), "optimizer": optimizer.state_dict(),
                                     "generator": generator.get_state(), "wall_time": time.perf_counter() - start},
                                    iteration)
    finally:
        logger.close()
    plastic = network.cell.plasticity is not None
    return run.finish({
        "variant": config.variant, "seed": config.seed, "noise": config.noise, "iterations": config.iterations,
        "episodes": config.iterations * config.batch_size, "parameters": count_parameters(network),
        "hidden_size": network.config["hidden_size"],
        "final_score": evaluate(network, config),
        "final_score_alpha0": evaluate(network, config, without_plasticity=True) if plastic else None,
        "wall_time": time.perf_counter() - start,
    })


# ---------------------------------------------------------------------------------------------- the table
def quantiles(values: List[float]) -> Tuple[float, float, float]:
    """(median, q25, q75) of ``values`` (linear interpolation)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[1], q[0], q[2]


def run_dir_of(out: Path, variant: str, noise: float, seed: int) -> Path:
    return out / "runs" / f"{variant}-noise{noise:g}-seed{seed}"


def summarize(out: Path, summaries: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Median and IQR over seeds per (variant, noise); written to ``OUT/spiking_plasticity.csv`` and ``.json``."""
    rows = []
    groups: Dict[Tuple[str, float], List[Dict[str, Any]]] = {}
    for s in summaries:
        groups.setdefault((s["variant"], s["noise"]), []).append(s)
    for (variant, noise), runs in groups.items():
        med, q25, q75 = quantiles([r["final_score"] for r in runs])
        row = {"variant": variant, "noise": noise, "seeds": sorted(r["seed"] for r in runs),
               "median": med, "q25": q25, "q75": q75, "parameters": runs[0]["parameters"],
               "hidden_size": runs[0]["hidden_size"], "episodes": runs[0]["episodes"],
               "wall_time_s": sum(r["wall_time"] for r in runs)}
        alpha0 = [r["final_score_alpha0"] for r in runs if r["final_score_alpha0"] is not None]
        if alpha0:
            row["median_alpha0"], row["q25_alpha0"], row["q75_alpha0"] = quantiles(alpha0)
        rows.append(row)
    atomic_write_json(out / "spiking_plasticity.json", {"rows": rows, "runs": summaries})
    header = "variant,noise,median,q25,q75,median_alpha0,parameters,hidden_size,episodes,seeds,wall_time_s"
    lines = [header] + [
        f"{r['variant']},{r['noise']:g},{r['median']:.3f},{r['q25']:.3f},{r['q75']:.3f},"
        f"{r.get('median_alpha0', float('nan')):.3f},{r['parameters']},{r['hidden_size']},{r['episodes']},"
        f"{' '.join(map(str, r['seeds']))},{r['wall_time_s']:.0f}"
        for r in rows
    ]
    atomic_write_text(out / "spiking_plasticity.csv", "\n".join(lines) + "\n")
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    """Train every (variant, noise, seed) not finished yet, then write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=["hebbian-simple", "hebbian-none", "non-plastic"],
                        choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.3], help="input-noise levels (std)")
    parser.add_argument("--iterations", type=int, default=RunConfig.iterations)
    parser.add_argument("--hidden-size", type=int, default=RunConfig.hidden_size)
    parser.add_argument("--out", default="results/spiking")
    args = parser.parse_args(argv)
    out = Path(args.out)
    summaries = []
    try:
        for noise in args.noise:
            for variant in args.variants:
                for seed in args.seeds:
                    run_dir = run_dir_of(out, variant, noise, seed)
                    config = config_from_dict(RunConfig, dict(variant=variant, noise=noise, seed=seed,
                                                              iterations=args.iterations, hidden_size=args.hidden_size),
                                              source="the command line")
                    summary_file = run_dir / "summary.json"
                    if summary_file.is_file():
                        summary = json.loads(summary_file.read_text())
                        if summary.get("iterations") == args.iterations:
                            summaries.append(summary)
                            continue
                    resume = (run_dir / "config.yaml").is_file()
                    summary = train_one(config, run_dir, resume=resume)
                    print(f"{variant:20s} noise {noise:g} seed {seed}: balanced accuracy {summary['final_score']:.2f}"
                          f" (alpha=0: {summary['final_score_alpha0']}) {summary['wall_time']:.0f}s", flush=True)
                    summaries.append(summary)
    except ConfigError as err:
        print(f"spiking_plasticity.py: error: {err}", file=sys.stderr)
        return 2
    # The table covers every finished run in OUT at this budget, also those of earlier invocations
    # (e.g. more rules trained at one noise level only).
    finished = {(s["variant"], s["noise"], s["seed"]) for s in summaries}
    for path in sorted((out / "runs").glob("*/summary.json")):
        other = json.loads(path.read_text())
        if other.get("iterations") == args.iterations and (other["variant"], other["noise"], other["seed"]) not in finished:
            summaries.append(other)
    for row in summarize(out, summaries):
        print(f"{row['variant']:20s} noise {row['noise']:g}: median {row['median']:.2f} "
              f"[{row['q25']:.2f}, {row['q75']:.2f}] over seeds {row['seeds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
