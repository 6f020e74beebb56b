"""Pair plots, prior / posterior predictive checks, model comparison and MMD plots (Agg backend)."""

from __future__ import annotations

import numpy as np
import pytest

import amortflow.diagnostics as diag
from amortflow.exceptions import ArgumentError, ShapeError
from tests.diagnostics.plot_checks import artist_count, assert_figure, assert_png


class ToyPrior:
    """Duck-typed amortflow Prior: prior(n) -> {"prior_draws": (n, 3)}."""

    param_names = ["a", "b", "c"]

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch_size):
        return {"prior_draws": self.rng.standard_normal((batch_size, 3)) * [1.0, 2.0, 0.5]}


def series_model(batch_size, rng=None):
    """Duck-typed GenerativeModel with (B, T) series data."""
    rng = np.random.default_rng(rng)
    freq = rng.uniform(0.5, 2.0, size=(batch_size, 1))
    t = np.linspace(0, 5, 30)
    return {"prior_draws": freq, "sim_data": np.sin(freq * t) + 0.1 * rng.standard_normal((batch_size, 30))}


def set_model(batch_size):
    """Duck-typed GenerativeModel with (B, N, 2) set data."""
    rng = np.random.default_rng(batch_size)
    theta = rng.standard_normal((batch_size, 2))
    return {"prior_draws": theta, "sim_data": theta[:, None, :] + rng.standard_normal((batch_size, 20, 2))}


@pytest.fixture(scope="module")
def posterior():
    return np.random.default_rng(1).standard_normal((300, 3)) * [0.5, 1.0, 0.3] + [0.2, -0.1, 0.4]


def test_pairplot_upper_triangle_with_points(posterior, tmp_path):
    truth = np.array([0.1, 0.0, 0.5])
    fig = diag.pairplot(posterior, points=truth, labels=["a", "b", "c"], save_path=tmp_path / "pair.png")
    axes = assert_figure(fig, 6, xlabels=["a", "b", "c"])  # diagonal + upper triangle of 3 x 3
    diagonals = [ax for ax in axes if ax.get_xlabel()]
    assert all(line.get_xdata()[0] == pytest.approx(x) for ax, x in zip(diagonals, truth) for line in ax.lines[-1:])
    assert_png(tmp_path / "pair.png")


def test_pairplot_overlays_sets_and_respects_limits(posterior):
    other = posterior * 0.5
    fig = diag.pairplot([posterior, other], limits=[(-3, 3)] * 3, lower="scatter", diag="hist",
                        legend_labels=["A", "B"], param_names=["a", "b", "c"])
    axes = assert_figure(fig, 9, xlabels=["a", "b", "c"], ylabels=["b", "c"])
    assert axes[0].get_xlim() == (-3, 3)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["A", "B"]
    with pytest.raises(ArgumentError, match="limits"):
        diag.pairplot(posterior, limits=[(0, 1)] * 2)
    with pytest.raises(ShapeError, match="points"):
        diag.pairplot(posterior, points=[0.0, 1.0])


def test_pairplot_of_one_parameter(posterior):
    assert_figure(diag.pairplot(posterior[:, 0]), 1, xlabels=[r"$\theta_{1}$"])


def test_plot_posterior_2d_with_prior_uses_its_names(posterior):
    fig = diag.plot_posterior_2d(posterior, prior=ToyPrior(), true_params=[0.1, 0.0, 0.5])
    assert_figure(fig, 9, xlabels=["a", "b", "c"], ylabels=["a", "b", "c"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Prior", "Posterior"]
    fig = diag.plot_posterior_2d(posterior[None], param_names=["x", "y", "z"])  # (1, S, D) works too
    assert_figure(fig, 9, xlabels=["x", "y", "z"])
    assert not fig.legends  # nothing to tell apart without a prior
    with pytest.raises(ArgumentError, match="not both"):
        diag.plot_posterior_2d(posterior, prior=ToyPrior(), prior_draws=posterior)
    with pytest.raises(ShapeError, match="one data set"):
        diag.plot_posterior_2d(np.stack([posterior, posterior]))


def test_plot_prior2d():
    fig = diag.plot_prior2d(ToyPrior(), n_samples=400)
    assert_figure(fig, 9, xlabels=["a", "b", "c"], ylabels=["b", "c"])
    assert fig._suptitle.get_text() == "Prior"


def test_plot_pushforward_series_and_summaries():
    fig = diag.plot_pushforward(series_model, n_simulations=100, rng=3)
    (ax,) = assert_figure(fig, 1, xlabels=["Time step / index"], ylabels=["Value"])
    assert len(ax.collections) == 2 and any(line.get_label() == "Median" for line in ax.lines)
    fig = diag.plot_pushforward(
        set_model, n_simulations=100, summary_fun=lambda x: np.concatenate([x.mean(1), x.std(1)], axis=1),
        data_names=["m1", "m2", "s1", "s2"], observed_data=set_model(1)["sim_data"][0],
    )
    axes = assert_figure(fig, 4, titles=["m1", "m2", "s1", "s2"], xlabels=["Summary statistic"])
    assert any(line.get_label() == "Observed" for line in axes[0].lines)


def test_plot_pushforward_sets_show_marginals():
    fig = diag.plot_pushforward(set_model, n_simulations=50, observed_data=set_model(1)["sim_data"])
    axes = assert_figure(fig, 2, titles=["Channel 1", "Channel 2"], xlabels=["Value"], ylabels=["Density"])
    assert any(line.get_label() == "Observed" for line in axes[0].lines)
    with pytest.raises(ShapeError, match="sim_data"):
        diag.plot_pushforward(lambda n: {"prior_draws": np.zeros((n, 1))})


def test_plot_posterior_predictive():
    observed = series_model(1, rng=5)["sim_data"][0]
    fig = diag.plot_posterior_predictive(observed, series_model(80, rng=6)["sim_data"], data_names=["signal"])
    (ax,) = assert_figure(fig, 1, titles=["signal"])
    assert any(line.get_label() == "Observed" for line in ax.lines)
    fig = diag.plot_posterior_predictive(set_model(1)["sim_data"], set_model(60)["sim_data"], kind="marginals")
    assert_figure(fig, 2)
    with pytest.raises(ShapeError, match="observed_data"):
        diag.plot_posterior_predictive(np.zeros(7), np.zeros((10, 30)))
    with pytest.raises(ArgumentError, match="kind"):
        diag.plot_posterior_predictive(np.zeros(30), np.zeros((10, 30)), kind="violin")


@pytest.fixture(scope="module")
def model_predictions():
    rng = np.random.default_rng(2)
    logits = 1.5 * rng.standard_normal((600, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    true = (rng.uniform(size=(600, 1)) > np.cumsum(probs, axis=1)).sum(axis=1)
    return true, probs


def test_plot_calibration_curves(model_predictions):
    true, probs = model_predictions
    fig = diag.plot_calibration_curves(np.eye(3)[true], probs, model_names=["A", "B", "C"])
    axes = assert_figure(
        fig, 3, titles=["A", "B", "C"], xlabels=["Predicted probability"], ylabels=["True probability"]
    )
    ece = diag.expected_calibration_error(true, probs)
    assert axes[1].texts[0].get_text() == f"ECE = {ece[1]:.3f}"


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix(model_predictions, normalize):
    true, probs = model_predictions
    fig = diag.plot_confusion_matrix(true, probs, normalize=normalize)
    (ax,) = assert_figure(fig, 1, xlabels=["Predicted model"], ylabels=["True model"])
    matrix = ax.images[0].get_array()
    assert matrix.shape == (3, 3) and len(ax.texts) == 9
    expected_total = 3.0 if normalize else 600.0  # rows sum to one, or counts sum to n
    assert float(matrix.sum()) == pytest.approx(expected_total)
    default_names = [rf"$\mathcal{{M}}_{{{m}}}$" for m in (1, 2, 3)]
    assert [t.get_text() for t in ax.get_xticklabels()] == default_names


def test_plot_mmd_hypothesis_test(tmp_path):
    null = np.random.default_rng(0).gamma(4.0, 0.01, size=300)
    fig = diag.plot_mmd_hypothesis_test(null, null.max() + 0.01, save_path=tmp_path / "mmd.png")
    (ax,) = assert_figure(fig, 1, ylabels=["Density"])
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["Observed MMD (p = 0.003)"]  # beyond all 300 null values: 1 / 301
    assert artist_count(ax) > 30  # histogram bars, rejection region, observed line
    assert_png(tmp_path / "mmd.png")
    assert_figure(diag.plot_mmd_hypothesis_test(null), 1)
