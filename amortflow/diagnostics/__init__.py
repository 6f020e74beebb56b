"""Diagnostics for every step of a Bayesian workflow: plots that return a matplotlib ``Figure``
and the metrics behind them (plain numpy functions, also in :mod:`amortflow.diagnostics.metrics`).

Inputs are numpy arrays, TensorFlow tensors or pandas objects: posterior draws of shape
``(n_datasets, n_samples, D)`` and true parameters of shape ``(n_datasets, D)``. Every plot
takes ``param_names`` (default ``$\\theta_{i}$``), ``fig_size`` and ``save_path``.

>>> import amortflow as af
>>> fig = af.diagnostics.plot_sbc_ecdf(draws, theta, difference=True)      # doctest: +SKIP
>>> af.diagnostics.c2st(reference_draws, approximate_draws)                 # doctest: +SKIP
"""

from amortflow.diagnostics import metrics
from amortflow.diagnostics.metrics import (
    CalibrationCurve,
    EcdfBands,
    aggregated_rmse,
    c2st,
    correlation,
    credible_interval_coverage,
    expected_calibration_error,
    maximum_mean_discrepancy,
    mmd_null_distribution,
    model_calibration_curves,
    posterior_calibration_error,
    posterior_contraction,
    posterior_z_score,
    r_squared,
    root_mean_squared_error,
    sbc_ecdf_within_bands,
    sbc_ranks,
    simulation_based_calibration_ranks,
    simultaneous_ecdf_bands,
)
from amortflow.diagnostics.inference_data import to_inference_data
from amortflow.diagnostics.plot_latent import plot_latent_space_2d
from amortflow.diagnostics.plot_losses import plot_losses
from amortflow.diagnostics.plot_mmd import plot_mmd_hypothesis_test
from amortflow.diagnostics.plot_model_comparison import plot_calibration_curves, plot_confusion_matrix
from amortflow.diagnostics.plot_posterior import pairplot, plot_posterior_2d
from amortflow.diagnostics.plot_ppc import plot_posterior_predictive
from amortflow.diagnostics.plot_prior import plot_prior2d, plot_pushforward
from amortflow.diagnostics.plot_recovery import plot_recovery, plot_z_score_contraction
from amortflow.diagnostics.plot_sbc import plot_sbc_ecdf, plot_sbc_histograms

__all__ = [
    "CalibrationCurve",
    "EcdfBands",
    "aggregated_rmse",
    "c2st",
    "correlation",
    "credible_interval_coverage",
    "expected_calibration_error",
    "maximum_mean_discrepancy",
    "metrics",
    "mmd_null_distribution",
    "model_calibration_curves",
    "pairplot",
    "plot_calibration_curves",
    "plot_confusion_matrix",
    "plot_latent_space_2d",
    "plot_losses",
    "plot_mmd_hypothesis_test",
    "plot_posterior_2d",
    "plot_posterior_predictive",
    "plot_prior2d",
    "plot_pushforward",
    "plot_recovery",
    "plot_sbc_ecdf",
    "plot_sbc_histograms",
    "plot_z_score_contraction",
    "posterior_calibration_error",
    "posterior_contraction",
    "posterior_z_score",
    "r_squared",
    "root_mean_squared_error",
    "sbc_ecdf_within_bands",
    "sbc_ranks",
    "simulation_based_calibration_ranks",
    "simultaneous_ecdf_bands",
    "to_inference_data",
]
