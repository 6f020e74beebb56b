"""Training and validation loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from amortflow.diagnostics._inputs import to_numpy
from amortflow.diagnostics._plot_utils import (
    MAIN_COLOR,
    SECOND_COLOR,
    finish,
    outer_labels,
    panel_grid,
    style_axis,
)
from amortflow.exceptions import ShapeError

#: Bookkeeping columns of a loss history; every other numeric column is a loss.
INDEX_COLUMNS = ("epoch", "iteration", "step", "round", "time", "skipped")


def _as_frame(losses: Any, name: str) -> pd.DataFrame:
    """A loss history as a DataFrame: DataFrames/Series/dicts pass through, arrays get 'Loss' columns."""
    if isinstance(losses, pd.DataFrame):
        return losses.reset_index(drop=True)
    if isinstance(losses, pd.Series):
        return losses.to_frame(name=losses.name or "Loss").reset_index(drop=True)
    if isinstance(losses, dict):
        return pd.DataFrame(losses)
    arr = to_numpy(losses, name)
    if arr.ndim == 1:
        return pd.DataFrame({"Loss": arr})
    if arr.ndim == 2:
        cols = ["Loss"] if arr.shape[1] == 1 else [f"Loss {i + 1}" for i in range(arr.shape[1])]
        return pd.DataFrame(arr, columns=cols)
    raise ShapeError(
        f"`{name}` must be a DataFrame or an array of shape (steps,) or (steps, n_losses); received {arr.shape}."
    )


def _loss_columns(frame: pd.DataFrame) -> list[str]:
    def is_loss(column) -> bool:
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        return numeric and str(column).lower() not in INDEX_COLUMNS

    return [c for c in frame.columns if is_loss(c)]


def _epoch_column(frame: pd.DataFrame) -> str | None:
    return next((c for c in frame.columns if str(c).lower() == "epoch"), None)


def _validation_steps(train: pd.DataFrame, val: pd.DataFrame) -> np.ndarray:
    """Training step (1-based) at which each validation row was computed.

    With an "Epoch" column in both, each validation row sits at the last step of its epoch;
    otherwise the validation rows are spread evenly, the last one at the final step.
    """
    n_train, n_val = len(train), len(val)
    t_epoch, v_epoch = _epoch_column(train), _epoch_column(val)
    if t_epoch is not None:
        epochs = train[t_epoch].to_numpy()
        ends = {e: i + 1 for i, e in enumerate(epochs)}  # last occurrence wins
        if v_epoch is not None and all(e in ends for e in val[v_epoch]):
            return np.array([ends[e] for e in val[v_epoch]], dtype=float)
        unique_ends = np.array(list(ends.values()), dtype=float)
        if len(unique_ends) == n_val:
            return unique_ends
    return np.arange(1, n_val + 1) * n_train / max(n_val, 1)


def _match_columns(train_cols: list, val_cols: list) -> dict:
    """Validation column for each training loss column: same name, else by position."""
    if any(c in val_cols for c in train_cols):
        return {c: c for c in train_cols if c in val_cols}
    if len(train_cols) == len(val_cols):
        return dict(zip(train_cols, val_cols))
    return {}


def plot_losses(
    train_losses: Any,
    val_losses: Any = None,
    moving_average: bool = False,
    ma_window_fraction: float = 0.01,
    *,
    train_color: str = MAIN_COLOR,
    val_color: str = SECOND_COLOR,
    log_scale: bool = False,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Loss per training step, one panel per loss, with validation losses at the ends of epochs.

    Parameters
    ----------
    train_losses : DataFrame, Series, dict or array-like
        One row per training step. Every numeric column except bookkeeping ones ("Epoch",
        "Iteration", "Step", "Round", "Time", "Skipped") is a loss and gets its own panel. Arrays of
        shape (steps,) or (steps, n_losses) work too.
    val_losses : same types, optional
        One row per validation (usually per epoch). Columns are matched to the training losses
        by name (else by position; unmatched ones get their own panel). They are placed at the
        last training step of their "Epoch" when both frames have that column, else evenly.
    moving_average : bool, default False
        Overlay a centred moving average of the training loss (raw curve drawn faintly).
    ma_window_fraction : float, default 0.01
        Window of the moving average as a fraction of all training steps (at least 1 step).
    train_color, val_color : str
    log_scale : bool, default False
        Logarithmic y axis (only sensible for positive losses).
    fig_size, save_path :
        Total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    train = _as_frame(train_losses, "train_losses")
    val = None if val_losses is None else _as_frame(val_losses, "val_losses")
    train_cols = _loss_columns(train)
    if not train_cols:
        raise ShapeError(f"`train_losses` has no numeric loss column; columns are {list(train.columns)}.")
    val_cols = [] if val is None else _loss_columns(val)
    matched = _match_columns(train_cols, val_cols)
    val_only = [c for c in val_cols if c not in matched.values()]
    steps = np.arange(1, len(train) + 1)
    val_steps = None if val is None else _validation_steps(train, val)
    panels = train_cols + val_only
    fig, axes = panel_grid(len(panels), fig_size=fig_size, n_cols=min(len(panels), 3), panel_size=(5.5, 3.4))
    window = max(int(round(ma_window_fraction * len(train))), 1)
    for col, ax in zip(panels, axes):
        if col in train_cols:
            values = train[col].astype(float)
            ax.plot(steps, values, color=train_color, linewidth=1.0, alpha=0.35 if moving_average else 1.0,
                    label="Training")
            if moving_average:
                smooth = values.rolling(window, center=True, min_periods=1).mean()
                ax.plot(steps, smooth, color=train_color, linewidth=2.0,
                        label=f"Training (moving average, {window} steps)")
        val_col = matched.get(col, col if col in val_only else None)
        if val_col is not None:
            ax.plot(val_steps, val[val_col].astype(float), color=val_color, linewidth=2.0, marker="o",
                    markersize=4 if len(val) <= 50 else 0, label="Validation")
        ax.set_title(str(col))
        if log_scale:
            ax.set_yscale("log")
        style_axis(ax)
        ax.legend(fontsize=8, frameon=False)
    outer_labels(axes, "Training step", "Loss")
    return finish(fig, save_path)
