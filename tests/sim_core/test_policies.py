"""One policy loader for every layer; what went wrong is told by the error's type."""
from __future__ import annotations

import math
import sys

import pytest

from sim_core.autoscale import make_autoscaler
from sim_core.batch_policies import make_batch_policy
from sim_core.policies import (MissingPolicyClassError, PolicyFileNotFoundError,
                               PolicyImportError, PolicyLoadError, PolicyParameterError,
                               UnknownPolicyError, load_policy_class)
from sim_core.routers import make_router

MAKERS = {"router": make_router, "batch_policy": make_batch_policy,
          "autoscaler": make_autoscaler}
METHOD = {"router": "route", "batch_policy": "key", "autoscaler": "decide"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "broken.py").write_text("def oops(:\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('at import')\n")
    (tmp_path / "empty.py").write_text("class Other:\n    pass\n")
    return tmp_path


@pytest.mark.parametrize("layer", list(MAKERS))
def test_every_layer_raises_the_same_error_types(layer, files):
    make = MAKERS[layer]
    with pytest.raises(PolicyFileNotFoundError, match="does not exist"):
        make(f"{files / 'missing.py'}:X")
    with pytest.raises(PolicyImportError, match="does not import: SyntaxError"):
        make(f"{files / 'broken.py'}:X")
    with pytest.raises(PolicyImportError, match="RuntimeError: at import"):
        make(f"{files / 'raises.py'}:X")
    with pytest.raises(MissingPolicyClassError, match="no class 'X'.*Other"):
        make(f"{files / 'empty.py'}:X")
    with pytest.raises(MissingPolicyClassError, match=f"no {METHOD[layer]}"):
        make(f"{files / 'empty.py'}:Other")
    with pytest.raises(UnknownPolicyError, match="unknown"):
        make("no-such-policy")
    # Every one of them is a PolicyLoadError (a ValueError), whatever the layer.
    with pytest.raises(PolicyLoadError):
        make("no-such-policy")
    assert issubclass(PolicyLoadError, ValueError)


def test_a_misspelt_parameter_names_the_valid_ones():
    with pytest.raises(PolicyParameterError) as info:
        make_router("hra:decod_growth=1")
    msg = str(info.value)
    assert "decod_growth" in msg and "decode_growth, safety_fraction, shortest_first" in msg
    assert "__init__" not in msg
    with pytest.raises(PolicyParameterError, match="unknown parameter 'target_qps'.*valid"):
        make_autoscaler("proportional:target_qps=3")
    with pytest.raises(PolicyParameterError, match="seconds_per_token"):
        make_batch_policy("aged_spf:seconds_per_tok=0.1")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_parameters_are_rejected_naming_the_parameter(value):
    with pytest.raises(PolicyParameterError, match=f"decode_growth must be a finite number, got {value}"):
        make_router(f"hra:decode_growth={value}")
    with pytest.raises(PolicyParameterError, match="decode_growth must be a finite"):
        make_router("hra", decode_growth=math.nan)


def test_a_value_the_constructor_rejects_is_a_parameter_error():
    with pytest.raises(PolicyParameterError, match="bad parameters for batch policy 'aged_spf'"):
        make_batch_policy("aged_spf:seconds_per_token=-1")


def test_loading_leaves_no_module_behind(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("from dataclasses import dataclass\n\n@dataclass\nclass Mine:\n    x: int = 1\n"
                 "    def route(self, view):\n        return []\n")
    before = set(sys.modules)
    for _ in range(3):
        cls = load_policy_class(f, "Mine", "router")
        assert cls().x == 1
    assert set(sys.modules) == before


def test_the_cli_reports_a_misspelt_parameter_in_one_line(capsys):
    from glia_nb.cli.main import main

    rc = main(["simulate", "--router", "hra:decod_growth=1", "--seeds", "1", "--duration", "5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("glia: error:") and "valid parameters: decode_growth" in err


def test_spec_label_drops_the_folders_of_a_file_spec():
    from sim_core.policies import spec_label

    assert spec_label("/tmp/pytest-7/run0/llq.py:LLQ") == "llq.py:LLQ"
    assert spec_label("hra:headroom=0.6") == "hra:headroom=0.6"  # a registry spec stays whole
    assert spec_label("llq") == "llq"
