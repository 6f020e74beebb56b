"""The trainer's diagnostics: latent-space and SBC plots, and the MMD misspecification test."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ConfigurationError
from amortflow.trainers import Trainer

from .conftest import N_OBS, GaussianMeanAmortizer, make_amortizer, make_model


@pytest.fixture(scope="module")
def trained() -> Trainer:
    # Fixed weight initialisation: otherwise the network (and so whether the 2 %-level MMD
    # test below accepts the well-specified data) depends on which tests ran before.
    af.set_seed(0)
    model = make_model()
    trainer = Trainer(make_amortizer(), model, seed=0, progress=False, jit_compile=False, default_lr=5e-3)
    trainer.train_offline(model(512, rng=0), epochs=4, batch_size=64)
    return trainer


def test_diagnostic_plots_return_figures(trained):
    # (>= 200 points: diagnostics/_pair_grid.py computes alpha > 1 for fewer, reported)
    fig = trained.diagnose_latent2d(num_sims=300)
    assert isinstance(fig, matplotlib.figure.Figure)
    fig = trained.diagnose_sbc_histograms(num_sims=60, n_samples=19)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_mmd_test_flags_misspecified_data_only(trained):
    model = make_model()
    rng = np.random.default_rng(5)
    well_specified = model(20, rng=rng)
    shifted = {**well_specified, "sim_data": well_specified["sim_data"] + 4.0}  # x_n ~ N(theta + 4, I): not the model
    null, observed_ok = trained.mmd_hypothesis_test(well_specified, num_reference_simulations=300, num_null_samples=50)
    _, observed_bad = trained.mmd_hypothesis_test(shifted, num_reference_simulations=300, num_null_samples=50)
    assert null.shape == (50,) and np.all(null >= 0)
    # a shift of 4 standard deviations in every observation separates the data sets completely,
    # so its MMD exceeds every null value; well-specified data lies inside the null's range
    assert observed_bad > null.max()
    assert observed_ok <= null.max()
    # summary conditions can be given directly; bootstrap resampling gives a null as well
    conditions = trained.configure(well_specified)["summary_conditions"]
    null_b, observed_arr = trained.mmd_hypothesis_test(conditions, num_reference_simulations=300, num_null_samples=20,
                                                       bootstrap=True)  # fmt: skip
    assert null_b.shape == (20,) and observed_arr == pytest.approx(observed_ok, rel=1e-5)
    assert conditions.shape == (20, N_OBS, 2)


def test_mmd_test_needs_a_summary_network():
    trainer = Trainer(GaussianMeanAmortizer(), make_model(), progress=False)
    with pytest.raises(ConfigurationError, match="summary_net"):
        trainer.mmd_hypothesis_test(make_model()(5, rng=0))
