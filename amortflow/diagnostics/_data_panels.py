"""Simulated vs observed data panels, shared by the prior and posterior predictive plots."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from amortflow._checks import check_choice
from amortflow.diagnostics._inputs import to_numpy
from amortflow.diagnostics._plot_utils import (
    MAIN_COLOR,
    TRUTH_COLOR,
    outer_labels,
    panel_grid,
    param_labels,
    style_axis,
)
from amortflow.exceptions import ShapeError

logger = logging.getLogger("amortflow")

KINDS = ("auto", "series", "marginals")
MAX_PANELS = 16
#: Central intervals drawn as nested bands in "series" plots.
BAND_LEVELS = (0.9, 0.5)
NUM_EXAMPLES = 3


def _as_channels(data: np.ndarray, kind: str, name: str) -> np.ndarray:
    """Reshape ``(B, ...)`` data to ``(B, T, C)``: ``(B,) -> (B, 1, 1)``, ``(B, T) -> (B, T, 1)``."""
    if data.ndim == 1:
        return data[:, None, None]
    if data.ndim == 2:
        return data[:, :, None]
    if data.ndim == 3:
        return data
    if kind == "series":
        raise ShapeError(f"kind='series' needs `{name}` of shape (B, T) or (B, T, C); received {data.shape}.")
    return data.reshape(data.shape[0], -1, data.shape[-1])


def resolve_kind(kind: str, sims: np.ndarray, summary_fun: Callable | None) -> str:
    """``"summaries"`` when a summary function is given; ``"auto"`` is "series" for (B, T) data, else "marginals"."""
    check_choice("kind", kind, KINDS)
    if summary_fun is not None:
        return "summaries"
    if kind == "auto":
        return "series" if sims.ndim == 2 else "marginals"
    return kind


def _series_panel(ax: Axes, sims: np.ndarray, observed: np.ndarray | None, label: str) -> None:
    steps = np.arange(sims.shape[1])
    for level, alpha in zip(BAND_LEVELS, (0.2, 0.35)):
        low, high = np.quantile(sims, [(1 - level) / 2, (1 + level) / 2], axis=0)
        ax.fill_between(steps, low, high, color=MAIN_COLOR, alpha=alpha, linewidth=0, label=f"{level:.0%} interval")
    ax.plot(steps, np.median(sims, axis=0), color=MAIN_COLOR, linewidth=1.8, label="Median")
    for k in range(min(NUM_EXAMPLES, sims.shape[0])):
        ax.plot(steps, sims[k], color=MAIN_COLOR, linewidth=0.6, alpha=0.6, label="Examples" if k == 0 else None)
    if observed is not None:
        ax.plot(steps, observed, color=TRUTH_COLOR, linewidth=1.8, label="Observed")
    ax.set_title(label)


def _observed_density(ax: Axes, obs_values: np.ndarray, grid_range: tuple[float, float]) -> None:
    """Observed values as a rug and (with >= 5 distinct values) a KDE line."""
    ax.plot(obs_values, np.zeros_like(obs_values), "|", color=TRUTH_COLOR, markersize=12, markeredgewidth=1.2,
            transform=ax.get_xaxis_transform(), clip_on=False)
    if np.unique(obs_values).size >= 5:
        grid = np.linspace(*grid_range, 300)
        ax.plot(grid, stats.gaussian_kde(obs_values)(grid), color=TRUTH_COLOR, linewidth=2.0, label="Observed")


def _hist_panel(ax: Axes, sim_values: np.ndarray, obs_values: np.ndarray | None, label: str, vline: bool) -> None:
    finite = sim_values[np.isfinite(sim_values)]
    obs = None if obs_values is None else obs_values[np.isfinite(obs_values)]
    values = finite if obs is None else np.concatenate([finite, obs])
    bins = int(np.clip(np.sqrt(finite.size), 10, 40))  # fewer bins for few simulations: less noise
    edges = np.histogram_bin_edges(values, bins=bins)
    ax.hist(finite, bins=edges, density=True, color=MAIN_COLOR, alpha=0.55, label="Simulated")
    if obs is not None and vline:
        for k, v in enumerate(obs):
            ax.axvline(v, color=TRUTH_COLOR, linewidth=2.0, label="Observed" if k == 0 else None)
    elif obs is not None and obs.size:
        _observed_density(ax, obs, (edges[0], edges[-1]))
    ax.set_title(label)


def data_panels(
    sims: Any,
    observed: Any,
    kind: str,
    summary_fun: Callable | None,
    data_names: Sequence[str] | None,
    fig_size: tuple[float, float] | None,
    title: str,
) -> Figure:
    """One panel per data channel (or summary statistic): simulated spread with the observed data on top."""
    sims = to_numpy(sims, "simulated_data")
    obs = None if observed is None else to_numpy(observed, "observed_data")
    if obs is not None and obs.ndim == sims.ndim and obs.shape[0] == 1:
        obs = obs[0]
    if obs is not None and obs.shape != sims.shape[1:]:
        raise ShapeError(
            f"`observed_data` must have the shape of one simulated data set {sims.shape[1:]}; received {obs.shape}."
        )
    kind = resolve_kind(kind, sims, summary_fun)
    if kind == "summaries":
        sims2 = np.asarray(summary_fun(sims), dtype=np.float64).reshape(sims.shape[0], -1)
        obs2 = None if obs is None else np.asarray(summary_fun(obs[None]), dtype=np.float64).reshape(1, -1)
        channels, xlabel, ylabel = sims2.shape[1], "Summary statistic", "Density"
    else:
        sims3 = _as_channels(sims, kind, "simulated_data")
        obs3 = None if obs is None else _as_channels(obs[None], kind, "observed_data")[0]
        channels = sims3.shape[2]
        xlabel, ylabel = ("Time step / index", "Value") if kind == "series" else ("Value", "Density")
    if channels > MAX_PANELS:
        logger.warning("%s: showing the first %d of %d data channels.", title, MAX_PANELS, channels)
        channels = MAX_PANELS
    if data_names is not None:
        names = param_labels(list(data_names)[:channels], channels, "data_names")
    elif channels == 1:
        names = [""]  # the figure title says enough
    else:
        names = [f"Statistic {c + 1}" if kind == "summaries" else f"Channel {c + 1}" for c in range(channels)]
    fig, axes = panel_grid(channels, fig_size=fig_size)
    for c, ax in enumerate(axes):
        if kind == "summaries":
            _hist_panel(ax, sims2[:, c], None if obs2 is None else obs2[:, c], names[c], vline=True)
        elif kind == "series":
            _series_panel(ax, sims3[:, :, c], None if obs3 is None else obs3[:, c], names[c])
        else:
            _hist_panel(ax, sims3[:, :, c].ravel(), None if obs3 is None else obs3[:, c], names[c], vline=False)
        style_axis(ax)
    outer_labels(axes, xlabel, ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(handles, labels, fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig
