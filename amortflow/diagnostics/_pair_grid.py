"""A D x D grid of marginal (diagonal) and pairwise (off-diagonal) panels, shared by the pair plots."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, to_rgba
from matplotlib.figure import Figure
from scipy import stats

from amortflow.diagnostics._plot_utils import style_axis
from amortflow.exceptions import ArgumentError

DIAG_KINDS = ("hist", "kde")
OFFDIAG_KINDS = ("kde", "hist", "scatter", None)
#: Probability mass inside the filled KDE contours (outer to inner). Not 0.99: the outermost
#: contour of a KDE follows a handful of tail points and looks ragged.
HDR_MASSES = (0.95, 0.75, 0.5)
_MAX_KDE_POINTS = 2000  # KDE cost grows with points x grid; a subsample is visually identical


def default_limits(sample_sets: Sequence[np.ndarray], points: np.ndarray | None = None) -> np.ndarray:
    """Per-dimension ``(low, high)`` covering the 0.1-99.9 % quantiles of all sets (and the points), padded 5 %."""
    stacked = np.concatenate(sample_sets, axis=0)
    low, high = np.nanquantile(stacked, 0.001, axis=0), np.nanquantile(stacked, 0.999, axis=0)
    if points is not None:
        low, high = np.minimum(low, points.min(axis=0)), np.maximum(high, points.max(axis=0))
    pad = np.where(high > low, 0.05 * (high - low), 1.0)
    return np.stack([low - pad, high + pad], axis=1)


def check_limits(limits, num_dims: int) -> np.ndarray | None:
    """``None``, one ``(low, high)`` pair for all dimensions, or one pair per dimension -> ``(D, 2)``."""
    if limits is None:
        return None
    arr = np.asarray(limits, dtype=np.float64)
    if arr.shape == (2,):
        arr = np.tile(arr, (num_dims, 1))
    if arr.shape != (num_dims, 2):
        raise ArgumentError(f"`limits` must be (low, high) or have shape ({num_dims}, 2); received {arr.shape}.")
    return arr


def make_grid(num_dims: int, lower: bool, upper: bool, height: float, fig_size=None) -> tuple[Figure, np.ndarray]:
    """Figure with a ``num_dims x num_dims`` axes array; removed triangles are ``None`` entries."""
    size = fig_size or (height * num_dims, height * num_dims)
    fig, axes = plt.subplots(num_dims, num_dims, figsize=size, layout="constrained", squeeze=False)
    axes = axes.astype(object)
    for i in range(num_dims):
        for j in range(num_dims):
            if (i > j and not lower) or (i < j and not upper):
                axes[i, j].remove()
                axes[i, j] = None
    return fig, axes


def _subsample(x: np.ndarray) -> np.ndarray:
    if x.shape[0] <= _MAX_KDE_POINTS:
        return x
    return x[np.linspace(0, x.shape[0] - 1, _MAX_KDE_POINTS).astype(int)]


def draw_diag(ax: Axes, x: np.ndarray, kind: str, color, limits: np.ndarray, label: str | None = None) -> None:
    """Marginal of ``x`` on ``ax``: a density histogram or a filled 1-D KDE."""
    if kind == "kde" and np.ptp(x) > 0:
        grid = np.linspace(limits[0], limits[1], 200)
        density = stats.gaussian_kde(_subsample(x))(grid)
        ax.fill_between(grid, density, color=color, alpha=0.25, linewidth=0)
        ax.plot(grid, density, color=color, linewidth=1.6, label=label)
    else:  # a constant marginal has no KDE; a histogram still shows it
        ax.hist(x, bins=30, range=tuple(limits), density=True, color=color, alpha=0.55, label=label)


def _hdr_levels(density_at_samples: np.ndarray) -> list[float]:
    """Density thresholds enclosing ``HDR_MASSES`` of the samples (increasing)."""
    return sorted({float(np.quantile(density_at_samples, 1.0 - m)) for m in HDR_MASSES})


def draw_kde_2d(ax: Axes, x: np.ndarray, y: np.ndarray, color, lim_x, lim_y) -> None:
    """Filled highest-density contours (50 / 75 / 95 % of the mass) of a 2-D KDE."""
    xy = _subsample(np.stack([x, y], axis=1)).T
    try:
        kde = stats.gaussian_kde(xy)
    except np.linalg.LinAlgError:  # degenerate (e.g. perfectly correlated) pair: show the points
        ax.scatter(x, y, s=4, color=color, alpha=0.3, linewidths=0)
        return
    gx, gy = np.meshgrid(np.linspace(*lim_x, 80), np.linspace(*lim_y, 80))
    density = kde(np.stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    levels = _hdr_levels(kde(xy))
    top = max(float(density.max()), levels[-1]) * 1.0001
    fills = [to_rgba(color, a) for a in np.linspace(0.2, 0.6, len(levels))]
    ax.contourf(gx, gy, density, levels=levels + [top], colors=fills)
    ax.contour(gx, gy, density, levels=levels, colors=[color], linewidths=0.8)


def draw_offdiag(ax: Axes, x: np.ndarray, y: np.ndarray, kind: str, color, lim_x, lim_y) -> None:
    """Pairwise panel: KDE contours, a 2-D histogram or a scatter of ``(x, y)``."""
    if kind == "scatter":
        ax.scatter(x, y, s=5, color=color, alpha=min(1.0, 0.1 + 200.0 / max(len(x), 1)), linewidths=0)
    elif kind == "hist":
        cmap = LinearSegmentedColormap.from_list("af", [to_rgba(color, 0.0), to_rgba(color, 1.0)])
        ax.hist2d(x, y, bins=40, range=[lim_x, lim_y], cmap=cmap, cmin=1)
    else:
        draw_kde_2d(ax, x, y, color, lim_x, lim_y)


def mark_points(axes: np.ndarray, points: np.ndarray, colors: Sequence) -> None:
    """Mark true values: vertical lines on the diagonal, crosses off the diagonal."""
    num_dims = axes.shape[0]
    for point, color in zip(points, colors):
        for i in range(num_dims):
            for j in range(num_dims):
                ax = axes[i, j]
                if ax is None:
                    continue
                if i == j:
                    ax.axvline(point[j], color=color, linewidth=1.6)
                else:
                    ax.plot(point[j], point[i], marker="X", markersize=9, color=color,
                            markeredgecolor="white", markeredgewidth=0.8, linestyle="none", zorder=5)


def label_grid(axes: np.ndarray, labels: Sequence[str], lower: bool, upper: bool) -> None:
    """Axis labels and limits-only styling of a pair grid.

    With a lower triangle, labels go on the bottom row and left column (as seaborn's PairGrid);
    without one, each diagonal panel carries its own x label.
    """
    num_dims = axes.shape[0]
    for i in range(num_dims):
        for j in range(num_dims):
            ax = axes[i, j]
            if ax is None:
                continue
            style_axis(ax, grid=False)
            ax.tick_params(labelsize=8)
            if i == j:
                ax.set_yticks([])
                ax.spines["left"].set_visible(False)
            if lower:
                if i == num_dims - 1:
                    ax.set_xlabel(labels[j])
                else:  # the bottom row's tick labels serve the whole column
                    ax.tick_params(labelbottom=False)
                if j == 0 and (i > 0 or upper):  # row 0's label belongs to its upper panels
                    ax.set_ylabel(labels[i])
                elif i != j:
                    ax.tick_params(labelleft=False)
            elif i == j:
                ax.set_xlabel(labels[j])
            else:
                ax.tick_params(labelleft=False, labelbottom=False)


def draw_pair_grid(
    sample_sets: Sequence[np.ndarray],
    labels: Sequence[str],
    colors: Sequence,
    *,
    diag: str = "kde",
    upper: str | None = "kde",
    lower: str | None = None,
    limits: np.ndarray | None = None,
    points: np.ndarray | None = None,
    points_colors: Sequence | None = None,
    legend_labels: Sequence[str] | None = None,
    height: float = 2.3,
    fig_size=None,
) -> Figure:
    """Draw every sample set (each ``(n, D)``) into one pair grid and return the figure."""
    if diag not in DIAG_KINDS or upper not in OFFDIAG_KINDS or lower not in OFFDIAG_KINDS:
        raise ArgumentError(
            f"diag must be one of {DIAG_KINDS} and upper/lower one of {OFFDIAG_KINDS}; "
            f"received diag={diag!r}, upper={upper!r}, lower={lower!r}."
        )
    num_dims = sample_sets[0].shape[1]
    limits = default_limits(sample_sets, points) if limits is None else limits
    fig, axes = make_grid(num_dims, lower is not None, upper is not None, height, fig_size)
    for samples, color, name in zip(sample_sets, colors, legend_labels or [None] * len(sample_sets)):
        for i in range(num_dims):
            for j in range(num_dims):
                ax = axes[i, j]
                if ax is None:
                    continue
                if i == j:
                    draw_diag(ax, samples[:, i], diag, color, limits[i], label=name)
                else:
                    kind = upper if i < j else lower
                    draw_offdiag(ax, samples[:, j], samples[:, i], kind, color, limits[j], limits[i])
    for i in range(num_dims):
        for j in range(num_dims):
            if axes[i, j] is not None:
                axes[i, j].set_xlim(limits[j])
                if i != j:
                    axes[i, j].set_ylim(limits[i])
    if points is not None:
        mark_points(axes, points, points_colors)
    label_grid(axes, labels, lower is not None, upper is not None)
    if legend_labels is not None:
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncol=len(names), frameon=False)
    return fig
