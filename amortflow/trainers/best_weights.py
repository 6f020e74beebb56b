"""The weights of the lowest-validation-loss epoch, kept for ``EarlyStopper(restore_best_weights=True)``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amortflow.exceptions import CheckpointError


@dataclass
class BestWeights:
    """A copy of an amortizer's weights (host memory) with the epoch and validation loss they had.

    Parameters
    ----------
    epoch : int
        The trainer's epoch count after which the weights were copied.
    loss : float
        Validation loss of that epoch.
    weights : list of np.ndarray
        ``amortizer.get_weights()`` at that epoch.
    """

    epoch: int
    loss: float
    weights: list[np.ndarray]

    @classmethod
    def capture(cls, amortizer, epoch: int, loss: float) -> BestWeights:
        """Copy ``amortizer``'s current weights."""
        return cls(int(epoch), float(loss), [np.array(w, copy=True) for w in amortizer.get_weights()])

    def restore_into(self, amortizer) -> None:
        """Put the copied weights back into ``amortizer`` (same architecture)."""
        shapes = [tuple(w.shape) for w in amortizer.weights]
        if shapes != [w.shape for w in self.weights]:
            raise CheckpointError(
                f"The best-epoch weights (epoch {self.epoch}) have other shapes than this amortizer's weights; "
                "they were copied from a different network configuration."
            )
        amortizer.set_weights(self.weights)

    def save(self, path: str | os.PathLike) -> None:
        """Write to ``path`` (``.npz``) via a temporary file, so a killed save leaves no half file."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        arrays = {f"w{i:05d}": w for i, w in enumerate(self.weights)}
        np.savez(tmp, epoch=np.int64(self.epoch), loss=np.float64(self.loss), **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BestWeights:
        """Read a file written by :meth:`save`; a damaged file raises :class:`CheckpointError`."""
        try:
            with np.load(path) as data:
                names = sorted(name for name in data.files if name.startswith("w"))
                return cls(int(data["epoch"]), float(data["loss"]), [data[name] for name in names])
        except Exception as exc:  # noqa: BLE001 - zipfile, zlib, EOF, KeyError, ... all mean a damaged file
            raise CheckpointError(f"Best-weights file {path} is corrupt ({type(exc).__name__}: {exc}).") from exc
