"""Reference posteriors are right: analytic moments, SBC ranks, the truth in the bulk, C2ST against itself."""

import numpy as np
import pytest
from scipy import stats

from amortflow.benchmarks import get_task

# Every uniformity check below uses a family-wise level ALPHA over the D parameters of a task
# (Bonferroni: each KS p-value must exceed ALPHA / D). Seeds are fixed, so a test either always
# passes or always fails; ALPHA only fixes how surprising a passing configuration could be.
ALPHA = 1e-3


def simulated_ranks(task, n_datasets: int, n_samples: int, seed: int, **sampler_options) -> np.ndarray:
    """SBC (Talts et al., 2018): ranks of the true theta among reference draws, ``(n_datasets, D)``.

    For an exact posterior the rank of each parameter is uniform on ``{0, ..., n_samples}``.
    """
    rng = np.random.default_rng(seed)
    theta = task.sample_prior(n_datasets, rng)
    data = task.simulate(theta, rng)
    ranks = []
    for j, (truth, x) in enumerate(zip(theta, data)):
        draws = task.reference_posterior_samples(x, n_samples, rng=seed * 1000 + j, sampler_options=sampler_options)
        assert draws.shape == (n_samples, task.dim_parameters)
        ranks.append(np.sum(draws < truth, axis=0))
    return np.array(ranks)


def rank_uniformity_pvalues(ranks: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
    """KS p-value per parameter of ranks jittered to continuous uniforms ``(r + V) / (L + 1)``, V ~ U(0, 1)."""
    jitter = np.random.default_rng(seed).uniform(size=ranks.shape)
    u = (ranks + jitter) / (n_samples + 1)
    return np.array([stats.kstest(u[:, d], "uniform").pvalue for d in range(u.shape[1])])


def test_gaussian_linear_reference_matches_the_analytic_posterior():
    task = get_task("gaussian_linear")
    x = task.observation(3)
    mean, cov = task.posterior_mean_and_covariance(x)
    # conjugacy by hand: precision 1/0.1 + 1/0.1 = 20, mean = x / 0.1 / 20 = x / 2
    np.testing.assert_allclose(mean, x / 2, atol=1e-12)
    np.testing.assert_allclose(cov, 0.05 * np.eye(10), atol=1e-12)
    n = 20_000
    draws = task.reference_posterior_samples(3, n, rng=1)
    # standard errors: mean sqrt(0.05 / n) = 1.6e-3; variance 0.05 sqrt(2 / n) = 5e-4;
    # covariance 0.05 / sqrt(n) = 3.5e-4. Bounds are 5 standard errors.
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=5 * np.sqrt(0.05 / n))
    sample_cov = np.cov(draws, rowvar=False)
    np.testing.assert_allclose(np.diag(sample_cov), 0.05, atol=5 * 0.05 * np.sqrt(2 / n))
    off_diagonal = sample_cov[~np.eye(10, dtype=bool)]
    assert np.max(np.abs(off_diagonal)) < 5 * 0.05 / np.sqrt(n)


@pytest.mark.parametrize(
    ("name", "n_datasets", "n_samples", "options"),
    [
        ("gaussian_linear", 100, 100, {}),
        ("gaussian_linear_uniform", 200, 100, {}),
        ("two_moons", 200, 100, {}),
        ("gaussian_mixture", 200, 100, {}),
        # a wider reach tolerance than the default 1e-3 keeps this test fast; same algorithm
        ("inverse_kinematics", 40, 50, {"tolerance": 1e-2}),
        ("slcp", 16, 40, {"n_chains": 8, "n_particles": 300}),
    ],
)
def test_reference_posteriors_pass_simulation_based_calibration(name, n_datasets, n_samples, options):
    task = get_task(name)
    ranks = simulated_ranks(task, n_datasets, n_samples, seed=7, **options)
    pvalues = rank_uniformity_pvalues(ranks, n_samples)
    assert pvalues.min() > ALPHA / task.dim_parameters, f"KS p-values of the SBC ranks: {np.round(pvalues, 5)}"


def test_rank_check_rejects_an_overconfident_posterior():
    """The SBC check has power: reference draws shrunk towards their mean (too narrow) fail it."""
    task = get_task("gaussian_linear_uniform")
    rng = np.random.default_rng(8)
    theta = task.sample_prior(100, rng)
    data = task.simulate(theta, rng)
    ranks = []
    for j, (truth, x) in enumerate(zip(theta, data)):
        draws = task.reference_posterior_samples(x, 100, rng=j)
        draws = draws.mean(axis=0) + 0.5 * (draws - draws.mean(axis=0))
        ranks.append(np.sum(draws < truth, axis=0))
    # the same decision rule as above: the check fails when any p-value is below ALPHA / D
    assert rank_uniformity_pvalues(np.array(ranks), 100).min() < ALPHA / task.dim_parameters


@pytest.mark.parametrize(
    ("name", "observation", "options"),
    [
        ("sir", 1, {"n_particles": 300}),
        # ODE solves dominate: fewer particles and iterations (R-hat still has to pass)
        ("lotka_volterra", 2, {"n_particles": 200, "warmup": 20, "min_iterations": 60}),
        ("bernoulli_glm", 1, {"n_particles": 400}),
    ],
)
def test_expensive_references_hold_the_true_parameters_in_their_bulk(name, observation, options):
    task = get_task(name)
    draws = task.reference_posterior_samples(observation, 200, rng=3, sampler_options=options)
    diagnostics = task.last_reference_diagnostics
    assert diagnostics["max_rhat"] <= 1.05
    truth = task.true_parameters(observation)
    quantiles = np.mean(draws < truth, axis=0)
    # For an exact posterior each quantile is uniform: P(outside [0.005, 0.995]) = 0.01 per parameter.
    assert np.all((quantiles > 0.005) & (quantiles < 0.995)), f"quantiles of the truth: {quantiles}"
    # ... and the likelihood is used: the posterior is much narrower than the prior
    prior_sd = task.sample_prior(20_000, rng=0).std(axis=0)
    assert np.all(draws.std(axis=0) < 0.5 * prior_sd)


def test_glm_reference_depends_on_the_spike_train_only_through_its_statistics():
    glm, raw = get_task("bernoulli_glm"), get_task("bernoulli_glm_raw")
    spikes = raw.observation(2)
    log_lik = raw.log_likelihood(glm.sample_prior(5, rng=0), spikes)
    np.testing.assert_allclose(log_lik, glm.log_likelihood(glm.sample_prior(5, rng=0), glm.observation(2)), rtol=1e-10)


@pytest.mark.parametrize("name", ["two_moons", "sir"])  # an exact sampler and an MCMC one
def test_c2st_of_the_reference_against_itself_is_chance(name):
    from amortflow.diagnostics import c2st

    task = get_task(name)
    options = {"n_particles": 300, "warmup": 20, "min_iterations": 60} if name == "sir" else {}
    n = 300
    a = task.reference_posterior_samples(1, n, rng=1, sampler_options=options)
    b = task.reference_posterior_samples(1, n, rng=2, sampler_options=options)
    # Under "same distribution" every held-out prediction is a coin flip: the cross-validated
    # accuracy over 2n = 600 points has standard deviation sqrt(0.25 / 600) = 0.02; 4 sd bound.
    assert c2st(a, b, seed=1) == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / (2 * n)))
