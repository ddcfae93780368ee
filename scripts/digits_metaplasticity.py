"""The metaplasticity effect on two sequential digit tasks, and deployed stochastic-binary networks.

Part 1 (Laborieux et al. 2021's check, on scikit-learn's bundled 8x8 digits, no
download): a binarized MLP 64-H-10 (:class:`~plastic_rl.BinaryLinear`, batch norm
with ``track_running_stats=False``, sign activations between the layers) learns
the original digits, then the same digits with a fixed random permutation of
the 64 pixels, with :class:`~plastic_rl.MetaplasticAdam` at several ``meta``
values. With ``meta = 0`` (Adam) the second task overwrites the first; with
``meta > 0`` the hidden weights that grew during task 1 resist flipping, and
task 1's accuracy falls much less.

Part 2 (``--stochastic``): an MLP of :class:`~plastic_rl.StochasticBinaryLinear`
layers trained in the mean field on the original digits; its test accuracy
against the deployed ±1 networks (``sign(h)``, and single random samples).

Writes ``OUT/digits_metaplasticity.csv`` / ``.json`` (one row per meta and seed:
task-1 accuracy after task 1 and after task 2, task-2 accuracy, wall time) and,
with ``--stochastic``, ``OUT/digits_stochastic.json``; prints a Markdown table of
the medians over seeds. Example (the README figures)::

    python scripts/digits_metaplasticity.py --metas 0 1 2 3 --seeds 0 1 2 --stochastic --out results/digits

(about 40 s of one core per run; the README section "Binarized and metaplastic layers" has the figures.)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from plastic_rl import BinaryLinear, MetaplasticAdam, StochasticBinaryLinear
from plastic_rl.runs import atomic_write_json, atomic_write_text


class DigitsTask(NamedTuple):
    """One classification task: train and test tensors (pixels scaled to [0, 1])."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def load_digits_tasks(permutation_seed: int = 0) -> List[DigitsTask]:
    """The original digits and the pixel-permuted digits, with one fixed stratified 80/20 split.

    :param permutation_seed: seeds the pixel permutation of task 2.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(range(len(y)), test_size=0.2, random_state=0, stratify=data.target)
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    permutation = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(permutation_seed))
    tasks = []
    for pixels in (x, x[:, permutation]):
        tasks.append(DigitsTask(pixels[train_idx], y[train_idx], pixels[test_idx], y[test_idx]))
    return tasks


def binarized_mlp(hidden: int) -> nn.Sequential:
    """64-hidden-10 with binary weights, batch norm (batch statistics only) and a sign activation between the layers."""
    return nn.Sequential(
        BinaryLinear(64, hidden, bias=False),
        nn.BatchNorm1d(hidden, track_running_stats=False),
        BinaryLinear(hidden, 10, bias=False, binary_activations=True),  # sign(x) with the hardtanh STE
        nn.BatchNorm1d(10, track_running_stats=False),
    )


def train_epochs(model: nn.Module, optimizer: torch.optim.Optimizer, task: DigitsTask, epochs: int, batch_size: int,
                 generator: torch.Generator) -> None:
    """Cross-entropy training on ``task``'s training set, shuffled every epoch.

    :param model: the network.
    :param optimizer: its optimizer.
    :param task: the task.
    :param epochs: passes over the training set.
    :param batch_size: examples per step (a last, incomplete batch is dropped: batch norm needs > 1).
    :param generator: draws the shuffles.
    """
    model.train()
    n = task.x_train.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(model(task.x_train[idx]), task.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


@torch.no_grad()
def accuracy(model: nn.Module, task: DigitsTask) -> float:
    """Test accuracy of ``model`` on ``task`` (the whole test set as one batch)."""
    model.eval()
    return float((model(task.x_test).argmax(1) == task.y_test).float().mean())


def run_sequence(meta: float, seed: int, hidden: int = 1024, epochs: int = 40, batch_size: int = 20, lr: float = 0.005,
                 tasks: Optional[List[DigitsTask]] = None) -> Dict[str, float]:
    """Train a fresh binarized MLP on task 1, then task 2, with ``MetaplasticAdam(meta)``.

    :param meta: the metaplasticity strength (0 = Adam).
    :param seed: seeds the weights and the shuffles.
    :param hidden: hidden units.
    :param epochs: epochs per task.
    :param batch_size: examples per step.
    :param lr: Adam step size.
    :param tasks: the two tasks (default: :func:`load_digits_tasks`).
    :return: accuracies (``task1_after_task1``, ``task1_after_task2``, ``task2_after_task2``) and ``wall_time``.
    """
    tasks = tasks or load_digits_tasks()
    torch.manual_seed(seed)
    model = binarized_mlp(hidden)
    optimizer = MetaplasticAdam(model.parameters(), lr=lr, meta=meta)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    train_epochs(model, optimizer, tasks[0], epochs, batch_size, generator)
    task1_after_task1 = accuracy(model, tasks[0])
    train_epochs(model, optimizer, tasks[1], epochs, batch_size, generator)
    return {
        "meta": meta, "seed": seed, "task1_after_task1": task1_after_task1,
        "task1_after_task2": accuracy(model, tasks[0]), "task2_after_task2": accuracy(model, tasks[1]),
        "mean_abs_hidden_weight": float(torch.cat([p.detach().abs().flatten() for p in model.parameters() if p.dim() > 1]).mean()),
        "wall_time": time.perf_counter() - start,
    }


def stochastic_mlp(hidden: int) -> nn.Sequential:
    """64-hidden-10 of stochastic binary synapses: sign hidden units, the output's mean as logits."""
    return nn.Sequential(
        StochasticBinaryLinear(64, hidden, sign_activation=True),
        StochasticBinaryLinear(hidden, 10),
    )


def deploy(model: nn.Module, mode: Optional[str], generator: Optional[torch.Generator] = None) -> None:
    """Switch every stochastic layer of ``model`` to ``mode`` (``"sign"``, ``"sample"`` or None = mean field)."""
    for layer in model:
        layer.deploy(mode, generator)


def run_stochastic(seed: int, hidden: int = 1024, epochs: int = 40, batch_size: int = 20, lr: float = 0.005,
                   samples: int = 20, tasks: Optional[List[DigitsTask]] = None) -> Dict[str, float]:
    """Train the stochastic-binary MLP in the mean field on the original digits; compare with its ±1 deployments.

    :param seed: seeds the fields, the shuffles and the samples.
    :param hidden: hidden units.
    :param epochs: training epochs.
    :param batch_size: examples per step.
    :param lr: Adam step size on the fields.
    :param samples: independently sampled ±1 networks evaluated.
    :param tasks: the tasks (the first is used).
    :return: mean-field accuracy, the ``sign(h)`` network's, and the sampled networks' mean/min/max.
    """
    task = (tasks or load_digits_tasks())[0]
    torch.manual_seed(seed)
    model = stochastic_mlp(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    train_epochs(model, optimizer, task, epochs, batch_size, generator)
    wall = time.perf_counter() - start
    mean_field = accuracy(model, task)
    deploy(model, "sign")
    sign_acc = accuracy(model, task)
    sampled = []
    for _ in range(samples):
        deploy(model, "sample", generator)
        sampled.append(accuracy(model, task))
    deploy(model, None)
    return {
        "seed": seed, "mean_field": mean_field, "deployed_sign": sign_acc,
        "sampled_mean": statistics.fmean(sampled), "sampled_min": min(sampled), "sampled_max": max(sampled),
        "mean_abs_field": float(torch.cat([layer.field.detach().abs().flatten() for layer in model]).mean()),
        "wall_time": wall,
    }


def _median_iqr(values: List[float]) -> str:
    values = sorted(values)
    if len(values) < 2:
        return f"{values[0]:.3f}"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{statistics.median(values):.3f} [{q1:.3f}, {q3:.3f}]"


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metas", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=40, help="epochs per task")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--stochastic", action="store_true", help="also measure the stochastic-binary network's deployments")
    parser.add_argument("--samples", type=int, default=20, help="sampled ±1 networks per stochastic run")
    parser.add_argument("--stochastic-lr", type=float, default=0.1,
                        help="Adam step on the stochastic network's fields: a large step polarizes them (|h| grows), "
                             "which is what brings the deployed ±1 network close to the mean field")
    parser.add_argument("--out", default="results/digits")
    args = parser.parse_args(argv)
    for name in ("hidden", "epochs", "batch_size", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer; got {getattr(args, name)}.")
    if args.batch_size < 2:
        parser.error(f"--batch-size must be at least 2 (batch norm needs more than one example); got {args.batch_size}.")
    if any(m < 0 for m in args.metas):
        parser.error(f"--metas must be numbers >= 0; got {args.metas}.")
    torch.set_num_threads(1)
    out = Path(args.out)
    tasks = load_digits_tasks()
    settings = dict(hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    rows = []
    for meta in args.metas:
        for seed in args.seeds:
            row = run_sequence(meta, seed, tasks=tasks, **settings)
            rows.append(row)
            print(f"meta {meta:g} seed {seed}: task 1 {row['task1_after_task1']:.3f} -> {row['task1_after_task2']:.3f}, "
                  f"task 2 {row['task2_after_task2']:.3f}  ({row['wall_time']:.1f} s)", flush=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "digits_metaplasticity.csv", buffer.getvalue())
    result = {"command": " ".join(["python", "scripts/digits_metaplasticity.py", *(argv if argv is not None else sys.argv[1:])]),
              "settings": settings, "seeds": args.seeds, "runs": rows}
    print("\n| meta | task 1 after task 1 | task 1 after task 2 | task 2 after task 2 | wall time per run (s) |")
    print("|---|---|---|---|---|")
    for meta in args.metas:
        mine = [r for r in rows if r["meta"] == meta]
        print(f"| {meta:g} | " + " | ".join(_median_iqr([r[k] for r in mine]) for k in ("task1_after_task1", "task1_after_task2", "task2_after_task2"))
              + f" | {statistics.fmean(r['wall_time'] for r in mine):.1f} |")
    atomic_write_json(out / "digits_metaplasticity.json", result)
    if args.stochastic:
        stochastic_settings = {**settings, "lr": args.stochastic_lr}
        stochastic = [run_stochastic(seed, samples=args.samples, tasks=tasks, **stochastic_settings) for seed in args.seeds]
        atomic_write_json(out / "digits_stochastic.json", {"settings": stochastic_settings, "samples": args.samples, "runs": stochastic})
        print("\n| seed | mean field | deployed sign(h) | sampled ±1 (mean [min, max]) | wall time (s) |")
        print("|---|---|---|---|---|")
        for r in stochastic:
            print(f"| {r['seed']} | {r['mean_field']:.3f} | {r['deployed_sign']:.3f} | "
                  f"{r['sampled_mean']:.3f} [{r['sampled_min']:.3f}, {r['sampled_max']:.3f}] | {r['wall_time']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
