"""TwoLevelPrior and TwoLevelGenerativeModel: shapes, varying group counts and sizes, errors."""

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from tests import hierarchical_gaussian as hg


def test_shapes_and_keys():
    out = hg.model(num_groups=5, group_size=7)(3, rng=0)
    assert set(out) == set(af.simulation.TWO_LEVEL_RAW_KEYS)
    assert out["hyper_prior_draws"].shape == (3, 1)
    assert out["local_prior_draws"].shape == (3, 5, 1)
    assert out["sim_data"].shape == (3, 5, 7, 1)
    assert out["prior_non_batchable_context"] == 5 and out["sim_non_batchable_context"] == 7
    assert out["shared_prior_draws"] is None


def test_groups_and_sizes_vary_between_batches_and_repeat_with_seed():
    model = hg.model(num_groups=lambda rng: int(rng.integers(2, 20)), group_size=lambda rng: int(rng.integers(2, 20)))
    shapes = {model(2, rng=seed)["sim_data"].shape[1:3] for seed in range(10)}
    assert len(shapes) > 1
    np.testing.assert_array_equal(model(2, rng=3)["sim_data"], model(2, rng=3)["sim_data"])
    assert model(2, rng=0, num_groups=4)["local_prior_draws"].shape == (2, 4, 1)


def test_local_parameters_follow_hyperparameters():
    # theta_g - mu ~ N(0, tau^2): the sd of 20,000 differences is within 4 standard errors
    # (tau / sqrt(2 * 20,000) = 0.0018) of tau.
    out = hg.model(num_groups=10)(2000, rng=1)
    diff = out["local_prior_draws"][..., 0] - out["hyper_prior_draws"]
    assert abs(diff.std() - hg.TAU) < 4 * hg.TAU / np.sqrt(2 * diff.size)


def test_shared_parameters_are_passed_to_the_simulator():
    prior = af.simulation.TwoLevelPrior(lambda b, rng: rng.normal(size=(b, 1)), hg.local_prior,
                                        shared_prior=lambda b, rng: np.full((b, 2), 5.0), num_groups=3)  # fmt: skip
    model = af.simulation.TwoLevelGenerativeModel(
        prior, lambda theta, shared, rng: np.broadcast_to(shared[:, None, None, :1], (len(theta), 3, 4, 1)))
    out = model(2, rng=0)
    assert out["shared_prior_draws"].shape == (2, 2)
    np.testing.assert_array_equal(out["sim_data"], 5.0)
    conf = af.amortizers.DefaultTwoLevelConfigurator()(out)
    assert conf["global_parameters"].shape == (2, 3) and conf["direct_conditions"].shape == (2, 2)


def test_errors_name_the_shapes():
    hyper = lambda b, rng: rng.normal(size=(b, 1))  # noqa: E731
    bad_local = af.simulation.TwoLevelPrior(hyper, lambda mu, g, rng: np.zeros((len(mu), g + 1, 1)), num_groups=3)
    with pytest.raises(ShapeError, match=r"\(2, 3, L\).*\(2, 4, 1\)"):
        bad_local(2, rng=0)
    with pytest.raises(ArgumentError, match="num_groups"):
        af.simulation.TwoLevelPrior(hyper, hg.local_prior, num_groups=0)
    with pytest.raises(ArgumentError, match="local_prior"):
        af.simulation.TwoLevelPrior(hyper, "not callable")
    prior = af.simulation.TwoLevelPrior(hyper, hg.local_prior, num_groups=3)
    with pytest.raises(ShapeError, match=r"\(2, 3, N, d\).*\(2, 5\)"):
        af.simulation.TwoLevelGenerativeModel(prior, lambda theta, rng: np.zeros((2, 5)))
    with pytest.raises(SimulationError, match="NaN"):
        af.simulation.TwoLevelGenerativeModel(prior, lambda theta, rng: np.full((2, 3, 4, 1), np.nan))
    with pytest.raises(ArgumentError, match="TwoLevelPrior"):
        af.simulation.TwoLevelGenerativeModel(af.simulation.Prior(batch_prior_fun=hyper), hg.simulator)
