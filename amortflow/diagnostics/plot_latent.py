"""The latent space of a trained flow against the standard normal it should follow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from amortflow.diagnostics._inputs import check_samples_2d
from amortflow.diagnostics._pair_grid import HDR_MASSES, draw_diag, draw_offdiag, label_grid, make_grid
from amortflow.diagnostics._plot_utils import MAIN_COLOR, TRUTH_COLOR, finish
from amortflow.exceptions import ArgumentError

#: Radii of the 2-D standard normal's circles that enclose the masses of the KDE regions drawn
#: for the data: ``P(|z| <= r) = 1 - exp(-r^2 / 2) = m``  =>  ``r = sqrt(-2 log(1 - m))``.
REFERENCE_RADII = tuple(float(np.sqrt(-2.0 * np.log(1.0 - m))) for m in HDR_MASSES)


def _reference_circles(ax, radii=REFERENCE_RADII) -> None:
    angle = np.linspace(0, 2 * np.pi, 200)
    for k, r in enumerate(radii):
        ax.plot(r * np.cos(angle), r * np.sin(angle), color=TRUTH_COLOR, linewidth=1.0, linestyle="--",
                label=r"$\mathcal{N}(0, I)$" if k == 0 else None)


def plot_latent_space_2d(
    z_samples: Any,
    param_names: Sequence[str] | None = None,
    *,
    height: float = 2.3,
    color: str = MAIN_COLOR,
    max_dims: int = 10,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Pair plot of latent codes ``z`` over the standard normal a well-trained flow maps onto.

    Diagonal: histogram of each latent dimension with the ``N(0, 1)`` density (red). Below the
    diagonal: the points, above: their 50 / 75 / 95 % highest-density regions (KDE); both with
    the standard normal's circles (dashed red) that enclose the same masses. Shifted,
    stretched or non-round clouds show where the flow has not converged.

    Parameters
    ----------
    z_samples : array-like, shape (n, D) or (..., n, D)
        Latent codes, e.g. the ``z`` of ``z, log_det_J = amortizer(conf)``.
    param_names : sequence of str, optional
        Axis labels; default ``$z_{1}$, $z_{2}$, ...``.
    height : float, default 2.3
        Panel size in inches.
    color : str
    max_dims : int, default 10
        Larger latent spaces would be unreadable; pass a slice of ``z`` to look at others.
    fig_size, save_path :
        Total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    z = check_samples_2d(z_samples, "z_samples")
    num_dims = z.shape[1]
    if num_dims > max_dims:
        raise ArgumentError(f"`z_samples` has {num_dims} dimensions; at most max_dims={max_dims} are plotted.")
    if param_names is None:
        labels = [rf"$z_{{{i}}}$" for i in range(1, num_dims + 1)]
    else:
        labels = [str(n) for n in param_names]
        if len(labels) != num_dims:
            raise ArgumentError(f"`param_names` has {len(labels)} entries; expected {num_dims}.")
    bound = float(np.clip(np.nanquantile(np.abs(z), 0.999) * 1.05, 4.0, 10.0))
    lim = np.array([-bound, bound])
    fig, axes = make_grid(num_dims, lower=True, upper=True, height=height, fig_size=fig_size)
    grid = np.linspace(-bound, bound, 200)
    for i in range(num_dims):
        for j in range(num_dims):
            ax = axes[i, j]
            if i == j:
                draw_diag(ax, z[:, i], "hist", color, lim, label="Latent codes")
                ax.plot(grid, stats.norm.pdf(grid), color=TRUTH_COLOR, linewidth=1.4, label=r"$\mathcal{N}(0, 1)$")
            else:
                draw_offdiag(ax, z[:, j], z[:, i], "scatter" if i > j else "kde", color, lim, lim)
                _reference_circles(ax)
                ax.set_ylim(lim)
            ax.set_xlim(lim)
    label_grid(axes, labels, lower=True, upper=True)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=len(names), frameon=False)
    return finish(fig, save_path)
