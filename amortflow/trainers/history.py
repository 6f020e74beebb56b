"""The loss history of a trainer: one row per step and one per validation epoch.

Per-step losses arrive in blocks (one block per compiled call of several steps) and are kept
as numpy blocks, so that recording is O(1) per call and a DataFrame is built only on demand.
The training history is also written to an append-only CSV next to the checkpoints: each
checkpoint records how many rows belong to it, the CSV's length in bytes at that point and
the CRC32 of those bytes, so a resume checks that the rows are the ones saved and drops rows
written after the checkpoint (e.g. by a process that was killed).

A step whose update was skipped (non-finite loss or gradient) has ``Skipped`` = True.
"""

from __future__ import annotations

import io
import logging
import math
import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from amortflow.exceptions import CheckpointError

logger = logging.getLogger("amortflow")

INDEX_COLUMNS = ("Epoch", "Iteration")
SKIPPED_COLUMN = "Skipped"


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
        self._blocks: list[np.ndarray] = []  # each (n, 3 + k): epoch, iteration, losses, skipped
        self._n_rows = 0
        self._val_rows: list[list[float]] = []  # epoch, losses
        self._epoch_sum = 0.0
        self._epoch_count = 0
        self._frame_cache: pd.DataFrame | None = None
        self.csv = {"rows": 0, "bytes": 0, "crc32": 0}  # what the CSV on disk holds

    # --- recording ---------------------------------------------------------------------
    def add_steps(self, epoch: int, first_iteration: int, losses: np.ndarray, skipped: np.ndarray | None = None):
        """Record ``len(losses)`` steps of ``epoch`` starting at ``first_iteration`` (1-based).

        ``losses`` has shape ``(n, k)``: the objective first, then any extra components;
        ``skipped`` (n,) marks the steps whose update was not applied (default: none).
        """
        losses = np.asarray(losses, dtype=np.float64).reshape(len(losses), -1)
        if self.loss_names is None:
            self.loss_names = ["Loss"] + [f"Loss.{i}" for i in range(1, losses.shape[1])]
        n = losses.shape[0]
        skipped = np.zeros(n, dtype=bool) if skipped is None else np.asarray(skipped, dtype=bool).reshape(n)
        index = np.column_stack([np.full(n, epoch), np.arange(first_iteration, first_iteration + n)])
        self._blocks.append(np.column_stack([index, losses, skipped]))
        self._n_rows += n
        finite = np.isfinite(losses[:, 0]) & ~skipped
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
        """Mean training loss of the applied steps of the current epoch so far (NaN before the first)."""
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
    @property
    def _width(self) -> int:
        return 3 + len(self.loss_names or ["Loss"])

    @property
    def _columns(self) -> list[str]:
        return [*INDEX_COLUMNS, *(self.loss_names or ["Loss"]), SKIPPED_COLUMN]

    def _matrix(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks, axis=0)]
        return self._blocks[0] if self._blocks else np.zeros((0, self._width))

    def train_frame(self) -> pd.DataFrame:
        """One row per step: ``Epoch``, ``Iteration`` (1-based within the epoch), ``Loss``, extras, ``Skipped``."""
        if self._frame_cache is None:
            frame = pd.DataFrame(self._matrix(), columns=self._columns)
            self._frame_cache = frame.astype({**{name: "int64" for name in INDEX_COLUMNS}, SKIPPED_COLUMN: bool})
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
    def append_csv(self, path: Path) -> int:
        """Append the rows not yet on disk to the CSV at ``path`` (fsynced); return the row count.

        The first write (no rows on disk) starts the file with its header.
        """
        on_disk = self.csv["rows"]
        new = self._rows_after(on_disk)
        text = io.StringIO()
        if not on_disk:
            text.write(",".join(self._columns) + "\n")
        if len(new):
            np.savetxt(text, new, delimiter=",", fmt=["%d", "%d"] + ["%.9g"] * (new.shape[1] - 3) + ["%d"])
        data = text.getvalue().encode("utf-8")
        with open(path, "ab" if on_disk else "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        crc = zlib.crc32(data, self.csv["crc32"] if on_disk else 0)
        self.csv = {"rows": self._n_rows, "bytes": (self.csv["bytes"] if on_disk else 0) + len(data), "crc32": crc}
        return self._n_rows

    def _rows_after(self, start: int) -> np.ndarray:
        """Rows ``start:`` without concatenating the older blocks (O(new rows))."""
        tail, count = [], self._n_rows
        for block in reversed(self._blocks):
            if count <= start:
                break
            tail.append(block[max(0, start - (count - len(block))) :])
            count -= len(block)
        return np.concatenate(tail[::-1], axis=0) if tail else np.zeros((0, self._width))

    def state(self) -> dict:
        """JSON-able part kept in the checkpoint's state file (validation rows, names, the CSV's extent)."""
        return {"loss_names": self.loss_names, "val_rows": self._val_rows, "train_rows": self._n_rows,
                "csv": dict(self.csv)}  # fmt: skip

    @classmethod
    def restore(cls, state: dict, csv_path: Path) -> LossHistory:
        """Rebuild a history from a checkpoint state and the training CSV, checking the CSV's rows.

        Call :meth:`truncate_csv` once the checkpoint is chosen, to drop rows written after it.

        Raises
        ------
        CheckpointError
            If the CSV lacks rows of the checkpoint, its rows differ from the saved ones (CRC32),
            or they cannot be parsed.
        """
        history = cls(state.get("loss_names"))
        history._val_rows = [list(map(float, row)) for row in state.get("val_rows", [])]
        expected = int(state.get("train_rows", 0))
        if expected == 0:
            return history
        extent = state.get("csv")
        if not csv_path.is_file():
            # the user moved a damaged file aside (as the CheckpointError advises): resume without it
            logger.warning("%s is missing: the loss history of the %d steps before the checkpoint is lost; their "
                           "rows have Epoch 0, Iteration 0 and NaN losses.", csv_path, expected)  # fmt: skip
            rows = np.zeros((expected, history._width))
            rows[:, 2:-1] = np.nan
        elif extent is not None:
            rows = _read_checked_rows(csv_path, expected, extent)
            history.csv = dict(extent)
        else:  # checkpoints written before 2026-12-07: rows counted, not checksummed
            rows = _read_csv_rows(csv_path, expected)
        if rows.shape[1] == history._width - 1:  # CSVs written before the Skipped column
            rows = np.column_stack([rows, ~np.isfinite(rows[:, 2])])
        if rows.shape[1] != history._width:
            raise CheckpointError(f"{csv_path} has {rows.shape[1]} columns, but the checkpoint's history has "
                                  f"{history._width} ({history._columns}).")  # fmt: skip
        history._blocks = [rows]
        history._n_rows = expected
        return history

    def truncate_csv(self, path: Path) -> None:
        """Make the CSV at ``path`` hold exactly this history's rows (atomically: temp file + ``os.replace``)."""
        if self.csv["bytes"] and self.csv["rows"] == self._n_rows and path.is_file():
            if path.stat().st_size != self.csv["bytes"]:
                with open(path, "r+b") as handle:  # the checked prefix stays; later rows go
                    handle.truncate(self.csv["bytes"])
                    handle.flush()
                    os.fsync(handle.fileno())
            return
        self.csv = {"rows": 0, "bytes": 0, "crc32": 0}  # rewrite in the current format, with a checksum
        tmp = path.with_name(f".{path.name}.tmp")
        self.append_csv(tmp)
        os.replace(tmp, path)


def _read_checked_rows(path: Path, expected: int, extent: dict) -> np.ndarray:
    """The ``expected`` rows of the CSV's first ``extent["bytes"]`` bytes, if their CRC32 matches."""
    if not path.is_file():
        raise CheckpointError(f"The checkpoint expects {expected} training-history rows in {path}, but the file is "
                              "missing.")  # fmt: skip
    with open(path, "rb") as handle:
        data = handle.read(int(extent["bytes"]))
    if len(data) < int(extent["bytes"]) or zlib.crc32(data) != int(extent["crc32"]):
        lines = data.count(b"\n") - 1
        raise CheckpointError(
            f"{path} does not hold the {expected} training-history rows of this checkpoint: its first "
            f"{extent['bytes']} bytes ({len(data)} found, about {max(lines, 0)} rows) differ from the ones saved "
            "(CRC32); the file was cut short or overwritten."
        )
    body = data.decode("utf-8").split("\n")[1:-1]
    try:
        return np.loadtxt(body, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise CheckpointError(f"{path} cannot be parsed as a loss history ({exc}).") from exc


def _read_csv_rows(path: Path, expected: int) -> np.ndarray:
    if not path.is_file():
        raise CheckpointError(f"The checkpoint expects {expected} training-history rows in {path}, but the file is missing.")
    with open(path, encoding="utf-8", errors="replace") as handle:
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
