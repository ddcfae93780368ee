"""Run folders: resolved config, metrics CSV + TensorBoard, atomic checkpoints, summary, plots.

A run folder looks like::

    RUN_DIR/
      config.yaml        the resolved config (written once, checked on resume)
      metrics.csv        one row per iteration/generation
      tb/                TensorBoard events
      checkpoint.pt      latest checkpoint (written atomically)
      summary.json       written at the end
      *.png              plots

Every file is written to a temporary name and renamed into place, so a killed
run never leaves a half-written checkpoint, summary or config behind, and a
resumed run truncates ``metrics.csv`` back to its checkpoint so the metrics
stay continuous.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "summary.json"
TENSORBOARD_DIR = "tb"


class RunDirError(ValueError):
    """A run folder is missing, incomplete, or does not match what was asked."""


def _atomic_write(path: str | Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    _atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_checkpoint(obj: Mapping[str, Any], path: str | Path) -> None:
    """``torch.save`` ``obj`` atomically (tensors, numbers, strings and dicts only, never closures)."""
    _atomic_write(path, lambda f: torch.save(dict(obj), f))


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> Dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with a clear error if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"checkpoint {str(path)!r} does not exist.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise RunDirError(f"checkpoint {str(path)!r} could not be read ({err.__class__.__name__}).") from None


def prepare_run_dir(run_dir: str | Path, resume: bool) -> Path:
    """Check that ``run_dir`` can be used: new (or empty) for a fresh run, holding a checkpoint for a resume."""
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise RunDirError(f"cannot resume {str(run_dir)!r}: it has no {CONFIG_FILE}; give a folder made by 'plastic-rl train'.")
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(
            f"run-dir {str(run_dir)!r} already exists and is not empty; pass --resume {run_dir} to continue it "
            "or choose another --run-dir."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def start_over_without_checkpoint(run_dir: str | Path, resume: bool) -> bool:
    """Whether a run should really resume: a run killed before its first checkpoint starts over.

    Such a folder holds ``config.yaml`` (and perhaps a partial metrics file) but no
    checkpoint, so there is nothing to continue; its contents are removed, a note
    goes to stderr, and False is returned so the trainer starts afresh in it with
    the same config.
    """
    run_dir = Path(run_dir)
    if not resume or not (run_dir / CONFIG_FILE).is_file() or (run_dir / CHECKPOINT_FILE).is_file():
        return resume
    print(f"{run_dir}: no checkpoint was written before the run stopped; starting it over.", file=sys.stderr)
    for entry in run_dir.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return False


class MetricsLogger:
    """Append rows to ``metrics.csv`` and scalars to TensorBoard.

    :param run_dir: the run folder.
    :param fieldnames: CSV columns; the first is the step column (e.g. ``iteration``).
    :param resume_step: when resuming, rows with step > ``resume_step`` (logged after the
        last checkpoint) are dropped so the file stays continuous.
    :param tensorboard: write TensorBoard events under ``run_dir/tb``.
    """

    def __init__(
        self,
        run_dir: str | Path,
        fieldnames: Sequence[str],
        resume_step: Optional[int] = None,
        tensorboard: bool = True,
    ) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.fieldnames = list(fieldnames)
        self.step_field = self.fieldnames[0]
        rows = read_metrics(self.path) if resume_step is not None and self.path.exists() else []
        kept = [r for r in rows if float(r[self.step_field]) <= resume_step] if rows else []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.fieldnames, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(self.path, buffer.getvalue())
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.fieldnames, extrasaction="ignore")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # lazy: keeps `import plastic_rl` light

            self._tb = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR), purge_step=None if resume_step is None else resume_step + 1)

    def log(self, row: Mapping[str, Any]) -> None:
        """Write one row (missing columns stay empty) and its numeric values to TensorBoard."""
        self._writer.writerow(dict(row))
        self._file.flush()
        if self._tb is not None:
            step = int(row[self.step_field])
            for key, value in row.items():
                if key != self.step_field and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush and close the CSV and TensorBoard files."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(path: str | Path) -> List[Dict[str, str]]:
    """Rows of a metrics CSV as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_curves(
    path: str | Path,
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    bands: Optional[Mapping[str, tuple]] = None,
) -> None:
    """Save a line plot (PNG) of one or more curves, optionally with shaded (low, high) bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, ys in curves.items():
        ax.plot(x[: len(ys)], ys, label=label)
        if bands and label in bands:
            low, high = bands[label]
            ax.fill_between(x[: len(low)], low, high, alpha=0.25)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    _atomic_write(path, lambda f: f.write(buffer.getvalue()))
