import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, SimulationError
from amortflow.simulation import ContextGenerator


def test_empty_generator_gives_none():
    assert ContextGenerator()(4, rng=0) == {"batchable_context": None, "non_batchable_context": None}


def test_batchable_gives_one_value_per_simulation_as_array():
    gen = ContextGenerator(batchable_context_fun=lambda rng: rng.uniform(size=3))
    ctx = gen(5, rng=0)
    assert ctx["batchable_context"].shape == (5, 3)
    assert ctx["non_batchable_context"] is None
    assert len(np.unique(ctx["batchable_context"][:, 0])) == 5  # a fresh draw per simulation


def test_non_batchable_is_drawn_once_per_batch_and_fed_to_batchable():
    calls = []

    def n_obs(rng):
        calls.append(1)
        return int(rng.integers(10, 20))

    gen = ContextGenerator(
        batchable_context_fun=lambda n, rng: np.linspace(0, 1, n) * rng.uniform(),
        non_batchable_context_fun=n_obs,
        use_non_batchable_for_batchable=True,
    )
    ctx = gen(4, rng=1)
    assert len(calls) == 1
    assert ctx["batchable_context"].shape == (4, ctx["non_batchable_context"])


def test_non_numeric_batchable_context_stays_a_list():
    gen = ContextGenerator(batchable_context_fun=lambda: {"design": "a"})
    ctx = gen(3)
    assert isinstance(ctx["batchable_context"], list) and len(ctx["batchable_context"]) == 3


def test_functions_without_rng_use_numpy_global_state():
    gen = ContextGenerator(non_batchable_context_fun=lambda: np.random.randint(0, 10**9))
    assert gen.uses_global_rng
    np.random.seed(3)
    first = gen(2)["non_batchable_context"]
    np.random.seed(3)
    assert gen(2)["non_batchable_context"] == first


def test_seeded_rng_is_reproducible_and_fixed_context_is_reused():
    gen = ContextGenerator(non_batchable_context_fun=lambda rng: rng.integers(0, 10**9))
    assert gen(2, rng=7) == gen(2, rng=7)
    assert gen(2, rng=7, non_batchable_context=42)["non_batchable_context"] == 42


def test_raising_context_function_names_itself():
    def broken_design(rng):
        raise RuntimeError("no design")

    with pytest.raises(SimulationError, match=r"batchable_context_fun 'broken_design'.*RuntimeError.*no design"):
        ContextGenerator(batchable_context_fun=broken_design)(2, rng=0)


def test_feeding_non_batchable_needs_its_function():
    with pytest.raises(ArgumentError, match="use_non_batchable_for_batchable=True\\) needs a non_batchable_context_fun"):
        ContextGenerator(batchable_context_fun=lambda n: n, use_non_batchable_for_batchable=True)
