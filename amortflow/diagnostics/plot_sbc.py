"""Simulation-based calibration plots: rank histograms and rank ECDFs with simultaneous bands."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from amortflow.diagnostics._inputs import check_draws_and_truth
from amortflow.diagnostics._plot_utils import (
    BAND_COLOR,
    MAIN_COLOR,
    PALETTE,
    finish,
    outer_labels,
    panel_grid,
    param_labels,
    style_axis,
)
from amortflow.diagnostics.metrics.sbc import (
    DEFAULT_ECDF_SEED,
    binomial_band,
    default_num_bins,
    rank_ecdf,
    sbc_ranks,
    simultaneous_ecdf_bands,
)

logger = logging.getLogger("amortflow")

#: Below this many data sets per bin the binomial band is too wide to show miscalibration.
MIN_DATASETS_PER_BIN = 20


def plot_sbc_histograms(
    post_samples: Any,
    prior_samples: Any,
    param_names: Sequence[str] | None = None,
    num_bins: int | None = None,
    binomial_interval: float = 0.99,
    *,
    hist_color: str = MAIN_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Histogram of SBC ranks per parameter, with the band a uniform histogram stays in.

    The grey band is the central ``binomial_interval`` of ``Binomial(N, 1 / num_bins)``, the
    count of one bin under uniformity (point-wise per bin, not simultaneous; use
    :func:`plot_sbc_ecdf` for a simultaneous test). A U shape means over-confidence, an
    inverted U under-confidence, a slope bias.

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D)
    param_names : sequence of str, optional
    num_bins : int, optional
        Default: about 20 data sets per bin (2 to 20 bins, at most ``S + 1``).
        A WARNING is logged when ``N / num_bins < 20``.
    binomial_interval : float, default 0.99
    hist_color, fig_size, save_path :
        Bar colour, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    num_datasets, num_draws, num_params = post.shape
    ranks = sbc_ranks(post, prior)
    num_bins = default_num_bins(num_datasets, num_draws) if num_bins is None else int(num_bins)
    if num_datasets / num_bins < MIN_DATASETS_PER_BIN:
        logger.warning(
            "The ratio of simulations to histogram bins (%d / %d = %.1f) is below %d: the rank histograms "
            "cannot reliably show miscalibration. Use more simulations or fewer bins.",
            num_datasets, num_bins, num_datasets / num_bins, MIN_DATASETS_PER_BIN,
        )
    low, high = binomial_band(num_datasets, num_bins, binomial_interval)
    edges = np.linspace(-0.5, num_draws + 0.5, num_bins + 1)  # integer ranks 0..S, equal-width bins
    labels = param_labels(param_names, num_params)
    fig, axes = panel_grid(num_params, fig_size=fig_size)
    for d, ax in enumerate(axes):
        ax.hist(ranks[:, d], bins=edges, color=hist_color, alpha=0.8, edgecolor="white", label="Rank counts")
        # the band goes over the bars, so that it stays visible where bars cover it
        ax.axhspan(low, high, color=BAND_COLOR, alpha=0.35, linewidth=0, zorder=3,
                   label=f"{binomial_interval:.0%} interval under uniformity")
        ax.axhline(num_datasets / num_bins, color="0.35", linewidth=1.0, zorder=4, label="Expected count")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_title(labels[d])
        style_axis(ax)
    outer_labels(axes, "Rank statistic", "Count")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=len(names), frameon=False, fontsize=9)
    return finish(fig, save_path)


def plot_sbc_ecdf(
    post_samples: Any,
    prior_samples: Any,
    difference: bool = False,
    stacked: bool = False,
    param_names: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
    num_simulations: int = 1000,
    seed: int | np.random.Generator | None = DEFAULT_ECDF_SEED,
    ecdf_color: str = MAIN_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """ECDF of the fractional SBC ranks with simultaneous ``confidence`` bands (Säilynoja et al. 2022).

    For a calibrated posterior the whole ECDF of each parameter stays inside the grey band with
    probability ``confidence`` (the band is simultaneous over all points, see
    :func:`~amortflow.diagnostics.metrics.simultaneous_ecdf_bands`; it is simulated with ``seed``,
    so the same call always draws the same band). An ECDF above the diagonal in the left half
    and below it in the right shows over-confidence (too many extreme ranks), the opposite
    under-confidence; a curve entirely above or below the diagonal shows bias.

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D)
    difference : bool, default False
        Plot ``ECDF(z) - z``, which makes deviations easier to see.
    stacked : bool, default False
        All parameters in one panel (one band) instead of one panel each.
    param_names : sequence of str, optional
    confidence : float, default 0.95
    num_simulations : int, default 1000
        Uniform samples simulated to calibrate the band.
    seed : int or numpy.random.Generator, optional
    ecdf_color, fig_size, save_path :
        Curve colour (unstacked), total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    num_params = post.shape[2]
    ranks = sbc_ranks(post, prior, fractional=True)
    bands = simultaneous_ecdf_bands(post.shape[0], None, num_simulations, confidence, seed=seed)
    ecdf = rank_ecdf(ranks, bands.z)
    offset = bands.z if difference else 0.0
    labels = param_labels(param_names, num_params)
    if stacked:
        fig, ax = plt.subplots(figsize=fig_size or (5.5, 4.2), layout="constrained")
        axes = [ax]
    else:
        fig, axes = panel_grid(num_params, fig_size=fig_size)
    for d in range(num_params):
        ax = axes[0] if stacked else axes[d]
        color = PALETTE[d % len(PALETTE)] if stacked else ecdf_color
        ax.plot(bands.z, ecdf[:, d] - offset, color=color, linewidth=1.8, label=labels[d] if stacked else "Rank ECDF")
    for d, ax in enumerate(axes):
        ax.fill_between(bands.z, bands.lower - offset, bands.upper - offset, color=BAND_COLOR, alpha=0.3,
                        linewidth=0, label=f"{confidence:.0%} simultaneous band")
        if not difference:
            ax.plot([0, 1], [0, 1], color=BAND_COLOR, linewidth=1.0, linestyle="--")
        ax.set_xlim(0, 1)
        ax.set_title("Stacked ECDFs" if stacked else labels[d])
        style_axis(ax)
    outer_labels(axes, "Fractional rank statistic", "ECDF difference" if difference else "ECDF")
    if stacked:
        axes[0].legend(fontsize=8, frameon=False, loc="lower right" if not difference else "lower center")
    else:
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncol=len(names), frameon=False, fontsize=9)
    return finish(fig, save_path)
