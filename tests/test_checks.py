"""The shared argument checks and conversions of amortflow._checks."""

import json

import numpy as np
import pytest

from amortflow import _checks
from amortflow._checks import check_choice, numeric_array, positive_int, resolve_rng, take_raw_rows, take_rows
from amortflow.exceptions import ArgumentError, DataError
from amortflow.simulation import validation
from amortflow.utils import as_generator


def test_positive_int_returns_plain_ints_for_numpy_integers():
    value = positive_int("n", np.int64(3))
    assert type(value) is int and json.dumps({"n": value}) == '{"n": 3}'
    assert positive_int("n", 0, minimum=0) == 0


@pytest.mark.parametrize("value", [0, -1, True, 2.0, "3", None])
def test_positive_int_refuses_non_counts_naming_them(value):
    with pytest.raises(ArgumentError, match=f"n must be a positive integer, received {value!r}"):
        positive_int("n", value)


def test_positive_int_names_its_minimum():
    with pytest.raises(ArgumentError, match="k must be an int >= 2, received 1"):
        positive_int("k", 1, minimum=2)


def test_check_choice():
    assert check_choice("kind", "a", ("a", "b")) == "a"
    with pytest.raises(ArgumentError, match=r"kind must be one of \('a', 'b'\), received 'c'"):
        check_choice("kind", "c", ("a", "b"))
    with pytest.raises(ArgumentError, match="received"):
        check_choice("kind", ["a"], ("a", "b"))  # unhashable: a clear error, not a TypeError


def test_numeric_array_converts_and_refuses_with_the_callers_error():
    array = numeric_array([[1, 2], [3, 4]], "x", dtype=np.float32)
    assert array.dtype == np.float32 and array.flags.c_contiguous
    assert numeric_array(np.arange(3), "x").dtype.kind == "i"  # dtype kept without dtype=
    with pytest.raises(DataError, match=r"^x must be numeric: received an array of dtype <U1 with shape \(2,\); expected numbers"):
        numeric_array(["a", "b"], "x", error=DataError)
    with pytest.raises(ArgumentError, match="x must be numeric: received a dict"):
        numeric_array({"a": 1}, "x")
    with pytest.raises(ArgumentError, match="x is not a rectangular array"):
        numeric_array([[1, 2], [3]], "x")
    with pytest.raises(ArgumentError, match=r"x must be finite: received 1 NaN or inf value\(s\) in shape \(3,\)"):
        numeric_array([1.0, np.nan, 2.0], "x", finite=True)


def test_take_rows_one_rule_for_none_arrays_and_lists():
    assert take_rows(None, [0]) is None
    np.testing.assert_array_equal(take_rows(np.arange(5), np.array([3, 1])), [3, 1])
    assert take_rows(["a", "b", "c"], np.array([2, 0])) == ["c", "a"]
    assert take_rows(("a", "b", "c"), slice(1, 3)) == ["b", "c"]
    assert take_rows(["a", "b"], 1) == ["b"]  # an int keeps the row axis for lists


def test_take_raw_rows_keeps_non_batchable_context():
    raw = {"prior_draws": np.arange(6).reshape(3, 2), "sim_data": np.arange(3), "sim_batchable_context": ["x", "y", "z"],
           "sim_non_batchable_context": 7, "prior_batchable_context": None}
    out = take_raw_rows(raw, np.array([2, 0]))
    np.testing.assert_array_equal(out["prior_draws"], [[4, 5], [0, 1]])
    assert out["sim_batchable_context"] == ["z", "x"]
    assert out["sim_non_batchable_context"] == 7 and out["prior_batchable_context"] is None
    assert raw["sim_data"].shape == (3,)  # the input dict is not changed


def test_resolve_rng_none_follows_numpys_global_state():
    np.random.seed(5)
    first = resolve_rng(None).normal(size=3)
    np.random.seed(5)
    np.testing.assert_array_equal(resolve_rng(None).normal(size=3), first)
    gen = np.random.default_rng(1)
    assert resolve_rng(gen) is gen
    np.testing.assert_array_equal(resolve_rng(3).normal(size=2), np.random.default_rng(3).normal(size=2))


def test_one_rng_resolver_for_the_whole_library():
    assert as_generator is _checks.resolve_rng and validation.resolve_rng is _checks.resolve_rng
