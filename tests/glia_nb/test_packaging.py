"""The distribution: Jupyter in the default install, and a Binder environment pinned in full."""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    pins = {}
    for raw in (ROOT / "binder" / "requirements.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == ".":  # "." installs the repository itself
            continue
        m = PIN.match(line)
        assert m, f"binder/requirements.txt: {line!r} is not pinned as name==version"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _closure(requirements: list[str]) -> set[str]:
    """Names of every distribution the requirements pull in on this platform (extras
    followed), walked through the installed packages' metadata."""
    env = default_environment()
    seen: set[tuple[str, frozenset]] = set()
    names: set[str] = set()
    stack = [(Requirement(r), frozenset()) for r in requirements]
    while stack:
        req, _ = stack.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} (a dependency of the default install) is not installed here")
        for spec in dist.requires or ():
            sub = Requirement(spec)
            extras = sorted(req.extras) or [""]
            if sub.marker is not None and not any(sub.marker.evaluate({**env, "extra": e}) for e in extras):
                continue
            stack.append((sub, frozenset()))
    return names


def test_default_install_brings_jupyterlab_and_a_kernel():
    deps = {canonicalize_name(Requirement(d).name) for d in _project()["dependencies"]}
    assert {"jupyterlab", "ipykernel", "ipywidgets"} <= deps


def test_binder_requirements_pin_every_package_of_the_install():
    pins = _pins()
    closure = _closure(_project()["dependencies"])
    missing = sorted(closure - set(pins))
    assert not missing, f"binder/requirements.txt does not pin {missing}"
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert lines[-1].strip() == ".", "the last line installs the repository itself"
