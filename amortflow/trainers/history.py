"""The loss history of a trainer: one row per step and one per validation epoch.

Per-step losses arrive in blocks (one block per compiled call of several steps) and are kept
as numpy blocks, so that recording is O(1) per call and a DataFrame is built only on demand.
The training history is also written to an append-only CSV next to the checkpoints: each
checkpoint records how many rows belong to it, so rows written after the last complete
checkpoint (e.g. by a process that was killed) are dropped on resume.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from amortflow.exceptions import CheckpointError

INDEX_COLUMNS = ("Epoch", "Iteration")


class LossHistory:
    """Training and validation losses of every run of a trainer.

    Parameters
    ----------
    loss_names : list of str, optional
        Names of the loss columns; the first is always ``"Loss"`` (the optimized objective).
        Set on the first recorded block when not given.
    """

    def __init__(self, loss_names: list[str] | None = None):
        self.loss_names = list(loss_names) if loss_names else None
        self._blocks: list[np.ndarray] = []  # each (n, 2 + k): epoch, iteration, losses
        self._n_rows = 0
        self._val_rows: list[list[float]] = []  # epoch, losses
        self._epoch_sum = 0.0
        self._epoch_count = 0
        self._frame_cache: pd.DataFrame | None = None

    # --- recording ---------------------------------------------------------------------
    def add_steps(self, epoch: int, first_iteration: int, losses: np.ndarray) -> None:
        """Record ``len(losses)`` steps of ``epoch`` starting at ``first_iteration`` (1-based).

        ``losses`` has shape ``(n, k)``: the objective first, then any extra components.
        """
        losses = np.asarray(losses, dtype=np.float64).reshape(len(losses), -1)
        if self.loss_names is None:
            self.loss_names = ["Loss"] + [f"Loss.{i}" for i in range(1, losses.shape[1])]
        n = losses.shape[0]
        index = np.column_stack([np.full(n, epoch), np.arange(first_iteration, first_iteration + n)])
        self._blocks.append(np.column_stack([index, losses]))
        self._n_rows += n
        finite = np.isfinite(losses[:, 0])
        self._epoch_sum += float(losses[finite, 0].sum())
        self._epoch_count += int(finite.sum())
        self._frame_cache = None

    def add_validation(self, epoch: int, losses: np.ndarray) -> None:
        """Record the validation losses (objective first) after ``epoch``."""
        self._val_rows.append([float(epoch)] + [float(v) for v in np.ravel(losses)])

    def start_epoch(self) -> None:
        """Reset the running average shown by the progress bar."""
        self._epoch_sum, self._epoch_count = 0.0, 0

    @property
    def running_mean(self) -> float:
        """Mean finite training loss of the current epoch so far (NaN before its first step)."""
        return self._epoch_sum / self._epoch_count if self._epoch_count else math.nan

    @property
    def num_steps(self) -> int:
        """Number of recorded training steps."""
        return self._n_rows

    @property
    def last_validation(self) -> float | None:
        """The last validation loss (objective), or None."""
        return self._val_rows[-1][1] if self._val_rows else None

    # --- views -------------------------------------------------------------------------
    def _matrix(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks, axis=0)]
        width = 2 + len(self.loss_names or ["Loss"])
        return self._blocks[0] if self._blocks else np.zeros((0, width))

    def train_frame(self) -> pd.DataFrame:
        """One row per step: ``Epoch``, ``Iteration`` (1-based within the epoch), ``Loss``, extras."""
        if self._frame_cache is None:
            frame = pd.DataFrame(self._matrix(), columns=[*INDEX_COLUMNS, *(self.loss_names or ["Loss"])])
            self._frame_cache = frame.astype({name: "int64" for name in INDEX_COLUMNS})
        return self._frame_cache.copy()

    def val_frame(self) -> pd.DataFrame:
        """One row per validated epoch: ``Epoch``, ``Loss``, extras."""
        columns = ["Epoch", *(self.loss_names or ["Loss"])]
        frame = pd.DataFrame(self._val_rows, columns=columns) if self._val_rows else pd.DataFrame(columns=columns)
        return frame.astype({"Epoch": "int64"})

    def as_dict(self) -> dict[str, pd.DataFrame]:
        """``{"train_losses": DataFrame, "val_losses": DataFrame}``."""
        return {"train_losses": self.train_frame(), "val_losses": self.val_frame()}

    # --- persistence -------------------------------------------------------------------
    def append_csv(self, path: Path, rows_on_disk: int) -> int:
        """Append the rows after ``rows_on_disk`` to the CSV at ``path`` (fsynced); return the row count."""
        new = self._rows_after(rows_on_disk)
        header = ",".join([*INDEX_COLUMNS, *(self.loss_names or ["Loss"])])
        with open(path, "a" if rows_on_disk else "w", encoding="utf-8") as handle:
            if not rows_on_disk:
                handle.write(header + "\n")
            if len(new):
                np.savetxt(handle, new, delimiter=",", fmt=["%d", "%d"] + ["%.9g"] * (new.shape[1] - 2))
            handle.flush()
            os.fsync(handle.fileno())
        return self._n_rows

    def _rows_after(self, start: int) -> np.ndarray:
        """Rows ``start:`` without concatenating the older blocks (O(new rows))."""
        tail, count = [], self._n_rows
        for block in reversed(self._blocks):
            if count <= start:
                break
            tail.append(block[max(0, start - (count - len(block))) :])
            count -= len(block)
        width = 2 + len(self.loss_names or ["Loss"])
        return np.concatenate(tail[::-1], axis=0) if tail else np.zeros((0, width))

    def state(self) -> dict:
        """JSON-able part kept in the checkpoint's state file (validation rows, names)."""
        return {"loss_names": self.loss_names, "val_rows": self._val_rows, "train_rows": self._n_rows}

    @classmethod
    def restore(cls, state: dict, csv_path: Path) -> LossHistory:
        """Rebuild a history from a checkpoint state and the training CSV; truncate the CSV to it.

        Raises
        ------
        CheckpointError
            If the CSV holds fewer rows than the checkpoint expects or cannot be parsed.
        """
        history = cls(state.get("loss_names"))
        history._val_rows = [list(map(float, row)) for row in state.get("val_rows", [])]
        expected = int(state.get("train_rows", 0))
        if expected == 0:
            return history
        rows = _read_csv_rows(csv_path, expected)
        history._blocks = [rows]
        history._n_rows = expected
        _truncate_csv(csv_path, expected)
        return history


def _read_csv_rows(path: Path, expected: int) -> np.ndarray:
    if not path.is_file():
        raise CheckpointError(f"The checkpoint expects {expected} training-history rows in {path}, but the file is missing.")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    body = lines[1 : expected + 1]
    if len(body) < expected or not all(body):
        raise CheckpointError(
            f"{path} holds {sum(1 for line in lines[1:] if line)} complete rows, but the checkpoint expects "
            f"{expected}; the history does not belong to this checkpoint."
        )
    try:
        return np.loadtxt(body, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise CheckpointError(f"{path} cannot be parsed as a loss history ({exc}).") from exc


def _truncate_csv(path: Path, rows: int) -> None:
    """Drop rows written after the checkpoint (atomically: temp file + os.replace)."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    if len(lines) == rows + 2 and lines[-1] == "":
        return  # exactly the header, the rows and a final newline
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines[: rows + 1]) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
