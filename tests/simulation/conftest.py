"""Small generative models shared by the simulation tests (pure NumPy, fast)."""

import numpy as np
import pytest

from amortflow.simulation import ContextGenerator, GenerativeModel, Prior, Simulator


def gaussian_prior_fun(rng):
    return rng.normal(size=2)


def gaussian_batch_prior(batch_size, rng):
    return rng.normal(size=(batch_size, 2))


def gaussian_sim(theta, rng):
    return rng.normal(theta, 1.0, size=(5, 2))


def gaussian_batch_sim(params, rng):
    return params[:, None, :] + rng.normal(size=(params.shape[0], 5, 2))


@pytest.fixture
def gaussian_model():
    """theta ~ N(0, I_2), x_n ~ N(theta, I_2), n = 1..5: per-sample prior, batched simulator."""
    return GenerativeModel(Prior(prior_fun=gaussian_prior_fun), Simulator(batch_simulator_fun=gaussian_batch_sim))


@pytest.fixture
def context_model():
    """Both kinds of simulator context: n_obs per batch, one design vector (n_obs,) per simulation."""
    context = ContextGenerator(
        non_batchable_context_fun=lambda rng: int(rng.integers(3, 8)),
        batchable_context_fun=lambda n_obs, rng: rng.uniform(0.0, 1.0, size=n_obs),
        use_non_batchable_for_batchable=True,
    )

    def sim(theta, design, n_obs, rng):
        assert design.shape == (n_obs,)
        return theta[None, :] * design[:, None] + rng.normal(size=(n_obs, 2))

    return GenerativeModel(Prior(batch_prior_fun=gaussian_batch_prior), Simulator(simulator_fun=sim, context_generator=context))


def pytest_terminal_summary(terminalreporter):
    """Say in the log that the SLURM test ran (``-ra`` lists it only when it is skipped or fails)."""
    for report in terminalreporter.stats.get("passed", []):
        if report.when == "call" and "test_slurm.py" in report.nodeid:
            terminalreporter.write_line(f"SLURM (dask-jobqueue, 2 jobs) ran and passed: {report.nodeid} ({report.duration:.1f} s)")
