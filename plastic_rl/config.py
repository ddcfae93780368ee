"""Dataclass configs read from YAML/dicts with one-sentence errors.

Each trainer declares a dataclass whose fields explain themselves (CleanRL
style). This module turns a dict (from a preset, a YAML file or CLI flags) into
that dataclass, rejecting unknown fields and wrong types with a message that
names the field and what is allowed, and writes the resolved config back out.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Type, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A config value or file is wrong; the message says which field and what is allowed."""


def load_yaml(path: str | Path) -> Dict[str, Any]:
    """Read a YAML mapping from ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML ({err.__class__.__name__}: {err}).") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of field: value; got {type(data).__name__}.")
    return data


def yaml_mapping(text: str) -> Optional[Dict[str, Any]]:
    """``text`` (a command-line option) read as a YAML mapping; None if it is not valid YAML or not a mapping,
    so that the caller can name its own option in the error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field's type annotation, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0]) if len(inner) == 1 else value
    if annotation is float:
        if isinstance(value, str):
            # PyYAML reads 1e-4 (no dot) as a string (YAML 1.1); accept what a user writes.
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"config field {name!r} must be a number; got {value!r}.") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config field {name!r} must be a number; got {value!r}.")
        if not math.isfinite(value):
            raise ConfigError(f"config field {name!r} must be a finite number; got {value!r}.")
        return float(value)
    if annotation is int:
        if isinstance(value, str):
            try:  # "1e6" from YAML, as above
                value = float(value)
            except ValueError:
                raise ConfigError(f"config field {name!r} must be an integer; got {value!r}.") from None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                return int(value)
            raise ConfigError(f"config field {name!r} must be an integer; got {value!r}.")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config field {name!r} must be true or false; got {value!r}.")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"config field {name!r} must be a string; got {value!r}.")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field {name!r} must be a list; got {value!r}.")
        item = args[0] if args else Any
        items = [_coerce(name, v, item) if item is not Any else v for v in value]
        return tuple(items) if origin is tuple else items
    return value


def config_from_dict(cls: Type[C], data: Mapping[str, Any], source: str = "config") -> C:
    """Build dataclass ``cls`` from ``data``.

    :param cls: the dataclass type.
    :param data: field values; missing fields take their defaults.
    :param source: where ``data`` came from, for error messages.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown field {unknown[0]!r} in {source}; allowed fields are: {', '.join(sorted(fields))}."
        )
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        _refuse_nan(name, value)
    values = {name: _coerce(name, value, hints[name]) for name, value in data.items()}
    try:
        return cls(**values)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _refuse_nan(name: str, value: Any) -> None:
    """NaN or inf anywhere in a value (env_kwargs included) is refused: it would poison the run silently."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config field {name!r} must be a finite number; got {value!r}.")
    if isinstance(value, (list, tuple)):
        for item in value:
            _refuse_nan(name, item)
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nan(f"{name}.{key}", item)


def check_device(value: str, name: str = "device") -> None:
    """Raise :class:`ConfigError` unless ``value`` is a torch device this machine has.

    :param value: e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    :param name: the config field, for the message.
    """
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"config field {name!r} must be a torch device such as 'cpu' or 'cuda'; got {value!r}.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"config field {name!r} is {value!r} but this torch build or machine has no CUDA device; use 'cpu'.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"config field {name!r} is {value!r} but only {torch.cuda.device_count()} CUDA device(s) exist.")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"config field {name!r} is {value!r} but MPS is not available here; use 'cpu'.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"config field {name!r} must be 'cpu', 'cuda' (or 'cuda:N') or 'mps'; got {value!r}.")


def check_seed(value: int, name: str = "seed") -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer in [0, 2**31)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise ConfigError(f"config field {name!r} must be an integer in [0, 2**31); got {value!r}.")


def config_to_dict(config: Any) -> Dict[str, Any]:
    """A plain, YAML-safe dict of a dataclass config (tuples become lists)."""

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def save_config(config: Any, path: str | Path, **extra: Any) -> None:
    """Write the resolved config as YAML, atomically.

    :param config: a dataclass config.
    :param path: the YAML file.
    :param extra: fields written before the config's own (e.g. ``trainer="a2c"``).
    """
    from plastic_rl.runs import atomic_write_text  # runs imports this module

    data = {**extra, **config_to_dict(config)}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
