"""Early stopping on the validation loss."""

from __future__ import annotations

import math

from amortflow.exceptions import ArgumentError


class EarlyStopper:
    """Recommend stopping once the validation loss has stopped improving.

    An epoch *improves* when its validation loss is below ``best`` by more than ``tolerance``
    (an absolute amount, in the loss' own units, e.g. nats for a negative log posterior);
    ``best`` is the loss of the last improving epoch. Training should stop after ``patience`` epochs in a row without improvement.

    Parameters
    ----------
    patience : int, default 5
        Number of epochs in a row without improvement that trigger the stop.
    tolerance : float, default 0.05
        Smallest decrease of the validation loss that counts as an improvement.

    Examples
    --------
    >>> stopper = EarlyStopper(patience=2, tolerance=0.1)
    >>> [stopper.update(loss) for loss in (3.0, 2.0, 1.95, 1.97)]
    [False, False, False, True]
    """

    def __init__(self, patience: int = 5, tolerance: float = 0.05):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ArgumentError(f"EarlyStopper(patience=...) must be an int >= 1, received {patience!r}.")
        if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
            raise ArgumentError(f"EarlyStopper(tolerance=...) must be a number >= 0, received {tolerance!r}.")
        self.patience = patience
        self.tolerance = float(tolerance)
        self.best = math.inf
        self.epochs_without_improvement = 0

    def update(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; return True when training should stop.

        A non-finite loss never counts as an improvement.
        """
        val_loss = float(val_loss)
        if math.isfinite(val_loss) and val_loss < self.best - self.tolerance:
            self.best = val_loss
            self.epochs_without_improvement = 0
        else:
            # ``best`` stays at the last significant improvement, so that several small
            # decreases which add up to more than ``tolerance`` still count as one.
            self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= self.patience

    def get_state(self) -> dict:
        """JSON-able state (saved in checkpoints so that a resumed run keeps counting)."""
        return {
            "patience": self.patience,
            "tolerance": self.tolerance,
            "best": None if not math.isfinite(self.best) else self.best,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    @classmethod
    def from_state(cls, state: dict) -> EarlyStopper:
        """Rebuild a stopper from :meth:`get_state`."""
        stopper = cls(patience=int(state["patience"]), tolerance=float(state["tolerance"]))
        stopper.best = math.inf if state.get("best") is None else float(state["best"])
        stopper.epochs_without_improvement = int(state["epochs_without_improvement"])
        return stopper

    def __repr__(self) -> str:
        return f"EarlyStopper(patience={self.patience}, tolerance={self.tolerance})"
