"""Fuzz test of every public inference entry point (issue 22).

Hypothesis feeds random shapes, dtypes and NaN/inf placements to every amortizer type; each call
must either return finite output of the documented shape or raise an
:class:`~amortflow.exceptions.AmortflowError` - never a TensorFlow, Keras or Python error, never
NaN. Inputs that are valid (right shapes, finite, moderate values) must be answered; inputs
that are invalid must be refused.

Each input starts from a valid one and gets at most one mutation: another number of data sets,
another set size, another feature count, no batch axis, an extra axis, a scalar; then a dtype
(float32/64, int, bool, list, tuple, tensor, complex, str), a scale (up to beyond float32's
range) and maybe one NaN or inf. Few examples with tiny networks keep it to seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amortflow as af
from amortflow.amortizers import (
    AmortizedLikelihood,
    AmortizedModelComparison,
    AmortizedPosterior,
    AmortizedPosteriorLikelihood,
    AmortizedRatio,
)
from amortflow.exceptions import AmortflowError
from amortflow.inference import importance_sample
from amortflow.inference.targets import make_log_likelihood_fn
from amortflow.networks.classifiers import ModelClassifier, RatioClassifier
from tests.amortizers.helpers import simulate_gaussian, tiny_deep_set, tiny_flow

N_OBS, D = 6, 2  # data sets (B, 6, 2), 2 parameters
DRAWS = 3
PRIOR = tfp.distributions.Independent(tfp.distributions.Normal(np.zeros(D, "float32"), 1.0), 1)
FUZZ = settings(
    max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy casts of huge values

MUTATIONS = ["none"] * 5 + ["n", "set", "features", "drop_batch", "add_axis", "scalar"]
DTYPES = ["float32"] * 3 + ["float64", "int32", "bool", "list", "tuple", "tensor", "complex64", "str"]
FLOAT_KINDS = ("float32", "float64", "list", "tuple", "tensor")


@dataclass
class Fuzzed:
    value: object
    valid: bool
    n: int | None  # data sets it stands for
    moderate: bool  # values small enough that any network must answer
    mutation: str


@st.composite
def fuzzed(draw, shape: tuple, may_drop_batch: bool = True) -> Fuzzed:
    """A mutated version of a valid input of ``shape`` (see the module docstring)."""
    shape, valid, n = list(shape), True, shape[0]
    mutation = draw(st.sampled_from(MUTATIONS))
    if mutation == "n":
        shape[0] = n = draw(st.integers(0, 4))
        valid = n > 0
    elif mutation == "set" and len(shape) == 3:
        shape[1] = draw(st.integers(0, 9))
        valid = shape[1] > 0
    elif mutation == "features":
        shape[-1] = draw(st.sampled_from([1, 3]))
        valid = False
    elif mutation == "drop_batch" and may_drop_batch:
        shape, n = shape[1:], 1
        valid = len(shape) > 0
    elif mutation == "add_axis":
        shape, valid = [*shape, 1], False
    elif mutation == "scalar":
        shape, valid = [], False
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = draw(st.sampled_from([1.0, 1.0, 10.0, 1e30, 1e40])) if dtype in FLOAT_KINDS else 3.0
    values = rng.normal(size=shape) * scale
    valid &= scale < 1e38  # beyond float32's range: inf once cast
    poison = draw(st.sampled_from([None, None, np.nan, np.inf, -np.inf])) if dtype in FLOAT_KINDS else None
    if poison is not None and values.size:
        values.flat[int(rng.integers(values.size))] = poison
        valid = False
    return Fuzzed(_as_dtype(values, dtype), valid and dtype not in ("complex64", "str"), n, scale <= 10.0, mutation)


def _as_dtype(values: np.ndarray, dtype: str):
    if dtype in ("list", "tuple"):
        return (list if dtype == "list" else tuple)(values) if values.ndim else values.item()
    if dtype == "tensor":
        return tf.constant(values.astype("float32"))
    if dtype == "int32":
        return np.round(values).astype("int32")
    if dtype == "bool":
        return values > 0
    return values.astype(dtype)


@pytest.fixture(scope="module")
def amortizers() -> dict:
    """One amortizer of each type, built (and its shapes recorded) by one loss evaluation."""
    af.set_seed(0)
    mu, x = simulate_gaussian(8, N_OBS, dim=D, seed=0)
    post = {"parameters": mu, "summary_conditions": x}
    lik = {"observables": x, "conditions": mu}
    built = {
        "posterior": (AmortizedPosterior(tiny_flow(D), tiny_deep_set()), post),
        "likelihood": (AmortizedLikelihood(tiny_flow(D)), lik),
        "joint": (
            AmortizedPosteriorLikelihood(
                AmortizedPosterior(tiny_flow(D), tiny_deep_set()), AmortizedLikelihood(tiny_flow(D))
            ),
            {"posterior_inputs": post, "likelihood_inputs": lik},
        ),
        "ratio": (AmortizedRatio(RatioClassifier(hidden_units=(8,)), tiny_deep_set()), post),
        "model_comparison": (
            AmortizedModelComparison(ModelClassifier(3, hidden_units=(8,)), tiny_deep_set()),
            {"model_indices": np.arange(8) % 3, "summary_conditions": x},
        ),
    }
    for amortizer, inputs in built.values():
        amortizer.compute_loss(inputs)
    return {name: amortizer for name, (amortizer, _) in built.items()}


def check_call(call, inputs: list[Fuzzed], expected_shapes) -> None:
    """Run ``call``: an AmortflowError, or finite outputs of ``expected_shapes(n)`` (a list of shapes)."""
    ns = {item.n for item in inputs}
    valid = all(item.valid for item in inputs) and len(ns) == 1
    try:
        outputs = call()
    except AmortflowError:
        assert not (valid and all(item.moderate for item in inputs)), "a valid, moderate input was refused"
        return
    assert valid, f"an invalid input was answered: {[(i.mutation, np.shape(i.value)) for i in inputs]}"
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    moderate = all(item.moderate for item in inputs)
    for output, shape in zip(outputs, expected_shapes(ns.pop())):
        output = np.asarray(output)
        assert not np.any(np.isnan(output) | (output == np.inf)), "NaN or inf output for finite input"
        # -inf is a log density's "zero density" (parameters 1e30 away); moderate inputs get finite answers
        assert np.all(np.isfinite(output)) or not moderate, "non-finite output for moderate input"
        assert shape is None or output.shape == shape


# --- the amortizer methods --------------------------------------------------------------------
def _posterior(amortizer, data, params):
    return {"parameters": params.value, "summary_conditions": data.value}


ENTRY_POINTS = {
    # name: (amortizer, which inputs are fuzzed, call, expected shapes for n data sets)
    "posterior.sample": ("posterior", ("data",), lambda a, d: a.sample({"summary_conditions": d.value}, DRAWS, seed=0),
                         lambda n: [(n, DRAWS, D)]),
    "posterior.log_posterior": ("posterior", ("data", "params"), lambda a, d, p: a.log_posterior(_posterior(a, d, p)),
                                lambda n: [(n,)]),
    "posterior.__call__": ("posterior", ("data", "params"), lambda a, d, p: a(_posterior(a, d, p)),
                           lambda n: [(n, D), (n,)]),
    "likelihood.log_likelihood": ("likelihood", ("observables", "params"),
                                  lambda a, d, p: a.log_likelihood({"observables": d.value, "conditions": p.value}),
                                  lambda n: [(n,)]),
    "likelihood.sample": ("likelihood", ("params",), lambda a, p: a.sample(p.value, DRAWS, seed=0),
                          lambda n: [(n, DRAWS, D)]),
    "likelihood.__call__": ("likelihood", ("observables", "params"),
                            lambda a, d, p: a({"observables": d.value, "conditions": p.value}), lambda n: [None, None]),
    "joint.sample_parameters": ("joint", ("data",),
                                lambda a, d: a.sample_parameters({"summary_conditions": d.value}, DRAWS, seed=0),
                                lambda n: [(n, DRAWS, D)]),
    "joint.sample_data": ("joint", ("params",), lambda a, p: a.sample_data({"conditions": p.value}, DRAWS, seed=0),
                          lambda n: [(n, DRAWS, D)]),
    "joint.log_posterior": ("joint", ("data", "params"), lambda a, d, p: a.log_posterior(_posterior(a, d, p)),
                            lambda n: [(n,)]),
    "ratio.log_ratio": ("ratio", ("data", "params"), lambda a, d, p: a.log_ratio(_posterior(a, d, p)),
                        lambda n: [(n,)]),
    "ratio.__call__": ("ratio", ("data", "params"), lambda a, d, p: a(_posterior(a, d, p)), lambda n: [(n,)]),
    "model_comparison.posterior_probs": ("model_comparison", ("data",),
                                         lambda a, d: a.posterior_probs({"summary_conditions": d.value}),
                                         lambda n: [(n, 3)]),
}  # fmt: skip

INPUTS = {
    "data": fuzzed((3, N_OBS, D)),
    "observables": fuzzed((3, N_OBS, D), may_drop_batch=False),  # (N, d) means N fixed-size data sets
    "params": fuzzed((3, D)),
}


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_every_entry_point_answers_finitely_or_raises_an_amortflow_error(amortizers, entry_point):
    name, keys, call, shapes = ENTRY_POINTS[entry_point]

    @FUZZ
    @given(st.tuples(*(INPUTS[key] for key in keys)))
    def run(inputs):
        check_call(lambda: call(amortizers[name], *inputs), list(inputs), shapes)

    run()


# --- MCMC and importance sampling on one observed data set -------------------------------------
@pytest.mark.parametrize("name", ["likelihood", "ratio"])
def test_x_obs_of_mcmc_and_importance_sampling(amortizers, name):
    theta = np.zeros((4, D), "float32")

    @FUZZ
    @given(fuzzed((N_OBS, D)), st.booleans())
    def run(x_obs, importance):
        # x_obs has no batch axis: axis 0 is the set; one observation (d,) is a likelihood's data too
        x_obs.valid &= x_obs.mutation != "drop_batch" or name == "likelihood"
        x_obs.n = 1
        if importance:
            call = lambda: (importance_sample(amortizers[name], x_obs.value, PRIOR, num_proposals=20,  # noqa: E731
                                              num_samples=5, seed=0).draws,)  # fmt: skip
            check_call(call, [x_obs], lambda n: [(5, D)])
        else:
            check_call(lambda: make_log_likelihood_fn(amortizers[name], x_obs.value)[0](theta), [x_obs],
                       lambda n: [(4,)])  # fmt: skip

    run()
