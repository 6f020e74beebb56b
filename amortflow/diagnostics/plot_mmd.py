"""The MMD hypothesis test for model misspecification (Schmitt et al. 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from amortflow.diagnostics._inputs import to_numpy
from amortflow.diagnostics._plot_utils import MAIN_COLOR, TRUTH_COLOR, finish, style_axis
from amortflow.exceptions import ShapeError


def plot_mmd_hypothesis_test(
    mmd_null: Any,
    mmd_observed: Any = None,
    alpha_level: float = 0.05,
    *,
    null_color: str = MAIN_COLOR,
    observed_color: str = TRUTH_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Null distribution of the MMD, its rejection region and the observed MMD value(s).

    The critical value is the ``1 - alpha_level`` quantile of ``mmd_null``; an observed MMD
    beyond it rejects "the observed data come from the simulator" at level ``alpha_level``.
    The legend reports the Monte Carlo p-value ``(1 + #{MMD_null >= MMD_obs}) / (1 + n)`` of
    each observed value.

    Parameters
    ----------
    mmd_null : array-like, shape (n,)
        MMDs of simulated data against the reference, e.g. from
        :func:`~amortflow.diagnostics.metrics.mmd_null_distribution`.
    mmd_observed : float or array-like, optional
        MMD(s) of the observed data against the reference.
    alpha_level : float, default 0.05
    null_color, observed_color, fig_size, save_path :
        Colours, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    null = to_numpy(mmd_null, "mmd_null").ravel()
    if null.size < 2:
        raise ShapeError(f"`mmd_null` needs at least 2 values; received {null.size}.")
    observed = None if mmd_observed is None else to_numpy(mmd_observed, "mmd_observed").ravel()
    critical = float(np.quantile(null, 1.0 - alpha_level))
    fig, ax = plt.subplots(figsize=fig_size or (7.0, 4.0), layout="constrained")
    high = max(null.max(), critical, 0.0 if observed is None else observed.max())
    span = high - min(null.min(), high if observed is None else observed.min())
    ax.hist(null, bins=30, density=True, color=null_color, alpha=0.6, label=r"$H_0$: MMD under the simulator")
    ax.axvspan(critical, high + 0.05 * span, color=TRUTH_COLOR, alpha=0.12, linewidth=0,
               label=f"Rejection region ($\\alpha$ = {alpha_level:g})")
    if observed is not None:
        for value in observed:
            p_value = (np.sum(null >= value) + 1) / (null.size + 1)
            ax.axvline(value, color=observed_color, linewidth=2.0, label=f"Observed MMD (p = {p_value:.3f})")
    ax.set_xlabel(r"$\widehat{\mathrm{MMD}}^2$")
    ax.set_ylabel("Density")
    ax.set_title("MMD hypothesis test")
    # below the axes: inside, the legend would hide the rejection region or the observed line
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    style_axis(ax)
    return finish(fig, save_path)
