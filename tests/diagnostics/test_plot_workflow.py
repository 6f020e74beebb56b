"""Training and calibration plots render with the right panels, labels and content (Agg backend)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import amortflow.diagnostics as diag
from amortflow.exceptions import ArgumentError, ShapeError
from tests.diagnostics.conjugate import conjugate_draws
from tests.diagnostics.plot_checks import assert_figure, assert_png

NAMES = ["mu", "sigma", "rate"]
THETA = [r"$\theta_{1}$", r"$\theta_{2}$", r"$\theta_{3}$"]


@pytest.fixture(scope="module")
def draws():
    theta, post = conjugate_draws(120, 100, 3, seed=21)
    return post, theta


@pytest.fixture(scope="module")
def history():
    """Loss frames shaped like the trainer's: one row per step / per epoch."""
    epochs, per_epoch = 5, 40
    steps = np.arange(epochs * per_epoch)
    train = pd.DataFrame({
        "Epoch": np.repeat(np.arange(1, epochs + 1), per_epoch),
        "Iteration": np.tile(np.arange(1, per_epoch + 1), epochs),
        "Loss": np.exp(-steps / 50) + 0.05 * np.sin(steps),
    })
    val = pd.DataFrame({"Epoch": np.arange(1, epochs + 1), "Loss": np.exp(-np.arange(1, epochs + 1) * 0.8)})
    return train, val


def test_plot_losses_places_validation_at_epoch_ends(history, tmp_path):
    train, val = history
    fig = diag.plot_losses(train, val, moving_average=True, save_path=tmp_path / "losses.png")
    (ax,) = assert_figure(fig, 1, titles=["Loss"], xlabels=["Training step"], ylabels=["Loss"])
    labels = [line.get_label() for line in ax.lines]
    assert labels[0] == "Training" and "Validation" in labels and any("moving average" in s for s in labels)
    val_line = ax.lines[labels.index("Validation")]
    np.testing.assert_array_equal(val_line.get_xdata(), [40, 80, 120, 160, 200])  # last step of each epoch
    np.testing.assert_allclose(val_line.get_ydata(), val["Loss"])
    assert_png(tmp_path / "losses.png")


def test_plot_losses_one_panel_per_loss_column_and_arrays(history):
    train, val = history
    multi = train.assign(Extra=train["Loss"] * 2)
    fig = diag.plot_losses(multi, val.assign(Extra=val["Loss"] * 2))
    assert_figure(fig, 2, titles=["Loss", "Extra"])
    fig = diag.plot_losses(np.random.default_rng(0).random((50, 2)), val_losses=np.random.default_rng(1).random((5, 2)))
    (ax1, ax2) = assert_figure(fig, 2, titles=["Loss 1", "Loss 2"])
    assert [line.get_label() for line in ax1.lines] == ["Training", "Validation"]
    np.testing.assert_allclose(ax1.lines[1].get_xdata(), [10, 20, 30, 40, 50])  # evenly spread without epochs
    with pytest.raises(ShapeError, match="no numeric loss column"):
        diag.plot_losses(pd.DataFrame({"Epoch": [1, 2]}))


def test_plot_latent_space_2d_pairs_every_dimension():
    z = np.random.default_rng(0).standard_normal((400, 3))
    fig = diag.plot_latent_space_2d(z)
    axes = assert_figure(fig, 9, xlabels=["$z_{1}$", "$z_{3}$"], ylabels=["$z_{2}$"])
    assert any(line.get_label() == r"$\mathcal{N}(0, 1)$" for line in axes[0].lines)
    with pytest.raises(ArgumentError, match="max_dims"):
        diag.plot_latent_space_2d(np.zeros((10, 12)))


def test_plot_sbc_histograms(draws, caplog):
    post, theta = draws
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        fig = diag.plot_sbc_histograms(post, theta, param_names=NAMES, num_bins=10)
    assert_figure(fig, 3, titles=NAMES, xlabels=["Rank statistic"], ylabels=["Count"])
    # 120 data sets / 10 bins = 12 < 20: the bands are unreliable, say so
    assert any("ratio of simulations to histogram bins" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        fig = diag.plot_sbc_histograms(post, theta)  # default bins keep >= 20 per bin
    axes = assert_figure(fig, 3, titles=THETA)
    assert not caplog.records
    assert len(axes[0].patches) >= 6 + 1  # default 120 // 20 = 6 bars, plus the band


@pytest.mark.parametrize("difference, stacked", [(False, False), (True, False), (True, True)])
def test_plot_sbc_ecdf(draws, difference, stacked):
    post, theta = draws
    fig = diag.plot_sbc_ecdf(post, theta, difference=difference, stacked=stacked, num_simulations=200)
    ylabel = "ECDF difference" if difference else "ECDF"
    axes = assert_figure(fig, 1 if stacked else 3, xlabels=["Fractional rank statistic"], ylabels=[ylabel])
    ecdf_lines = [line for line in axes[0].lines if line.get_label() in THETA + ["Rank ECDF"]]
    assert len(ecdf_lines) == (3 if stacked else 1)
    if difference:  # ECDF - z starts and ends near zero
        assert abs(ecdf_lines[0].get_ydata()[-1]) < 0.05


def test_plot_recovery_reports_r_and_r2(draws, tmp_path):
    post, theta = draws
    fig = diag.plot_recovery(post, theta, param_names=NAMES, save_path=tmp_path / "recovery.pdf")
    axes = assert_figure(fig, 3, titles=NAMES, xlabels=["Ground truth"], ylabels=["Estimate"])
    text = axes[0].texts[0].get_text()
    r = diag.correlation(np.median(post, axis=1), theta)[0]
    assert f"$r$ = {r:.3f}" in text and "$R^2$" in text
    assert (tmp_path / "recovery.pdf").stat().st_size > 1000
    fig = diag.plot_recovery(post, theta, uncertainty_agg=None, add_corr=False, add_r2=False, n_col=1)
    axes = assert_figure(fig, 3)
    assert not axes[0].texts


def test_plot_z_score_contraction(draws):
    post, theta = draws
    fig = diag.plot_z_score_contraction(post, theta)
    axes = assert_figure(fig, 3, titles=THETA, xlabels=["Posterior contraction"], ylabels=["Posterior z-score"])
    offsets = axes[0].collections[-1].get_offsets()
    assert offsets.shape == (120, 2)
    assert 0.3 < np.mean(offsets[:, 0]) < 0.7  # conjugate model: contraction near 1/2


def test_plots_accept_tensors_and_pandas(draws):
    tf = pytest.importorskip("tensorflow")
    post, theta = draws
    fig = diag.plot_recovery(tf.constant(post, dtype=tf.float32), pd.DataFrame(theta, columns=NAMES))
    assert_figure(fig, 3)


def test_plots_check_shapes_and_names(draws):
    post, theta = draws
    with pytest.raises(ShapeError, match="n_datasets"):
        diag.plot_sbc_ecdf(post[0], theta)
    with pytest.raises(ArgumentError, match="param_names"):
        diag.plot_recovery(post, theta, param_names=["a"])


def test_plot_latent_space_2d_handles_few_points():
    # Scatter transparency grows as points get fewer; it must stay a valid alpha (<= 1).
    z = np.random.default_rng(1).standard_normal((50, 2))
    fig = diag.plot_latent_space_2d(z)
    assert_figure(fig, 4, xlabels=["$z_{1}$"], ylabels=["$z_{2}$"])
