"""Trace validation and Vidur-format CSV reading/writing."""
import numpy as np
import pytest

from workloads.trace import Trace, TraceError


def small_trace(**kw):
    return Trace(np.array([0.0, 0.5, 0.5, 2.25]), np.array([10, 20, 30, 4096]),
                 np.array([1, 2, 3, 4]), **kw)


def test_fields_are_typed_and_read_only():
    t = Trace([0, 1.5], [3, 4], [5, 6])
    assert t.arrived_at.dtype == np.float64 and t.prompt_tokens.dtype == np.int64
    assert len(t) == 2 and not t.is_closed_loop
    with pytest.raises(ValueError):
        t.prompt_tokens[0] = 7
    with pytest.raises(AttributeError):
        t.think_time_s = 1.0


def test_input_arrays_are_copied():
    prompt = np.array([3, 4])
    t = Trace([0.0, 1.0], prompt, [5, 6])
    prompt[0] = 99
    assert t.prompt_tokens[0] == 3


@pytest.mark.parametrize("args, match", [
    (([0.0, 1.0], [1], [1, 1]), "equal lengths"),
    (([0.0, 1.0], [1, 0], [1, 1]), r"prompt_tokens must be >= 1; request 1 has 0"),
    (([0.0, 1.0], [1, 1], [1, -3]), "decode_tokens must be >= 1"),
    (([0.0, 1.0], [1.5, 1], [1, 1]), "whole numbers"),
    (([1.0, 0.5], [1, 1], [1, 1]), r"non-decreasing; request 1 arrives at 0.5"),
    (([0.0, np.nan], [1, 1], [1, 1]), "finite"),
    (([-1.0, 0.0], [1, 1], [1, 1]), ">= 0"),
])
def test_invalid_traces_raise_clear_errors(args, match):
    with pytest.raises(ValueError, match=match):
        Trace(*args)


def test_open_loop_arrivals_within_duration():
    with pytest.raises(ValueError, match="after duration_s"):
        Trace([0.0, 11.0], [1, 1], [1, 1], duration_s=10.0)


def test_closed_loop_layout():
    t = Trace.closed_loop([5, 6, 7, 8], [1, 2, 3, 4], users=2, think_time_s=0.5, duration_s=60)
    assert t.is_closed_loop and t.closed_loop_users == 2
    assert list(t.arrived_at[:2]) == [0.0, 0.0] and np.isnan(t.arrived_at[2:]).all()
    with pytest.raises(ValueError, match="must arrive at t=0"):
        Trace([0.0, 1.0, np.nan], [1, 1, 1], [1, 1, 1], closed_loop_users=2)
    with pytest.raises(ValueError, match="must be NaN"):
        Trace([0.0, 0.0, 3.0], [1, 1, 1], [1, 1, 1], closed_loop_users=2)
    with pytest.raises(ValueError, match="at least 3 requests"):
        Trace.closed_loop([1, 1], [1, 1], users=3)
    with pytest.raises(ValueError, match="closed_loop_users"):
        Trace([0.0], [1], [1], closed_loop_users=-1)


def test_equality_by_value():
    assert small_trace() == small_trace()
    assert small_trace() != small_trace(think_time_s=1.0)
    a = Trace.closed_loop([1, 2, 3], [1, 1, 1], users=1)
    assert a == Trace.closed_loop([1, 2, 3], [1, 1, 1], users=1)  # NaNs compare equal


def test_csv_round_trip(tmp_path):
    t = Trace(np.array([0.0, 0.1 + 0.2, 1 / 3, 1e3]), [1, 2, 3, 4], [9, 8, 7, 6])
    path = t.to_csv(tmp_path / "t.csv")
    assert path.read_text().splitlines()[0] == "arrived_at,num_prefill_tokens,num_decode_tokens"
    assert Trace.from_csv(path) == t  # floats survive exactly


def test_csv_round_trip_closed_loop(tmp_path):
    t = Trace.closed_loop([5, 6, 7], [1, 2, 3], users=2, think_time_s=0.25, duration_s=30.0)
    back = Trace.from_csv(t.to_csv(tmp_path / "c.csv"))
    assert back == t and back.closed_loop_users == 2 and back.duration_s == 30.0


def test_to_frame():
    df = small_trace().to_frame()
    assert list(df.columns) == ["arrived_at", "prompt_tokens", "decode_tokens"]
    assert df["prompt_tokens"].tolist() == [10, 20, 30, 4096]


def test_from_csv_ignores_extra_columns_and_reorders(tmp_path):
    p = tmp_path / "vidur.csv"
    p.write_text("num_decode_tokens,arrived_at,extra,num_prefill_tokens\n"
                 "5,0.0,x,100\n7,1.5,y,200.0\n")
    t = Trace.from_csv(p)
    assert list(t.prompt_tokens) == [100, 200] and list(t.decode_tokens) == [5, 7]
    assert list(t.arrived_at) == [0.0, 1.5]


HEADER = "arrived_at,num_prefill_tokens,num_decode_tokens\n"


@pytest.mark.parametrize("body, match", [
    ("", "empty trace file"),
    ("arrived_at,num_prefill_tokens\n0,1\n", r":1: missing column\(s\) num_decode_tokens"),
    (HEADER + "0,10,5\nsoon,10,5\n", r":3: arrived_at is not a number: 'soon'"),
    (HEADER + "0,ten,5\n", r":2: num_prefill_tokens is not a number: 'ten'"),
    (HEADER + "0,10,0\n", r":2: num_decode_tokens must be >= 1, got '0'"),
    (HEADER + "0,-4,5\n", r":2: num_prefill_tokens must be >= 1, got '-4'"),
    (HEADER + "0,10.5,5\n", r":2: num_prefill_tokens must be a whole number"),
    (HEADER + "1.0,10,5\n0.5,10,5\n", r":3: arrived_at 0.5 is earlier than the previous row's 1.0"),
    (HEADER + "0,10,5\n1,10\n", r":3: expected 3 fields, got 2"),
    (HEADER + "nan,10,5\n", r":2: arrived_at must be a finite number >= 0"),
    (HEADER + "-2,10,5\n", r":2: arrived_at must be a finite number >= 0"),
])
def test_malformed_csv_raises_trace_error(tmp_path, body, match):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(TraceError, match=match) as info:
        Trace.from_csv(p)
    msg = str(info.value)
    assert msg.startswith(str(p)) and "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_missing_file_raises_trace_error(tmp_path):
    with pytest.raises(TraceError, match="cannot open trace file"):
        Trace.from_csv(tmp_path / "nope.csv")
