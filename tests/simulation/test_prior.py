import numpy as np
import pytest
import scipy.stats
import tensorflow_probability as tfp

from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation import ContextGenerator, Prior

tfd = tfp.distributions


# --- sources and shapes --------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"prior_fun": lambda: 0.0, "batch_prior_fun": lambda b: np.zeros((b, 1)), }],
)
def test_exactly_one_source(kwargs):
    with pytest.raises(ArgumentError, match="exactly one of prior_fun, batch_prior_fun or distribution"):
        Prior(**kwargs)


def test_per_sample_and_batched_give_b_by_d():
    looped = Prior(prior_fun=lambda rng: rng.normal(size=3))
    batched = Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 3)))
    for prior in (looped, batched):
        out = prior(batch_size=4, rng=0)
        assert out["prior_draws"].shape == (4, 3)
        assert out["batchable_context"] is None and out["non_batchable_context"] is None
        assert prior.dim == 3 and prior.param_names == ["theta_1", "theta_2", "theta_3"]


def test_scalar_prior_gives_one_column():
    assert Prior(prior_fun=lambda rng: rng.normal())(5, rng=0)["prior_draws"].shape == (5, 1)
    assert Prior(batch_prior_fun=lambda b, rng: rng.normal(size=b))(5, rng=0)["prior_draws"].shape == (5, 1)


def test_integer_draws_become_float():
    draws = Prior(prior_fun=lambda rng: rng.integers(0, 3, size=2))(3, rng=0)["prior_draws"]
    assert draws.dtype == np.float64


def test_contexts_are_passed_only_when_present():
    seen = []

    def prior_fun(design, n, rng):
        seen.append((design, n))
        return rng.normal(size=2) * design

    context = ContextGenerator(batchable_context_fun=lambda rng: rng.uniform(), non_batchable_context_fun=lambda: 7)
    out = Prior(prior_fun=prior_fun, context_generator=context)(3, rng=0)
    assert [n for _, n in seen] == [7, 7, 7]
    np.testing.assert_array_equal([d for d, _ in seen], out["batchable_context"])
    assert out["non_batchable_context"] == 7

    def batch_prior(batch_size, n, rng):  # only the non-batchable context exists here
        return np.full((batch_size, 1), float(n))

    out = Prior(batch_prior_fun=batch_prior, context_generator=ContextGenerator(non_batchable_context_fun=lambda: 4))(2)
    np.testing.assert_array_equal(out["prior_draws"], [[4.0], [4.0]])


def test_seed_reproducibility_and_global_state():
    prior = Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2)))
    np.testing.assert_array_equal(prior(4, rng=5)["prior_draws"], prior(4, rng=5)["prior_draws"])
    assert not np.array_equal(prior(4, rng=5)["prior_draws"], prior(4, rng=6)["prior_draws"])
    # rng=None derives the generator from NumPy's global state, so np.random.seed makes it repeatable.
    np.random.seed(1)
    first = prior(4)["prior_draws"]
    np.random.seed(1)
    np.testing.assert_array_equal(prior(4)["prior_draws"], first)
    no_rng = Prior(prior_fun=lambda: np.random.normal(size=2))
    assert no_rng.uses_global_rng and not prior.uses_global_rng


def test_param_names_checked_against_dim():
    prior = Prior(batch_prior_fun=lambda b: np.zeros((b, 2)), param_names=["mu", "sigma"])
    assert prior.param_names == ["mu", "sigma"]
    with pytest.raises(ShapeError, match=r"3 names .* D=2"):
        Prior(batch_prior_fun=lambda b: np.zeros((b, 2)), param_names=["a", "b", "c"])(2)


# --- bad output ----------------------------------------------------------------------------
def wrong_rank(rng):
    return np.zeros((2, 2))


def test_wrong_rank_per_sample():
    with pytest.raises(ShapeError, match=r"prior_fun 'wrong_rank'.*'prior_draws'.*\(3, 2, 2\).*\(2, 2\).*scalar or a vector \(D,\)"):
        Prior(prior_fun=wrong_rank)(3, rng=0)


def test_wrong_batch_dim_batched():
    def short_batch(batch_size):
        return np.zeros((batch_size - 1, 2))

    with pytest.raises(ShapeError, match=r"batch_prior_fun 'short_batch'.*'prior_draws'.*shape \(3, 2\).*batch_size=4.*expected shape \(4, D\)"):
        Prior(batch_prior_fun=short_batch)(4)


def test_inconsistent_shapes_within_batch():
    counter = iter(range(100))

    def ragged():
        return np.zeros(2 + (next(counter) == 2))

    with pytest.raises(ShapeError, match=r"prior_fun 'ragged'.*inconsistent.*\(3,\) for simulation 2.*\(2,\) for simulation 0"):
        Prior(prior_fun=ragged)(4)


def test_dim_change_between_batches():
    sizes = iter([2, 3])
    prior = Prior(batch_prior_fun=lambda b: np.zeros((b, next(sizes))))
    prior(2)
    with pytest.raises(ShapeError, match=r"shape \(2, 3\); expected \(B, 2\)"):
        prior(2)


def test_nan_draws_name_count_and_example():
    def nan_prior(batch_size):
        draws = np.ones((batch_size, 2))
        draws[[1, 3], 0] = np.nan
        return draws

    with pytest.raises(SimulationError, match=r"batch_prior_fun 'nan_prior'.*NaN or inf.*'prior_draws' for 2 of 5 draws.*draw 1: \[nan, 1\]"):
        Prior(batch_prior_fun=nan_prior)(5)


def test_non_numeric_draw():
    with pytest.raises(SimulationError, match=r"prior_fun 'named'.*'prior_draws'.*must be numeric.*dict"):
        def named():
            return {"a": 1.0}

        Prior(prior_fun=named)(2)


def test_raising_function_is_wrapped():
    def explode(batch_size):
        raise ZeroDivisionError("bad")

    with pytest.raises(SimulationError, match=r"batch_prior_fun 'explode' raised ZeroDivisionError.*bad"):
        Prior(batch_prior_fun=explode)(2)


def test_bad_batch_size():
    with pytest.raises(ArgumentError, match="batch_size must be a positive integer, received 0"):
        Prior(batch_prior_fun=lambda b: np.zeros((b, 1)))(0)


# --- distributions ---------------------------------------------------------------------------
def test_distribution_prior_log_prob_matches_scipy():
    prior = Prior(distribution=tfd.Independent(tfd.Uniform(low=[0.0, -1.0], high=[1.0, 3.0]), 1))
    draws = prior(1000, rng=0)["prior_draws"]
    assert draws.shape == (1000, 2) and prior.dim == 2
    assert (draws[:, 0] >= 0).all() and (draws[:, 1] <= 3).all()
    np.testing.assert_allclose(prior.log_prob(draws[:3]), np.full(3, -np.log(4.0)), rtol=1e-6)
    mvn = Prior(distribution=tfd.MultivariateNormalDiag(loc=[0.0, 1.0], scale_diag=[1.0, 2.0]))
    theta = np.array([[0.3, -0.5], [1.0, 2.0]])
    expected = scipy.stats.norm(0, 1).logpdf(theta[:, 0]) + scipy.stats.norm(1, 2).logpdf(theta[:, 1])
    np.testing.assert_allclose(mvn.log_prob(theta), expected, rtol=1e-5)
    assert mvn.log_prob(theta[0]).shape == ()
    with pytest.raises(ShapeError, match=r"D=2.*received \(2, 3\)"):
        mvn.log_prob(np.zeros((2, 3)))


def test_distribution_draws_are_seeded():
    prior = Prior(distribution=tfd.Normal(loc=[0.0, 0.0, 0.0], scale=1.0))  # batch-shaped univariate
    assert prior.dim == 3
    np.testing.assert_array_equal(prior(4, rng=3)["prior_draws"], prior(4, rng=3)["prior_draws"])
    assert not np.array_equal(prior(4, rng=3)["prior_draws"], prior(4, rng=4)["prior_draws"])
    assert Prior(distribution=tfd.Normal(0.0, 1.0))(3, rng=0)["prior_draws"].shape == (3, 1)


@pytest.mark.parametrize(
    "dist, lower, upper",
    [
        (tfd.Independent(tfd.Uniform([0.0, -1.0], [1.0, 2.0]), 1), [0, -1], [1, 2]),
        (tfd.MultivariateNormalDiag([0.0, 0.0]), [-np.inf, -np.inf], [np.inf, np.inf]),
        (tfd.HalfNormal([1.0, 2.0]), [0, 0], [np.inf, np.inf]),
        (tfd.Gamma([2.0], [1.0]), [0], [np.inf]),
        (tfd.Beta([2.0], [3.0]), [0], [1]),
        (tfd.TruncatedNormal([0.0], 1.0, -1.0, 3.0), [-1], [3]),
    ],
)
def test_support_bounds(dist, lower, upper):
    bounds = Prior(distribution=dist).support_bounds()
    np.testing.assert_array_equal(bounds[0], lower)
    np.testing.assert_array_equal(bounds[1], upper)
    assert bounds[0].shape == (len(lower),)


def test_support_unknown_gives_none():
    assert Prior(distribution=tfd.Dirichlet([1.0, 1.0, 1.0])).support_bounds() is None  # simplex, not a box
    assert Prior(distribution=tfd.Poisson([1.0, 2.0])).support_bounds() is None  # discrete
    assert Prior(prior_fun=lambda: 0.0).support_bounds() is None


def test_function_prior_has_no_log_prob():
    def my_prior():
        return 0.0

    with pytest.raises(NotImplementedError, match="prior_fun 'my_prior'.*TFP distribution"):
        Prior(prior_fun=my_prior).log_prob(np.zeros((2, 1)))


def test_bad_distributions():
    with pytest.raises(ArgumentError, match="TensorFlow Probability distribution"):
        Prior(distribution="normal")
    with pytest.raises(ArgumentError, match=r"event_shape \(2,\) and batch_shape \(3,\)"):
        Prior(distribution=tfd.MultivariateNormalDiag(np.zeros((3, 2), np.float32)))
    with pytest.raises(ArgumentError, match="cannot use a context_generator"):
        Prior(distribution=tfd.Normal(0.0, 1.0), context_generator=ContextGenerator())


def test_estimate_means_and_stds():
    # N(mu, sigma^2) with sigma = (1, 3): the mean estimate has standard error sigma / sqrt(4000),
    # the std estimate about sigma / sqrt(2 * 4000); 4 standard errors is the tolerance.
    prior = Prior(distribution=tfd.MultivariateNormalDiag([1.0, -2.0], [1.0, 3.0]))
    means, stds = prior.estimate_means_and_stds(n_draws=4000, rng=0)
    sigma = np.array([1.0, 3.0])
    np.testing.assert_array_less(np.abs(means - [1.0, -2.0]), 4 * sigma / np.sqrt(4000))
    np.testing.assert_array_less(np.abs(stds - sigma), 4 * sigma / np.sqrt(8000))
