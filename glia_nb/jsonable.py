"""JSON-native values for journals, ledgers and tool results: the conversion every record
goes through, and how a score read back is judged finite."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
from pathlib import PurePath
from typing import Any, Mapping

import numpy as np

__all__ = ["finite_or_none", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to JSON-native values (dict with str keys, list, str, int, float,
    bool, None).

    Handles NumPy scalars and arrays, objects with ``to_dict()``, dataclasses, paths,
    dates, enums, sets and tuples. Non-finite floats (NaN, ±inf) become None because
    strict JSON has no spelling for them. Anything else raises ``TypeError``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int) and not isinstance(obj, enum.Enum):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [to_jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:  # mixed types: keep a deterministic order anyway
            return sorted(items, key=repr)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, type):
        return to_jsonable(to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    raise TypeError(f"cannot store a {type(obj).__module__}.{type(obj).__qualname__} in the journal")


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, non-numeric, NaN or infinite): how
    scores read back from journals, ledgers and tool results are compared."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, np.generic):
        k = k.item()
    if isinstance(k, (bool, int, float, PurePath)) or k is None:
        return str(k)
    if isinstance(k, enum.Enum):
        return str(k.value)
    raise TypeError(f"journal dict keys must be str-like, got {type(k).__name__}")


