"""The policy process's reply encoding and the harness's decoding of it (no process here:
the end-to-end paths are in test_sandbox.py and test_redteam.py)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from glia_nb.evaluation import wire
from glia_nb.evaluation.policy_process import InvalidDecision, _reply
from glia_nb.evaluation.proxy import PolicyError, _decisions


def _decoded(frame: bytes):
    n, kind = wire.HEADER.unpack_from(frame)
    assert kind == ord("D") and len(frame) == wire.HEADER.size + n
    return [tuple(p) for p in _decisions(frame, wire.HEADER.size, n)]


@pytest.mark.parametrize("decisions, pairs", [
    ([], []), ((), []), (None, []), (np.zeros((0, 2), np.int64), []),
    ([(3, 1)], [(3, 1)]),
    ([(3, 1), (4, 0), (9, 2)], [(3, 1), (4, 0), (9, 2)]),
    (((5, 2),), [(5, 2)]),
    ([[3, 1]], [(3, 1)]),                                   # a list as a pair
    ([(np.int64(7), np.int32(1))], [(7, 1)]),               # numpy integers
    ([(3, 1), (np.int64(4), 0)], [(3, 1), (4, 0)]),         # mixed
    (np.array([[1, 2], [3, 0]], np.int32), [(1, 2), (3, 0)]),
    ((p for p in [(8, 1)]), [(8, 1)]),                      # any iterable of pairs
    ([(2**62, 0)], [(2**62, 0)]),
])
def test_reply_round_trips_every_accepted_shape(decisions, pairs):
    assert _decoded(_reply(decisions)) == pairs


@pytest.mark.parametrize("decisions, needle", [
    ([(True, 1)], "pair of ints"), ([(1, False)], "pair of ints"),
    ([(3, 1), (1.0, 2)], "pair of ints"), ([(3,)], "pair"), ([(3, 1, 2)], "pair"),
    ([(3, 1), "ab"], "pair of ints"), (np.array([[1.0, 2.0]]), "integer pairs"),
])
def test_reply_refuses_what_is_not_integer_pairs(decisions, needle):
    with pytest.raises(InvalidDecision, match=needle):
        _reply(decisions)


def test_reply_out_of_int64_range_is_an_error_not_a_wrapped_number():
    for decisions in ([(2**63, 0)], [(1, 2), (-(2**63) - 1, 0)]):
        with pytest.raises(OverflowError):
            _reply(decisions)


def test_harness_refuses_a_reply_that_is_not_whole_pairs():
    for n in (8, 24, 3):
        with pytest.raises(PolicyError) as err:
            _decisions(bytes(n), 0, n)
        assert err.value.kind == "invalid_decision"
    assert _decisions(struct.pack("<4q", 1, 2, 3, 4), 0, 32) == [(1, 2), (3, 4)]
