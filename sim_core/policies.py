"""Turning a policy spec into a policy object: one loader for routers, batch policies and
autoscalers, and one family of errors that says by its *type* what went wrong.

A spec is a registry name with optional parameters (``"hra:decode_growth=0.5"``), a
``path/to/file.py:ClassName`` spec, a class or an instance. Errors:

* :class:`PolicyLoadError` — the base (a ``ValueError``); every failure below is one.
* :class:`PolicyFileNotFoundError` — the policy file does not exist.
* :class:`PolicyImportError` — the file raised while it was imported (a syntax error, a
  failing import, an exception at module level).
* :class:`MissingPolicyClassError` — no such class in the file, or the class lacks the
  layer's method (``route``, ``key`` or ``decide``).
* :class:`UnknownPolicyError` — a registry name that is not registered.
* :class:`PolicyParameterError` — parameters the policy does not take (the message lists the
  ones it does), parameters that are not numbers where numbers are needed, NaN or infinity,
  or values the policy's constructor rejects.

This module imports only the standard library, so loading a policy file never pays for the
compiled engine.
"""
from __future__ import annotations

import importlib.util
import inspect
import math
import sys
import uuid
from pathlib import Path
from typing import Any, Mapping

__all__ = ["PolicyLoadError", "PolicyFileNotFoundError", "PolicyImportError",
           "MissingPolicyClassError", "UnknownPolicyError", "PolicyParameterError",
           "POLICY_METHODS", "load_policy_class", "parse_params", "check_params", "make_policy",
           "split_file_spec"]

# The method a policy of each layer must have (the protocols in routers.py,
# batch_policies.py and autoscale.py).
POLICY_METHODS = {"router": "route", "batch_policy": "key", "autoscaler": "decide"}
_KIND_TEXT = {"router": "router", "batch_policy": "batch policy", "autoscaler": "autoscaler"}


class PolicyLoadError(ValueError):
    """A policy spec could not be turned into a policy (the base of the errors below)."""


class PolicyFileNotFoundError(PolicyLoadError):
    """The policy file named in a spec does not exist."""


class PolicyImportError(PolicyLoadError):
    """The policy file raised while it was imported."""


class MissingPolicyClassError(PolicyLoadError):
    """The policy file has no such class, or the class lacks its layer's method."""


class UnknownPolicyError(PolicyLoadError):
    """A registry name that is not registered."""


class PolicyParameterError(PolicyLoadError):
    """Parameters the policy does not take, or values it cannot use."""


def split_file_spec(spec: str) -> tuple[str, str] | None:
    """``("path/to/file.py", "ClassName")`` for a file spec, None for a registry spec."""
    head, sep, tail = str(spec).rpartition(":")
    return (head, tail) if sep and head.endswith(".py") else None


def spec_label(spec) -> str:
    """A short name for a policy spec: ``file.py:ClassName`` for a file spec (the folders
    dropped), the spec itself otherwise (legends, table rows)."""
    parts = split_file_spec(spec)
    return f"{Path(parts[0]).name}:{parts[1]}" if parts else str(spec)


def load_policy_class(path: str | Path, class_name: str, layer: str | None = None):
    """Import ``class_name`` (a class, or for batch policies also a function) from a Python
    file, without touching ``sys.path`` and without leaving the module in ``sys.modules``.

    With ``layer`` (``"router"``, ``"batch_policy"``, ``"autoscaler"``) the class must have
    that layer's method; a batch policy may also be a plain function."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileNotFoundError(f"policy file {path} does not exist")
    mod_name = f"glia_policy_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered only while the file runs: dataclasses and typing look the module up then.
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any import-time failure of user code
        raise PolicyImportError(f"policy file {path} does not import: "
                                f"{type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(mod_name, None)
    obj = getattr(module, class_name, None)
    if obj is None:
        found = sorted(n for n, v in vars(module).items() if isinstance(v, type)
                       and v.__module__ == mod_name)
        raise MissingPolicyClassError(f"policy file {path} has no class {class_name!r}"
                                      f" (classes found: {', '.join(found) or 'none'})")
    if layer is not None:
        method = POLICY_METHODS[layer]
        plain_function = layer == "batch_policy" and callable(obj) and not isinstance(obj, type)
        if not plain_function and not callable(getattr(obj, method, None)):
            raise MissingPolicyClassError(f"class {class_name} has no {method}() method")
    return obj


def parse_params(text: str, kind: str = "policy", name: str = "") -> dict[str, Any]:
    """``"a=1,b=0.5,c=true"`` → ``{"a": 1, "b": 0.5, "c": True}`` (numbers must be finite)."""
    params: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise PolicyParameterError(f"{_kind(kind)} parameter {item!r} is not key=value")
        k, v = (x.strip() for x in item.split("=", 1))
        for conv in (int, float):
            try:
                params[k] = conv(v)
                break
            except ValueError:
                continue
        else:
            params[k] = {"true": True, "false": False}.get(v.lower(), v)
    _check_finite(params, kind, name)
    return params


def check_params(cls, params: Mapping[str, Any], kind: str = "policy", name: str = "") -> None:
    """Raise :class:`PolicyParameterError` naming the valid parameters when ``cls`` does not
    take one of ``params``, or when a number among them is NaN or infinite."""
    _check_finite(params, kind, name)
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # builtins and C types: let the call decide
        return
    accepted = [p.name for p in sig.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    unknown = [k for k in params if k not in accepted]
    if unknown:
        valid = ", ".join(accepted) or "none"
        raise PolicyParameterError(
            f"bad parameters for {_kind(kind)} {name or cls.__name__!r}: unknown parameter"
            f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid parameters: {valid}")


def _check_finite(params: Mapping[str, Any], kind: str, name: str) -> None:
    for k, v in params.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise PolicyParameterError(f"bad parameters for {_kind(kind)} {name!r}: {k} must be "
                                       f"a finite number, got {v}")


def _kind(kind: str) -> str:
    return _KIND_TEXT.get(kind, kind)


def instantiate(cls, params: Mapping[str, Any], kind: str, name: str = ""):
    """``cls(**params)`` after :func:`check_params`; a constructor that rejects the values
    (``TypeError``/``ValueError``) becomes a :class:`PolicyParameterError`."""
    check_params(cls, params, kind, name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise PolicyParameterError(f"bad parameters for {_kind(kind)} "
                                   f"{name or getattr(cls, '__name__', '')!r}: {exc}") from exc


def make_policy(spec, registry: Mapping[str, type], kind: str, **params):
    """A policy object of layer ``kind`` from a registry name (``"name"`` or
    ``"name:k=v,k=v"``), a ``path/to/file.py:ClassName`` spec, a class or an instance
    (returned as is); it must have the layer's method."""
    method = POLICY_METHODS[kind]
    if not isinstance(spec, (str, Path)):
        obj = instantiate(spec, params, kind) if isinstance(spec, type) else spec
    else:
        file_spec = split_file_spec(str(spec))
        if file_spec:
            cls = load_policy_class(*file_spec, layer=kind)
            obj = instantiate(cls, params, kind, file_spec[1])
        else:
            name, _, ptxt = str(spec).partition(":")
            if name not in registry:
                raise UnknownPolicyError(f"unknown {_kind(kind)} {name!r}; known: "
                                         f"{', '.join(registry)} or path/to/file.py:ClassName")
            obj = instantiate(registry[name], {**parse_params(ptxt, kind, name), **params},
                              kind, name)
    if not callable(getattr(obj, method, None)):
        raise MissingPolicyClassError(f"{type(obj).__name__} has no {method}() method")
    return obj
