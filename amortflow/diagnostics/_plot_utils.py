"""Helpers shared by the diagnostic plots: labels, figure grids, axis styling and saving."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from amortflow.exceptions import ArgumentError

#: Colours used across the plots (colour-blind safe in pairs).
MAIN_COLOR = "#1f5f8b"  # draws, estimates, ECDFs
TRUTH_COLOR = "#c0392b"  # ground truth, observed data, reference lines
BAND_COLOR = "#9a9a9a"  # confidence bands
SECOND_COLOR = "#e08e0b"  # second data set (e.g. validation loss, prior)
PALETTE = (MAIN_COLOR, SECOND_COLOR, "#2e8b57", "#7b4f9e", TRUTH_COLOR, "#555555")


def param_labels(param_names: Sequence[str] | None, num_params: int, name: str = "param_names") -> list[str]:
    """Return ``num_params`` axis labels: ``param_names`` or ``$\\theta_{1}$, $\\theta_{2}$, ...``."""
    if param_names is None:
        return [rf"$\theta_{{{i}}}$" for i in range(1, num_params + 1)]
    names = [str(n) for n in param_names]
    if len(names) != num_params:
        raise ArgumentError(f"`{name}` has {len(names)} entries; expected {num_params} (one per dimension).")
    return names


def grid_shape(num_panels: int, n_rows: int | None = None, n_cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``num_panels`` panels: at most 4 columns unless told otherwise."""
    if n_rows is None and n_cols is None:
        n_cols = min(num_panels, 4)
    if n_cols is None:
        n_cols = math.ceil(num_panels / n_rows)
    if n_rows is None:
        n_rows = math.ceil(num_panels / n_cols)
    if n_rows * n_cols < num_panels:
        raise ArgumentError(f"a {n_rows} x {n_cols} grid cannot hold {num_panels} panels.")
    return n_rows, n_cols


def panel_grid(
    num_panels: int,
    fig_size: tuple[float, float] | None = None,
    n_rows: int | None = None,
    n_cols: int | None = None,
    panel_size: tuple[float, float] = (4.0, 3.4),
) -> tuple[Figure, list[Axes]]:
    """A figure with ``num_panels`` axes in a grid; unused grid cells are removed."""
    rows, cols = grid_shape(num_panels, n_rows, n_cols)
    if fig_size is None:
        fig_size = (panel_size[0] * cols, panel_size[1] * rows)
    fig, axes = plt.subplots(rows, cols, figsize=fig_size, layout="constrained", squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[num_panels:]:
        ax.remove()
    return fig, flat[:num_panels]


def outer_labels(axes: Sequence[Axes], xlabel: str | None, ylabel: str | None) -> None:
    """Put ``xlabel`` under the lowest panel of each column and ``ylabel`` left of each row's first panel."""
    lowest: dict[int, Axes] = {}
    for ax in axes:
        spec = ax.get_subplotspec()
        col, row = spec.colspan.start, spec.rowspan.start
        if ylabel is not None and col == 0:
            ax.set_ylabel(ylabel)
        if col not in lowest or row > lowest[col].get_subplotspec().rowspan.start:
            lowest[col] = ax
    if xlabel is not None:
        for ax in lowest.values():
            ax.set_xlabel(xlabel)


def style_axis(ax: Axes, grid: bool = True) -> None:
    """Seaborn's "despined" look: no top/right spines, a faint grid behind the data."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    if grid:
        ax.grid(alpha=0.25, linewidth=0.6)
        ax.set_axisbelow(True)


def add_panel_text(ax: Axes, text: str, loc: str = "upper left") -> None:
    """Write ``text`` in a corner of ``ax`` (axes coordinates), on a light box."""
    x, ha = (0.04, "left") if "left" in loc else (0.96, "right")
    y, va = (0.96, "top") if "upper" in loc else (0.04, "bottom")
    ax.text(
        x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.8", "alpha": 0.85},
    )


def finish(fig: Figure, save_path: str | Path | None = None, dpi: int = 150) -> Figure:
    """Save ``fig`` to ``save_path`` when given (format from the suffix) and return it."""
    if save_path is not None:
        path = Path(save_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def as_list_of_arrays(value) -> list[np.ndarray] | None:
    """``None`` stays ``None``; one array becomes a one-element list."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
