"""Continual-learning metrics as Continual World defines them, the R-matrix CSV and its heat map.

``R[i][j]`` is the performance on task ``j`` after training stage ``i`` (the
policy has then learned tasks ``0..i`` in turn); ``initial[j]`` is the untrained
policy's. With ``N`` tasks (Wołczyk et al. 2021, Continual World §4):

- average performance: ``mean_j R[N-1][j]``, at the end of the sequence;
- forgetting of task ``j``: ``R[j][j] − R[N-1][j]`` (performance right after
  learning it minus performance at the end); the mean is over the first
  ``N − 1`` tasks, since the last task cannot have been forgotten yet;
- learning of task ``j`` (not a Continual World figure): ``R[j][j] − initial[j]``,
  how far its own stage took it past the untrained policy. Low forgetting means
  little unless this is positive: a learner that stops learning after its first
  task forgets nothing of the later ones. The mean is over all ``N`` tasks;
- forward transfer of task ``j``: ``(AUC_j − AUC^ref_j) / (1 − AUC^ref_j)``, where
  ``AUC_j`` is the mean performance over stage ``j``'s training curve and
  ``AUC^ref_j`` the same for a policy trained on task ``j`` alone from scratch
  with the same budget.

Continual World's performance is a success rate in [0, 1]. Here returns are
unbounded, so forward transfer (and the ``*_normalized`` figures) use
performance normalized per task, ``p = (R − initial_j) / (ref_j − initial_j)``:
0 is the untrained policy and 1 the from-scratch reference's final performance
(undefined, None, for a task whose reference did not improve on the untrained
policy, or whose reference's training curve averages at or above its final
level). The raw figures, in return units, are reported as well: the raw forward
transfer ``AUC_j − AUC^ref_j`` is defined for every task.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["continual_metrics", "matrix_csv", "plot_matrix"]


def _mean(values: Sequence[float]) -> Optional[float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def continual_metrics(
    matrix: Sequence[Sequence[float]],
    initial: Sequence[float],
    stage_auc: Sequence[float],
    reference_auc: Optional[Sequence[float]] = None,
    reference_final: Optional[Sequence[float]] = None,
) -> Dict[str, Any]:
    """Average performance, forgetting and forward transfer from a finished run's figures.

    :param matrix: ``R[i][j]``, ``N × N``.
    :param initial: the untrained policy's performance on each task (``N``).
    :param stage_auc: mean training performance over stage ``j`` of the sequence (``N``).
    :param reference_auc: the same for the from-scratch reference run of each task, or None.
    :param reference_final: each reference's final performance on its task, or None.
    :return: a JSON-safe dict (None where a figure is undefined).
    """
    n = len(matrix)
    if n == 0 or any(len(row) != n for row in matrix) or len(initial) != n or len(stage_auc) != n:
        raise ValueError(f"matrix must be N x N with N entries in initial and stage_auc; got {n} rows.")
    last = matrix[-1]
    forgetting = [matrix[j][j] - last[j] for j in range(n)]
    learning = [matrix[j][j] - initial[j] for j in range(n)]
    out: Dict[str, Any] = {
        "average_performance": _mean(last),
        "forgetting": forgetting,
        "mean_forgetting": _mean(forgetting[:-1]) if n > 1 else None,
        "learning": learning,
        "mean_learning": _mean(learning),
        "stage_auc": list(stage_auc),
    }
    if reference_auc is None or reference_final is None:
        out.update(forward_transfer=None, mean_forward_transfer=None)
        return out

    def normalized(value: float, j: int) -> Optional[float]:
        # Undefined when the reference did not improve on the untrained policy: there is no scale.
        span = reference_final[j] - initial[j]
        return (value - initial[j]) / span if span > 1e-12 else None

    transfer: List[Optional[float]] = []
    for j in range(n):
        auc, ref = normalized(stage_auc[j], j), normalized(reference_auc[j], j)
        # Continual World's formula needs 0 <= AUC_ref < 1 (below the final level): a reference whose training
        # curve averages above its own final evaluation (noise, or a late collapse) leaves it undefined.
        transfer.append(None if auc is None or ref is None or not 0 <= ref < 1 else (auc - ref) / (1 - ref))
    raw = [stage_auc[j] - reference_auc[j] for j in range(n)]
    last_norm = [normalized(last[j], j) for j in range(n)]
    forgetting_norm = [None if normalized(matrix[j][j], j) is None else normalized(matrix[j][j], j) - last_norm[j] for j in range(n)]
    out.update(
        forward_transfer=transfer,
        mean_forward_transfer=_mean(transfer),
        forward_transfer_raw=raw,
        mean_forward_transfer_raw=_mean(raw[1:]) if n > 1 else None,  # task 0's is 0: it is its own reference
        reference_auc=list(reference_auc),
        reference_final=list(reference_final),
        average_performance_normalized=_mean(last_norm),
        forgetting_normalized=forgetting_norm,
        mean_forgetting_normalized=_mean(forgetting_norm[:-1]) if n > 1 else None,
    )
    return out


def matrix_csv(task_names: Sequence[str], initial: Sequence[float], matrix: Sequence[Sequence[float]]) -> str:
    """The R matrix as CSV: a header of task names, a ``before training`` row, then one row per finished stage."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["after_stage", *task_names])
    writer.writerow(["before training", *[f"{v:.6g}" for v in initial]])
    for name, row in zip(task_names, matrix):
        writer.writerow([name, *[f"{v:.6g}" for v in row]])
    return buffer.getvalue()


def plot_matrix(task_names: Sequence[str], initial: Sequence[float], matrix: Sequence[Sequence[float]], title: str) -> bytes:
    """A heat map (PNG bytes) of the R matrix: rows = after stage (first row: before training), columns = task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [list(initial)] + [list(r) for r in matrix]
    labels = ["before"] + [f"after {name}" for name in task_names[: len(matrix)]]
    n = len(task_names)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * n, 1.2 + 0.6 * len(rows)))
    image = ax.imshow(rows, cmap="viridis", aspect="auto")
    ax.set_xticks(range(n), labels=list(task_names), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=labels)
    ax.set_xlabel("evaluated on task")
    low, high = min(map(min, rows)), max(map(max, rows))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            bright = high > low and (value - low) / (high - low) > 0.6
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="black" if bright else "white", fontsize=8)
    fig.colorbar(image, ax=ax, label="performance (mean return)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
