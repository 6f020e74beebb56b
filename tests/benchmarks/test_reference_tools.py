"""The shared reference-sampling tools: R-hat, truncated normals, rejection, SMC + MCMC, the cache."""

import numpy as np
import pytest
from scipy import stats

from amortflow.benchmarks import PosteriorModel, ReferenceSamplingError, get_task, rejection_sample, sample_posterior, split_rhat
from amortflow.benchmarks.reference import truncated_standard_normal
from amortflow.exceptions import ShapeError


def test_split_rhat_is_one_for_agreeing_chains_and_large_for_disagreeing_ones():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal((200, 8, 3))
    # for independent draws R-hat = sqrt(1 + O(1/n)); n = 100 per split half
    assert np.all(split_rhat(iid) < 1.02)
    shifted = iid + np.arange(8)[None, :, None] * 0.5  # chains centred at different values
    assert np.all(split_rhat(shifted) > 1.1)
    drifting = iid + np.linspace(0, 3, 200)[:, None, None]  # every chain drifts: caught by splitting
    assert np.all(split_rhat(drifting) > 1.1)
    wide = iid * np.where(np.arange(8) < 4, 1.0, 4.0)[None, :, None]  # same centre, different spread
    assert np.all(split_rhat(wide) > 1.05)  # the folded (tail) R-hat sees it
    with pytest.raises(ShapeError, match="n_iterations >= 4"):
        split_rhat(np.zeros((3, 2, 1)))


@pytest.mark.parametrize(("lower", "upper"), [(-1.0, 2.0), (8.0, 9.0), (-40.0, -39.0), (-np.inf, -3.0), (0.5, np.inf)])
def test_truncated_standard_normal_matches_scipy(lower, upper):
    draws = truncated_standard_normal(np.full(20_000, lower), np.full(20_000, upper), np.random.default_rng(1))
    assert np.all((draws >= lower) & (draws <= upper))
    # KS test at level 1e-4: the exact sampler passes, a sampler off by a visible amount does not
    assert stats.kstest(draws, stats.truncnorm(lower, upper).cdf).pvalue > 1e-4


def test_rejection_sampling_is_exact_and_gives_up_clearly():
    # proposals U(0, 1) kept with probability u: the kept draws follow Beta(2, 1)
    def propose(n, rng):
        u = rng.uniform(size=(n, 1))
        return u, np.log(u[:, 0])

    result = rejection_sample(propose, 20_000, np.random.default_rng(2))
    assert result.samples.shape == (20_000, 1)
    assert stats.kstest(result.samples[:, 0], stats.beta(2, 1).cdf).pvalue > 1e-4
    # acceptance 1/2: its binomial standard error with >= 40,000 proposals is < 0.0025
    assert result.diagnostics["acceptance_rate"] == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ReferenceSamplingError, match="max_proposals"):
        rejection_sample(lambda n, rng: (np.zeros((n, 1)), np.full(n, -np.inf)), 5, np.random.default_rng(3), max_proposals=5000)


def _gaussian_model(observation: float) -> PosteriorModel:
    """N(0, 1) prior, one N(theta, 0.5^2) observation: posterior N(0.8 x, 0.2)."""
    return PosteriorModel(
        sample_prior=lambda n, rng: rng.standard_normal((n, 1)),
        log_prior=lambda u: -0.5 * u[:, 0] ** 2,
        log_likelihood=lambda u: -0.5 * ((observation - u[:, 0]) / 0.5) ** 2,
    )


def test_sample_posterior_recovers_a_conjugate_posterior():
    result = sample_posterior(_gaussian_model(1.5), 4000, np.random.default_rng(4))
    draws = result.samples[:, 0]
    assert result.diagnostics["max_rhat"] <= 1.05
    # mean 1.2, variance 0.2; the draws are thinned MCMC output, so allow 3x the i.i.d. standard
    # errors (sd/sqrt(n) = 0.007; variance 0.2 sqrt(2/n) = 0.0045), times 5
    assert draws.mean() == pytest.approx(1.2, abs=5 * 3 * 0.007)
    assert draws.var() == pytest.approx(0.2, abs=5 * 3 * 0.0045)


def test_sample_posterior_refuses_unconverged_chains():
    # R-hat cannot fall below an impossible threshold: the sampler must raise, not return
    with pytest.raises(ReferenceSamplingError, match="did not converge"):
        sample_posterior(_gaussian_model(0.0), 100, np.random.default_rng(5), rhat_threshold=0.99, max_extensions=1)


def test_impossible_observation_raises():
    model = PosteriorModel(lambda n, rng: rng.standard_normal((n, 1)), lambda u: np.zeros(len(u)), lambda u: np.full(len(u), -np.inf))
    with pytest.raises(ReferenceSamplingError, match="impossible"):
        sample_posterior(model, 10, np.random.default_rng(6))


def test_reference_samples_are_cached_per_task_observation_size_and_seed(isolated_reference_cache):
    task = get_task("inverse_kinematics")  # a task with cache_reference = True and a fast sampler
    first = task.reference_posterior_samples(1, 50, rng=0)
    assert "cached" not in task.last_reference_diagnostics
    files = sorted(p.name for p in isolated_reference_cache.iterdir())
    assert files == ["inverse_kinematics_obs1_50_seed0_v1.npz"]
    again = task.reference_posterior_samples(1, 50, rng=0)
    np.testing.assert_array_equal(again, first)
    assert task.last_reference_diagnostics["cached"].endswith(files[0])
    other_seed = task.reference_posterior_samples(1, 50, rng=1)
    assert not np.array_equal(other_seed, first)
    task.reference_posterior_samples(task.observation(1), 50, rng=0, sampler_options={"tolerance": 0.01})
    task.reference_posterior_samples(1, 50, rng=None)  # fresh randomness: never cached
    assert len(list(isolated_reference_cache.iterdir())) == 3


def test_reference_rejects_bad_arguments():
    task = get_task("two_moons")
    with pytest.raises(ShapeError, match=r"\(2,\) or \(1, 2\)"):
        task.reference_posterior_samples(np.zeros(3), 10)
    with pytest.raises(ValueError, match="n_samples"):
        task.reference_posterior_samples(1, 0)
    assert task.reference_posterior_samples(task.observation(2)[None], 5).shape == (5, 2)
