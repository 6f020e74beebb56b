"""Early stopping on the validation loss."""

from __future__ import annotations

import math

from amortflow.defaults import DEFAULT_EARLY_STOPPING
from amortflow.exceptions import ArgumentError


class EarlyStopper:
    """Recommend stopping once the validation loss has stopped improving.

    An epoch *improves* when its validation loss is below ``best`` by more than ``tolerance``
    (an absolute amount, in the loss' own units, e.g. nats for a negative log posterior);
    ``best`` is the loss of the last improving epoch. Training should stop after ``patience`` epochs in a row without improvement.

    With ``restore_best_weights=True`` the trainer keeps a copy of the weights of the epoch with
    the lowest validation loss seen (:attr:`lowest`, tolerance aside) and puts them back when the
    run ends, by this stop or after its last epoch, like Keras' ``EarlyStopping(restore_best_weights=True)``
    (which restores only on a stop). The copy is saved with each checkpoint, so a resumed run
    can still restore it.

    The defaults are sbi's rule for NPE (20 epochs without a new lowest validation loss, then
    the weights of the lowest): BayesFlow 1's ``patience=5, tolerance=0.05`` stopped offline
    training after 8-32 epochs on the sbibm tasks at 10^4 simulations, and the same code with
    these defaults moved C2ST of gaussian_mixture from 0.782 to 0.590 and of two_moons from 0.717
    to 0.644 (issue 20's measurement; see docs/concepts.md, "Defaults").

    Parameters
    ----------
    patience : int, default 20
        Number of epochs in a row without improvement that trigger the stop.
    tolerance : float, default 0.0
        Smallest decrease of the validation loss that counts as an improvement.
    restore_best_weights : bool, default True
        Restore the weights of the lowest-validation-loss epoch at the end of the run.

    Examples
    --------
    >>> stopper = EarlyStopper(patience=2, tolerance=0.1)
    >>> [stopper.update(loss) for loss in (3.0, 2.0, 1.95, 1.97)]
    [False, False, False, True]
    """

    def __init__(self, patience: int = DEFAULT_EARLY_STOPPING["patience"],
                 tolerance: float = DEFAULT_EARLY_STOPPING["tolerance"],
                 restore_best_weights: bool = DEFAULT_EARLY_STOPPING["restore_best_weights"]):  # fmt: skip
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ArgumentError(f"EarlyStopper(patience=...) must be an int >= 1, received {patience!r}.")
        if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
            raise ArgumentError(f"EarlyStopper(tolerance=...) must be a number >= 0, received {tolerance!r}.")
        if not isinstance(restore_best_weights, bool):
            raise ArgumentError(
                f"EarlyStopper(restore_best_weights=...) must be True or False, received {restore_best_weights!r}."
            )
        self.patience = patience
        self.tolerance = float(tolerance)
        self.restore_best_weights = restore_best_weights
        self.best = math.inf
        self.epochs_without_improvement = 0
        self.lowest = math.inf  # lowest finite validation loss seen, without the tolerance
        self.is_lowest = False  # whether the last update set a new ``lowest``

    def update(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; return True when training should stop.

        A non-finite loss never counts as an improvement.
        """
        val_loss = float(val_loss)
        self.is_lowest = math.isfinite(val_loss) and val_loss < self.lowest
        if self.is_lowest:
            self.lowest = val_loss
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
            "restore_best_weights": self.restore_best_weights,
            "best": None if not math.isfinite(self.best) else self.best,
            "lowest": None if not math.isfinite(self.lowest) else self.lowest,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    @classmethod
    def from_state(cls, state: dict) -> EarlyStopper:
        """Rebuild a stopper from :meth:`get_state`."""
        stopper = cls(patience=int(state["patience"]), tolerance=float(state["tolerance"]),
                      restore_best_weights=bool(state.get("restore_best_weights", False)))  # fmt: skip
        stopper.best = math.inf if state.get("best") is None else float(state["best"])
        stopper.lowest = math.inf if state.get("lowest") is None else float(state["lowest"])
        stopper.epochs_without_improvement = int(state["epochs_without_improvement"])
        return stopper

    def __repr__(self) -> str:
        restore = ", restore_best_weights=True" if self.restore_best_weights else ""
        return f"EarlyStopper(patience={self.patience}, tolerance={self.tolerance}{restore})"
