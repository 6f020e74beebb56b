"""Model comparison diagnostics: calibration (reliability) curves and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from amortflow.diagnostics._inputs import check_model_arrays, model_indices
from amortflow.diagnostics._plot_utils import (
    BAND_COLOR,
    MAIN_COLOR,
    add_panel_text,
    finish,
    outer_labels,
    panel_grid,
    param_labels,
    style_axis,
)
from amortflow.diagnostics.metrics.calibration import model_calibration_curves
from amortflow.exceptions import ShapeError


def _model_labels(model_names: Sequence[str] | None, num_models: int) -> list[str]:
    if model_names is None:
        return [rf"$\mathcal{{M}}_{{{m}}}$" for m in range(1, num_models + 1)]
    return param_labels(model_names, num_models, "model_names")


def plot_calibration_curves(
    true_models: Any,
    pred_models: Any,
    model_names: Sequence[str] | None = None,
    num_bins: int = 10,
    *,
    color: str = MAIN_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Reliability diagram of each model's predicted probability, with its expected calibration error.

    A dot at ``(p, f)`` says: of the data sets given probability about ``p`` for this model, a
    fraction ``f`` truly came from it. Calibrated probabilities lie on the diagonal. Dot
    size grows with the number of data sets in the bin.

    Parameters
    ----------
    true_models : array-like, shape (n,) model indices or (n, M) one-hot
    pred_models : array-like, shape (n, M)
        Predicted model probabilities.
    model_names : sequence of str, optional
        Default ``$\\mathcal{M}_{1}$, ...``.
    num_bins : int, default 10
        Equal-width probability bins.
    color, fig_size, save_path :
        Curve colour, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    true, probs = check_model_arrays(true_models, pred_models)
    curves = model_calibration_curves(true, probs, num_bins)
    labels = _model_labels(model_names, probs.shape[1])
    fig, axes = panel_grid(len(curves), fig_size=fig_size, panel_size=(3.6, 3.6))
    for curve, label, ax in zip(curves, labels, axes):
        ax.plot([0, 1], [0, 1], color=BAND_COLOR, linestyle="--", linewidth=1.2)
        ax.plot(curve.prob_pred, curve.prob_true, color=color, linewidth=1.6)
        sizes = 15 + 85 * curve.counts / curve.counts.max()
        ax.scatter(curve.prob_pred, curve.prob_true, s=sizes, color=color, zorder=3, linewidths=0)
        ece = np.sum(curve.counts * np.abs(curve.prob_true - curve.prob_pred)) / np.sum(curve.counts)
        add_panel_text(ax, f"ECE = {ece:.3f}")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_title(label)
        style_axis(ax)
    outer_labels(axes, "Predicted probability", "True probability")
    return finish(fig, save_path)


def plot_confusion_matrix(
    true_models: Any,
    pred_models: Any,
    model_names: Sequence[str] | None = None,
    normalize: bool = True,
    *,
    cmap: str = "Blues",
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Confusion matrix of true vs predicted (most probable) model.

    Parameters
    ----------
    true_models : array-like, shape (n,) indices or (n, M) one-hot
    pred_models : array-like, shape (n,) indices or (n, M) probabilities (argmax is the prediction)
    model_names : sequence of str, optional
    normalize : bool, default True
        Show each row as fractions of that true model's data sets (rows sum to one).
    cmap, fig_size, save_path :
        Colour map, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    true, pred = model_indices(true_models, "true_models"), model_indices(pred_models, "pred_models")
    if true.shape != pred.shape:
        raise ShapeError(f"`true_models` and `pred_models` describe {true.shape[0]} and {pred.shape[0]} data sets.")
    num_models = int(max(true.max(), pred.max()) + 1)
    for arr in (true_models, pred_models):
        if np.ndim(arr) == 2:
            num_models = max(num_models, np.shape(arr)[1])
    matrix = np.zeros((num_models, num_models))
    np.add.at(matrix, (true, pred), 1)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    labels = _model_labels(model_names, num_models)
    size = fig_size or (1.2 * num_models + 2.5, 1.2 * num_models + 1.8)
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    image = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=1 if normalize else matrix.max())
    fig.colorbar(image, ax=ax, shrink=0.8, label="Fraction of true model" if normalize else "Count")
    threshold = (1 if normalize else matrix.max()) / 2
    for i in range(num_models):
        for j in range(num_models):
            text = f"{matrix[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
            ax.text(j, i, text, ha="center", va="center", color="white" if matrix[i, j] > threshold else "black")
    ax.set_xticks(range(num_models), labels)
    ax.set_yticks(range(num_models), labels)
    ax.set_xlabel("Predicted model")
    ax.set_ylabel("True model")
    ax.set_title("Confusion matrix")
    return finish(fig, save_path)
