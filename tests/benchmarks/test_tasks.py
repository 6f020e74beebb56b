"""Contract of every benchmark task: shapes, prior support, reproducible simulators and observations."""

import numpy as np
import pytest

from amortflow.benchmarks import TASK_NAMES, get_task
from amortflow.benchmarks.tasks import TASKS
from amortflow.exceptions import ArgumentError, ShapeError

# The dimensions of Lueckmann et al. (2021), Table 1 (and Kruse et al., 2021, for inverse kinematics).
EXPECTED_DIMS = {
    "gaussian_linear": (10, 10),
    "gaussian_linear_uniform": (10, 10),
    "slcp": (5, 8),
    "slcp_distractors": (5, 100),
    "bernoulli_glm": (10, 10),
    "bernoulli_glm_raw": (10, 100),
    "gaussian_mixture": (2, 2),
    "two_moons": (2, 2),
    "sir": (2, 10),
    "lotka_volterra": (4, 20),
    "inverse_kinematics": (4, 2),
}


def test_registry_holds_every_task():
    assert set(TASK_NAMES) == set(EXPECTED_DIMS)
    with pytest.raises(ArgumentError, match="two_mon"):
        get_task("two_mon")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_dimensions_and_simulator_shapes(name):
    task = get_task(name)
    assert (task.dim_parameters, task.dim_data) == EXPECTED_DIMS[name]
    assert len(task.param_names) == task.dim_parameters
    theta = task.sample_prior(7, rng=0)
    assert theta.shape == (7, task.dim_parameters)
    x = task.simulate(theta, rng=1)
    assert x.shape == (7, task.dim_data) and x.dtype == np.float64
    assert np.all(np.isfinite(x))
    assert task.prior_distribution.event_shape == (task.dim_parameters,)
    assert task.prior_distribution.batch_shape == ()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_integer_data_flag_matches_the_simulator(name):
    # integer_data switches NLE to dequantized training; a task whose simulator returns counts
    # without the flag (or the flag on continuous data) would be trained on the wrong density.
    task = get_task(name)
    x = task.simulate(task.sample_prior(50, rng=0), rng=1)
    assert bool(np.array_equal(x, np.round(x))) == task.integer_data
    assert task.integer_data == (name in {"sir", "bernoulli_glm_raw"})


def test_exchangeable_draws_describe_the_data_layout():
    # data_layout="set" reshapes x to (n, d) rows that a permutation-invariant network pools, so
    # each row must be one draw of the same distribution. For slcp (rows N(m, S) with
    # m = theta[:2], sds theta[2:4]^2) every row's mean and sd across 20,000 simulations at a fixed
    # theta must match; standard errors 1/sqrt(20,000) = 0.007 (mean), 0.005 (sd): tolerance 5 SE.
    assert {name for name in TASK_NAMES if get_task(name).exchangeable_draws} == {"slcp"}
    task = get_task("slcp")
    n, d = task.exchangeable_draws
    assert n * d == task.dim_data
    theta = np.array([0.5, -1.0, 1.0, -1.0, 0.3])
    rows = task.simulate(np.tile(theta, (20_000, 1)), rng=3).reshape(-1, n, d)
    np.testing.assert_allclose(rows.mean(axis=0), np.tile(theta[:2], (n, 1)), atol=0.035)
    np.testing.assert_allclose(rows.std(axis=0), np.tile(theta[2:4] ** 2, (n, 1)), atol=0.025)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_simulate_rejects_wrong_parameter_shapes(name):
    task = get_task(name)
    with pytest.raises(ShapeError, match=rf"\(B, {task.dim_parameters}\)"):
        task.simulate(np.zeros(task.dim_parameters))
    with pytest.raises(ShapeError, match=rf"\(B, {task.dim_parameters}\)"):
        task.simulate(np.zeros((3, task.dim_parameters + 1)))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_prior_samples_lie_in_the_support_and_densities_agree(name):
    task = get_task(name)
    theta = task.sample_prior(500, rng=3)
    log_prior = task.log_prior(theta)
    assert np.all(np.isfinite(log_prior))
    # the numpy density (used by the reference samplers) is the TFP prior's density
    tfp_log_prob = np.asarray(task.prior_distribution.log_prob(theta.astype(np.float32)), dtype=float)
    np.testing.assert_allclose(log_prior, tfp_log_prob, rtol=1e-4, atol=1e-3)
    # TFP draws lie in the support of the numpy density too
    tfp_draws = np.asarray(task.prior_distribution.sample(500, seed=4), dtype=float)
    assert np.all(np.isfinite(task.log_prior(tfp_draws)))


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if hasattr(TASKS[n], "prior_low")])
def test_bounded_priors_give_minus_inf_outside(name):
    task = get_task(name)
    outside = np.asarray(task.prior_high)[None] + 0.1
    assert task.log_prior(outside)[0] == -np.inf


@pytest.mark.parametrize("name", TASK_NAMES)
def test_simulator_is_reproducible_under_a_seed(name):
    task = get_task(name)
    theta = task.sample_prior(5, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(task.simulate(theta, rng=5), task.simulate(theta, rng=5))
    np.testing.assert_array_equal(task.sample_prior(5, rng=11), theta)
    if name != "inverse_kinematics":  # the only deterministic simulator
        assert not np.array_equal(task.simulate(theta, rng=5), task.simulate(theta, rng=6))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_observations_are_deterministic_and_distinct(name):
    first, second = get_task(name), get_task(name)
    observations = np.array([first.observation(i) for i in range(1, 11)])
    assert observations.shape == (10, first.dim_data)
    np.testing.assert_array_equal(observations, [second.observation(i) for i in range(1, 11)])
    assert len({obs.tobytes() for obs in observations}) == 10
    theta = first.true_parameters(4)
    assert theta.shape == (first.dim_parameters,) and np.isfinite(first.log_prior(theta[None]))[0]
    with pytest.raises(ArgumentError, match="from 1 to 10"):
        first.observation(0)
    with pytest.raises(ArgumentError, match="from 1 to 10"):
        first.observation(11)


def test_observations_are_pinned():
    """Cached reference samples are keyed by observation number: the observations must never drift."""
    np.testing.assert_allclose(get_task("two_moons").observation(1), [-0.0790819, -0.70557689], rtol=1e-6)
    np.testing.assert_allclose(get_task("gaussian_mixture").observation(1), [9.73098196, -6.64706224], rtol=1e-6)
    np.testing.assert_allclose(get_task("inverse_kinematics").observation(1), [-0.76058276, 1.65342534], rtol=1e-6)
    np.testing.assert_allclose(get_task("sir").observation(1)[:4], [0.0, 650.0, 84.0, 18.0])


def test_derived_tasks_share_their_base_observations():
    slcp, distractors = get_task("slcp"), get_task("slcp_distractors")
    glm, glm_raw = get_task("bernoulli_glm"), get_task("bernoulli_glm_raw")
    for i in (1, 7):
        np.testing.assert_array_equal(distractors.true_parameters(i), slcp.true_parameters(i))
        np.testing.assert_array_equal(distractors.informative_data(distractors.observation(i)), slcp.observation(i))
        np.testing.assert_array_equal(glm_raw.true_parameters(i), glm.true_parameters(i))
        spikes = glm_raw.observation(i)
        assert set(np.unique(spikes)) <= {0.0, 1.0}
        np.testing.assert_allclose(glm_raw.sufficient_statistics(spikes), glm.observation(i), atol=1e-12)
