"""The training progress bar (``tqdm.auto``: a widget in notebooks, text in terminals)."""

from __future__ import annotations

import math

from tqdm.auto import tqdm


class EpochProgress:
    """One bar per epoch showing the iteration, the last loss, the epoch's running mean and the LR.

    Updated once per compiled call (every few steps), so it costs nothing per step.

    Parameters
    ----------
    epoch : int
        1-based epoch number (as in the history).
    total : int
        Planned steps of the epoch.
    initial : int
        Steps already done (a resumed epoch).
    enabled : bool
        False hides the bar.
    """

    def __init__(self, epoch: int, total: int, initial: int = 0, enabled: bool = True):
        self._bar = tqdm(
            total=total, initial=initial, desc=f"Training epoch {epoch}", disable=not enabled, leave=True,
            dynamic_ncols=True,
        )  # fmt: skip

    def update(self, n_steps: int, iteration: int, loss: float, running_mean: float, learning_rate: float) -> None:
        """Advance by ``n_steps`` and show the current numbers."""
        self._bar.set_postfix_str(
            f"Iter: {iteration}, Loss: {_fmt(loss)}, Avg.Loss: {_fmt(running_mean)}, LR: {learning_rate:.2E}",
            refresh=False,
        )
        self._bar.update(n_steps)

    def close(self) -> None:
        self._bar.close()


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else str(value)
