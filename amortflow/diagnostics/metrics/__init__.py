"""Diagnostic metrics as plain numpy functions (the plots in :mod:`amortflow.diagnostics` call them).

* posterior calibration: :func:`sbc_ranks`, :func:`simultaneous_ecdf_bands`,
  :func:`sbc_ecdf_within_bands`, :func:`posterior_calibration_error`,
  :func:`credible_interval_coverage`
* posterior accuracy: :func:`posterior_z_score`, :func:`posterior_contraction`,
  :func:`root_mean_squared_error`, :func:`aggregated_rmse`, :func:`correlation`, :func:`r_squared`
* MCMC convergence: :func:`split_rhat` (rank-normalized), :func:`effective_sample_size`
* two-sample tests: :func:`c2st`, :func:`maximum_mean_discrepancy`, :func:`mmd_null_distribution`
* model comparison: :func:`expected_calibration_error`, :func:`model_calibration_curves`
"""

from amortflow.diagnostics.metrics.c2st import c2st
from amortflow.diagnostics.metrics.calibration import (
    CalibrationCurve,
    credible_interval_coverage,
    credible_levels,
    expected_calibration_error,
    model_calibration_curves,
    posterior_calibration_error,
)
from amortflow.diagnostics.metrics.convergence import effective_sample_size, split_rhat
from amortflow.diagnostics.metrics.errors import aggregated_rmse, correlation, r_squared, root_mean_squared_error
from amortflow.diagnostics.metrics.mmd import (
    DEFAULT_MMD_BANDWIDTHS,
    maximum_mean_discrepancy,
    mixture_kernel,
    mmd_null_distribution,
)
from amortflow.diagnostics.metrics.posterior import posterior_contraction, posterior_z_score
from amortflow.diagnostics.metrics.sbc import (
    EcdfBands,
    binomial_band,
    default_num_bins,
    rank_ecdf,
    sbc_ecdf_within_bands,
    sbc_ranks,
    simulation_based_calibration_ranks,
    simultaneous_ecdf_bands,
)

__all__ = [
    "CalibrationCurve",
    "DEFAULT_MMD_BANDWIDTHS",
    "EcdfBands",
    "aggregated_rmse",
    "binomial_band",
    "c2st",
    "correlation",
    "credible_interval_coverage",
    "credible_levels",
    "default_num_bins",
    "effective_sample_size",
    "expected_calibration_error",
    "maximum_mean_discrepancy",
    "mixture_kernel",
    "mmd_null_distribution",
    "model_calibration_curves",
    "posterior_calibration_error",
    "posterior_contraction",
    "posterior_z_score",
    "r_squared",
    "rank_ecdf",
    "root_mean_squared_error",
    "sbc_ecdf_within_bands",
    "sbc_ranks",
    "simulation_based_calibration_ranks",
    "simultaneous_ecdf_bands",
    "split_rhat",
]
