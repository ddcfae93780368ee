"""Run folders: resolved config, metrics CSV + TensorBoard, atomic checkpoints, summary, plots.

A run folder looks like::

    RUN_DIR/
      config.yaml        the resolved config (written once, checked on resume)
      metrics.csv        one row per iteration/generation
      tb/                TensorBoard events
      checkpoint.pt      latest checkpoint (written atomically)
      summary.json       written at the end
      run.json           what wrote the folder: trainer, version, the files it owns, every resume
      *.png              plots

Every file is written to a temporary name and renamed into place, so a killed
run never leaves a half-written checkpoint, summary or config behind, and a
resumed run truncates ``metrics.csv`` back to its checkpoint so the metrics
stay continuous.

:class:`Run` is the one scaffolding every trainer uses (folder checks, config check on
resume, metrics, progress, finite checks, checkpoints, summary), so a trainer is only
its algorithm. It never deletes or overwrites a file it did not write: starting a
killed run over removes only the files a run writes, by name, and only in a folder
whose ``run.json`` says plastic-rl made it.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "summary.json"
TENSORBOARD_DIR = "tb"
RUN_FILE = "run.json"
RUN_FORMAT = "plastic-rl/run-v1"
#: Files every run may write; a trainer adds its own (plots, model files) with ``Run.open(files=...)``.
STANDARD_FILES = (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, SUMMARY_FILE, TENSORBOARD_DIR, RUN_FILE)


class LineProgress:
    """Progress for a log file: one plain line at most every ``interval`` seconds, and one at the end.

    What :meth:`Run.progress` gives when stderr is not a terminal: tqdm's carriage-return redraws
    would pile up in a log as one unreadable line. The interface is the part of tqdm's the
    trainers use (``n``, ``update``, ``set_postfix``, ``set_postfix_str``, ``close``, ``disable``).

    :param total: the last step.
    :param desc: the line's prefix.
    :param unit: the step's unit.
    :param initial: the step it starts from (a resumed run's).
    :param interval: seconds between lines.
    :param file: where the lines go (stderr by default).
    """

    disable = False

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, interval: float = 30.0, file=None) -> None:
        self.total, self.desc, self.unit, self.interval = int(total), desc, unit, float(interval)
        self._n = self._n0 = self._printed_n = int(initial)
        self._file = file
        self._postfix = ""
        self._t0 = self._last = time.monotonic()

    @property
    def n(self) -> int:
        """Steps counted so far."""
        return self._n

    @n.setter
    def n(self, value: int) -> None:
        # Setting the count (as tqdm allows) re-bases it: the rate counts only steps taken from here.
        self._n = self._n0 = self._printed_n = int(value)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; write a line if ``interval`` has passed since the last one."""
        self._n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._write(now)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs: Any) -> None:
        """Figures appended to the next line (``name=value``)."""
        items = {**(ordered_dict or {}), **kwargs}
        self._postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text appended to the next line."""
        self._postfix = s

    def close(self) -> None:
        """Write the last line, unless the last step was already reported."""
        if self.n != self._printed_n:
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        seconds = max(now - self._t0, 1e-9)
        rate = (self.n - self._n0) / seconds
        left = (self.total - self.n) / rate if rate > 0 else float("inf")
        eta = f"{left / 60:.1f} min left" if math.isfinite(left) else "time left unknown"
        line = (f"{self.desc}: {self.n}/{self.total} {self.unit} ({100.0 * self.n / max(self.total, 1):.0f}%), "
                f"{rate:.3g} {self.unit}/s, {eta}" + (f", {self._postfix}" if self._postfix else ""))
        print(line, file=self._file if self._file is not None else sys.stderr, flush=True)
        self._last, self._printed_n = now, self.n


class RunDirError(ValueError):
    """A run folder is missing, incomplete, or does not match what was asked."""


class NonFiniteError(RuntimeError):
    """A NaN or inf appeared in a training quantity; the last good checkpoint is kept."""


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


def atomic_save_figure(fig, path: str | Path, dpi: int = 100) -> None:
    """Save a matplotlib figure as PNG, atomically, and close it.

    :param fig: the figure.
    :param path: the PNG's path (its folder is created).
    :param dpi: resolution.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    _atomic_write(path, lambda f: f.write(buffer.getvalue()))


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
    atomic_save_figure(fig, path)


# ------------------------------------------------------------------------------------------------ the run
def _version() -> str:
    from plastic_rl import __version__

    return __version__


def _same(a: Any, b: Any) -> bool:
    """Config values equal after YAML's round trip (tuples are lists, ints may be floats)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


class Run:
    """One run folder, the same for every trainer. Build it with :meth:`open`.

    A trainer does::

        run = Run.open(run_dir, trainer="a2c", config=config, resume=resume,
                       resumable=("iterations",), files=("learning_curve.png",))
        if run.checkpoint is not None: ...restore from run.checkpoint...
        logger = run.metrics(FIELDS)
        bar = run.progress(total, desc="a2c", unit="it")
        for step in range(run.start_step + 1, total + 1):
            ...
            run.check_finite(step, loss=loss, grad_norm=grad_norm)
            run.save_checkpoint({...}, step)
        run.finish(summary)

    :param path: the folder.
    :param trainer: the trainer's name (``a2c``, ``es``, ``ppo``, ``continual``...).
    :param config: the run's dataclass config.
    :param checkpoint: the loaded checkpoint when resuming, else None.
    :param step_name: what a step is called in messages (``iteration``, ``generation``, ``step``).
    """

    def __init__(self, path: Path, trainer: str, config: Any, checkpoint: Optional[Dict[str, Any]], step_name: str,
                 files: Sequence[str], progress: bool = True, tensorboard: bool = True) -> None:
        self.path = path
        self.trainer = trainer
        self.config = config
        self.checkpoint = checkpoint
        self.step_name = step_name
        self.files = tuple(files)
        self.start_step = int(checkpoint["step"]) if checkpoint is not None else 0
        self.last_checkpoint_step: Optional[int] = self.start_step if checkpoint is not None else None
        self._progress = progress
        self._tensorboard = tensorboard

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        trainer: str,
        config: Any,
        resume: bool = False,
        resumable: Iterable[str] = (),
        files: Sequence[str] = (),
        step_name: str = "step",
    ) -> "Run":
        """Check ``run_dir`` and prepare it for a fresh run, or load its checkpoint to resume it.

        Fresh: the folder must not exist or be empty. Resume: it must be a run folder of
        this trainer; without a checkpoint (killed before the first one) the run's own
        files are removed and it starts over; with one, every config field not in
        ``resumable`` must equal the checkpoint's, and changes to the others are recorded
        in ``run.json``. The resolved config is then written as ``config.yaml``.

        :param run_dir: the run folder.
        :param trainer: the trainer's name, written first in ``config.yaml``.
        :param config: the dataclass config of this run.
        :param resume: continue the run in ``run_dir`` from its last checkpoint.
        :param resumable: config fields that may change on resume (how far to go, where to run, step size).
        :param files: names of the other files this trainer writes in the folder (plots, model files).
        :param step_name: what a step is called in messages.
        """
        from plastic_rl.config import config_to_dict, save_config

        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"run-dir {str(path)!r} is a file; give a folder (new, or a run folder to --resume).")
        owned = tuple(STANDARD_FILES) + tuple(files)
        checkpoint = None
        record = _read_run_record(path)
        current = config_to_dict(config)
        if resume:
            saved_config = _check_run_folder(path, trainer, record)
            if not (path / CHECKPOINT_FILE).is_file():
                print(f"{path}: no checkpoint was written before the run stopped; starting it over.", file=sys.stderr)
                _remove_owned(path, set(owned) | set(record.get("files", [])) if record else set(owned))
                record = None
            else:
                checkpoint = load_checkpoint(path / CHECKPOINT_FILE)
                if checkpoint.get("trainer") not in (None, trainer):
                    raise RunDirError(f"cannot resume {str(path)!r} with the {trainer} trainer: its checkpoint was written by the {checkpoint.get('trainer')} trainer.")
                saved = _with_new_field_defaults(checkpoint.get("config") or saved_config, config)
                changed = _check_resumed_config(path, saved, current, set(resumable))
                if "step" not in checkpoint:  # written before Run existed: A2C counted iterations, ES generations
                    legacy = checkpoint.get(step_name)
                    if legacy is None:
                        raise RunDirError(f"cannot resume {str(path)!r}: its {CHECKPOINT_FILE} has no {step_name} count.")
                    checkpoint["step"] = int(legacy)
                if changed:
                    note = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
                    print(f"{path}: resuming at {step_name} {checkpoint['step']} with {note}.", file=sys.stderr)
                record = record or _new_run_record(trainer, owned)
                record.setdefault("resumes", []).append(
                    {"at_" + step_name: int(checkpoint["step"]), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                     "changed": {k: [old, new] for k, (old, new) in changed.items()}, "platform": platform_record()}
                )
        elif path.exists() and any(path.iterdir()):
            raise RunDirError(
                f"run-dir {str(path)!r} already exists and is not empty; pass --resume {path} to continue it "
                "or choose another --run-dir."
            )
        path.mkdir(parents=True, exist_ok=True)
        if record is None:
            record = _new_run_record(trainer, owned)
        record["files"] = sorted(set(record.get("files", [])) | set(owned))
        atomic_write_json(path / RUN_FILE, record)
        # 'trainer' first, so that `plastic-rl train --resume RUN_DIR` knows which trainer reads this config.
        save_config(config, path / CONFIG_FILE, trainer=trainer)
        progress = bool(getattr(config, "progress", True))
        tensorboard = bool(getattr(config, "tensorboard", True))
        return cls(path, trainer, config, checkpoint, step_name, owned, progress=progress, tensorboard=tensorboard)

    # ----------------------------------------------------------------- during the run
    @property
    def resumed(self) -> bool:
        """Whether this run continues from a checkpoint."""
        return self.checkpoint is not None

    def metrics(self, fieldnames: Sequence[str]) -> "MetricsLogger":
        """The metrics logger (CSV + TensorBoard), truncated back to the checkpoint when resuming."""
        return MetricsLogger(self.path, fieldnames, resume_step=self.start_step if self.resumed else None,
                             tensorboard=self._tensorboard)

    def progress(self, total: int, desc: str, unit: str, log_lines: bool = True):
        """Progress on stderr from the resumed step to ``total``: a tqdm bar on a terminal; where stderr is a
        file or pipe (a background run, a batch job), a :class:`LineProgress` that writes a plain line every
        30 s; nothing when the config's ``progress`` is off.

        :param total: the last step.
        :param desc: what runs (the line's prefix).
        :param unit: the step's unit.
        :param log_lines: False: no plain lines off a terminal (the trainer prints its own line per step).
        """
        from tqdm import tqdm

        if self._progress and not sys.stderr.isatty() and log_lines:
            return LineProgress(total, desc, unit, initial=self.start_step)
        return tqdm(total=total, initial=self.start_step, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                    disable=not (self._progress and sys.stderr.isatty()))

    def check_finite(self, step: int, **quantities: Any) -> None:
        """Raise :class:`NonFiniteError` if any quantity (a number or tensor) holds a NaN or inf.

        Call it before :meth:`save_checkpoint`, so the last good checkpoint is never replaced by a poisoned one.

        :param step: the current iteration/generation, named in the message.
        :param quantities: name -> value (float, int, tensor, or a sequence of tensors such as a state).
        """
        for name, value in quantities.items():
            if not _all_finite(value):
                kept = (f"the last good checkpoint ({self.step_name} {self.last_checkpoint_step}) is kept"
                        if self.last_checkpoint_step is not None else "no checkpoint had been written yet")
                raise NonFiniteError(
                    f"{name} became NaN or inf at {self.step_name} {step}; the run stopped and {kept}: "
                    f"continue with --resume {self.path} (e.g. with a smaller step)."
                )

    def save_checkpoint(self, payload: Mapping[str, Any], step: int) -> None:
        """Write ``checkpoint.pt`` atomically: ``payload`` plus the trainer, the config and the step."""
        from plastic_rl.config import config_to_dict

        save_checkpoint({**payload, "trainer": self.trainer, "config": config_to_dict(self.config), "step": int(step)},
                        self.path / CHECKPOINT_FILE)
        self.last_checkpoint_step = int(step)

    def write_file(self, name: str, write: Callable[[Any], None]) -> Path:
        """Write another file of the run atomically; ``write`` gets a binary file object. ``name`` must be declared in ``files``."""
        if name not in self.files:
            raise ValueError(f"file {name!r} is not one of this run's declared files ({', '.join(self.files)}).")
        _atomic_write(self.path / name, write)
        return self.path / name

    def finish(self, summary: Mapping[str, Any]) -> Dict[str, Any]:
        """Write ``summary.json`` atomically and return the summary."""
        summary = dict(summary)
        atomic_write_json(self.path / SUMMARY_FILE, summary)
        return summary


def _all_finite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all()) if value.is_floating_point() or value.is_complex() else True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_all_finite(v) for v in value)
    if isinstance(value, Mapping):
        return all(_all_finite(v) for v in value.values())
    return True


def platform_record() -> Dict[str, Any]:
    """Where a run (or a resumed piece of it) was computed: the same seed can give another trajectory on another
    CPU (e.g. MuJoCo and torch kernels with and without AVX-512 differ in the last bits, and chaotic rollouts
    amplify that), so results are only comparable step for step within one platform."""
    versions = {}
    for package in ("torch", "numpy", "gymnasium", "mujoco", "stable-baselines3", "evotorch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "machine": platform.machine(), "cpu": _cpu_model(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "packages": versions}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _new_run_record(trainer: str, files: Sequence[str]) -> Dict[str, Any]:
    return {"format": RUN_FORMAT, "trainer": trainer, "plastic_rl_version": _version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "platform": platform_record(), "files": sorted(files),
            "resumes": []}


def _read_run_record(path: Path) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads((path / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RUN_FORMAT else None


def _check_run_folder(path: Path, trainer: str, record: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The saved config of a folder that really is a run folder of ``trainer``; else one sentence."""
    from plastic_rl.config import ConfigError, load_yaml

    if not path.is_dir():
        raise RunDirError(f"cannot resume {str(path)!r}: no such folder; give a folder made by 'plastic-rl train'.")
    if not (path / CONFIG_FILE).is_file():
        raise RunDirError(f"cannot resume {str(path)!r}: it has no {CONFIG_FILE}; give a folder made by 'plastic-rl train'.")
    # A folder is a run folder if plastic-rl says it made it (run.json), or, for folders written
    # before run.json existed, if it holds a checkpoint next to its config.
    if record is None and not (path / CHECKPOINT_FILE).is_file():
        raise RunDirError(f"cannot resume {str(path)!r}: it does not look like a plastic-rl run folder (no {RUN_FILE}); nothing was changed.")
    if record is not None and record.get("trainer") != trainer:
        raise RunDirError(f"cannot resume {str(path)!r} with the {trainer} trainer: it is a {record.get('trainer')} run.")
    try:
        saved = load_yaml(path / CONFIG_FILE)
    except ConfigError as err:
        raise RunDirError(str(err)) from None
    saved.pop("trainer", None)
    return saved


def _with_new_field_defaults(saved: Mapping[str, Any], config: Any) -> Dict[str, Any]:
    """``saved`` plus the defaults of config fields it lacks: fields added to a trainer after the run was made
    (e.g. ``binary``) then resume at their default instead of being refused as changed."""
    import dataclasses

    filled = dict(saved)
    for f in dataclasses.fields(config):
        if f.name in filled:
            continue
        if f.default is not dataclasses.MISSING:
            filled[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            filled[f.name] = f.default_factory()  # type: ignore[misc]
    return filled


def _check_resumed_config(path: Path, saved: Mapping[str, Any], current: Mapping[str, Any], resumable: set) -> Dict[str, tuple]:
    """Refuse a resume that changes a field outside ``resumable``; return the resumable fields that changed."""
    changed = {}
    for name, value in current.items():
        old = saved.get(name)
        if _same(old, value):
            continue
        if name not in resumable:
            allowed = ", ".join(sorted(resumable)) or "none"
            raise RunDirError(
                f"cannot resume {str(path)!r}: config field {name!r} is {old!r} in the run but {value!r} now; "
                f"only {allowed} may change on resume."
            )
        changed[name] = (old, value)
    return changed


def _remove_owned(path: Path, names: Iterable[str]) -> None:
    """Remove the named run files (and the temporary files of atomic writes) from ``path``; nothing else."""
    for name in names:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for leftover in path.glob(".*.tmp"):
        if any(leftover.name.startswith(f".{name}.") for name in names):
            leftover.unlink()
