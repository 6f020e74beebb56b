import numpy as np
import pytest

from amortflow.exceptions import ArgumentError
from amortflow.simulation import GenerativeModel, MultiGenerativeModel, Prior, Simulator


def make_model(offset, dim=2):
    return GenerativeModel(
        Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, dim))),
        Simulator(batch_simulator_fun=lambda p, rng: offset + rng.normal(size=(len(p), 4, 1))),
        skip_test=True,
    )


def test_outputs_follow_model_indices():
    multi = MultiGenerativeModel([make_model(0.0), make_model(100.0, dim=3)])
    assert multi.num_models == 2
    out = multi(batch_size=40, rng=0)
    indices = out["model_indices"]
    assert indices.shape == (40,) and indices.dtype.kind == "i"
    counts = np.bincount(indices, minlength=2)
    for m, raw in enumerate(out["model_outputs"]):
        assert raw["sim_data"].shape == (counts[m], 4, 1)
    assert out["model_outputs"][1]["prior_draws"].shape[1] == 3
    assert (out["model_outputs"][1]["sim_data"] > 50).all()


def test_model_probs_and_unused_model():
    # p = (0.8, 0.2, 0): the count of model 0 in 2000 draws has sd sqrt(2000 * 0.8 * 0.2) = 17.9; 4 sd = 72.
    multi = MultiGenerativeModel([make_model(0.0), make_model(1.0), make_model(2.0)], model_probs=[0.8, 0.2, 0.0])
    out = multi(2000, rng=1)
    assert abs(np.sum(out["model_indices"] == 0) - 1600) < 72
    assert out["model_outputs"][2] is None


def test_reproducible():
    multi = MultiGenerativeModel([make_model(0.0), make_model(1.0)])
    a, b = multi(10, rng=4), multi(10, rng=4)
    np.testing.assert_array_equal(a["model_indices"], b["model_indices"])
    np.testing.assert_array_equal(a["model_outputs"][0]["sim_data"], b["model_outputs"][0]["sim_data"])


@pytest.mark.parametrize(
    "models, probs, match",
    [
        (1, "equal", "at least 2 generative models, received 1"),
        (2, [0.5, 0.6], r"2 non-negative probabilities summing to 1, received \[0.5, 0.6\]"),
        (2, [1.0], r"shape \(1,\)"),
        (2, "uniform", "'equal' or an array"),
    ],
)
def test_bad_arguments(models, probs, match):
    with pytest.raises(ArgumentError, match=match):
        MultiGenerativeModel([make_model(0.0) for _ in range(models)], model_probs=probs)


def test_models_must_be_generative_models():
    with pytest.raises(ArgumentError, match=r"generative_models\[1\] must be a GenerativeModel, received function"):
        MultiGenerativeModel([make_model(0.0), lambda b: None])
