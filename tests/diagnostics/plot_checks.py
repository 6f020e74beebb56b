"""Assertions shared by the plot tests: a figure has the panels, labels and artists it should."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure


def artist_count(ax: Axes) -> int:
    """Lines, collections (scatter, fills, contours), patches (bars) and images drawn on ``ax``."""
    return len(ax.lines) + len(ax.collections) + len(ax.patches) + len(ax.images)


def panels(fig: Figure) -> list[Axes]:
    """The figure's axes without colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def assert_figure(fig: Figure, num_axes: int, titles=None, xlabels=None, ylabels=None) -> list[Axes]:
    """``fig`` is a Figure with ``num_axes`` panels, each with something drawn, and the given labels.

    ``titles`` are compared panel by panel; ``xlabels`` / ``ylabels`` must each appear on some panel.
    """
    assert isinstance(fig, Figure)
    axes = panels(fig)
    assert len(axes) == num_axes, f"{len(axes)} panels, expected {num_axes}"
    for ax in axes:
        assert artist_count(ax) > 0, f"panel {ax.get_title()!r} is empty"
    if titles is not None:
        assert [ax.get_title() for ax in axes] == list(titles)
    for label in xlabels or []:
        assert label in {ax.get_xlabel() for ax in axes}, f"no x label {label!r}"
    for label in ylabels or []:
        assert label in {ax.get_ylabel() for ax in axes}, f"no y label {label!r}"
    fig.canvas.draw()  # layout and rendering must not fail
    return axes


def assert_png(path: Path) -> None:
    """``path`` is a non-trivial PNG file."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
