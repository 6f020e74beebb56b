"""Context variables: information that is not a parameter but shapes the simulation.

* **batchable** context: one draw *per simulation* (e.g. an experimental design, a
  measurement time grid). Simulations in a batch may differ in it.
* **non-batchable** context: one draw *per batch*, shared by every simulation in it,
  typically because it changes array shapes (e.g. a random number of observations
  ``n_obs``; a batch must be rectangular).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError
from amortflow.simulation.validation import SeedLike, UserFunction, maybe_numeric_batch, resolve_rng

#: Marker for "no fixed non-batchable context given" (``None`` means "absent").
UNSET = object()


class ContextGenerator:
    """Draws batchable (per-simulation) and non-batchable (per-batch) context.

    Parameters
    ----------
    batchable_context_fun : callable, optional
        Called once per simulation: ``batchable_context_fun()``, or
        ``batchable_context_fun(non_batchable_context)`` when
        ``use_non_batchable_for_batchable=True``. May take an ``rng`` keyword.
    non_batchable_context_fun : callable, optional
        Called once per batch: ``non_batchable_context_fun()``. May take an ``rng`` keyword.
    use_non_batchable_for_batchable : bool, default False
        Pass the batch's non-batchable context to ``batchable_context_fun`` (e.g. a
        design with one entry per observation needs ``n_obs``).

    Examples
    --------
    >>> gen = ContextGenerator(
    ...     non_batchable_context_fun=lambda rng: int(rng.integers(10, 100)),
    ...     batchable_context_fun=lambda n_obs, rng: rng.uniform(0, 1, size=n_obs),
    ...     use_non_batchable_for_batchable=True)
    >>> ctx = gen(batch_size=4, rng=1)
    >>> ctx["batchable_context"].shape == (4, ctx["non_batchable_context"])
    True
    """

    def __init__(
        self,
        batchable_context_fun: Callable | None = None,
        non_batchable_context_fun: Callable | None = None,
        use_non_batchable_for_batchable: bool = False,
    ):
        self.batchable_fun = (
            None if batchable_context_fun is None else UserFunction(batchable_context_fun, "batchable_context_fun")
        )
        self.non_batchable_fun = (
            None
            if non_batchable_context_fun is None
            else UserFunction(non_batchable_context_fun, "non_batchable_context_fun")
        )
        self.use_non_batchable_for_batchable = bool(use_non_batchable_for_batchable)
        if self.use_non_batchable_for_batchable and self.non_batchable_fun is None:
            raise ArgumentError(
                "ContextGenerator(use_non_batchable_for_batchable=True) needs a non_batchable_context_fun "
                "whose value is passed to batchable_context_fun; received none."
            )

    @property
    def uses_global_rng(self) -> bool:
        """True if a context function draws from NumPy's global state (it takes no ``rng``)."""
        funs = [f for f in (self.batchable_fun, self.non_batchable_fun) if f is not None]
        return any(not f.takes_rng for f in funs)

    def non_batchable_context(self, rng: SeedLike = None) -> Any:
        """One non-batchable context value for a batch, or ``None`` without a function."""
        if self.non_batchable_fun is None:
            return None
        return self.non_batchable_fun(rng=resolve_rng(rng), during="while drawing the non-batchable context")

    def batchable_context(self, batch_size: int, non_batchable_context: Any = None, rng: SeedLike = None):
        """``batch_size`` batchable context values (an array ``(B, ...)`` if numeric, else a list), or ``None``."""
        if self.batchable_fun is None:
            return None
        rng = resolve_rng(rng)
        args = (non_batchable_context,) if self.use_non_batchable_for_batchable else ()
        values = [
            self.batchable_fun(*args, rng=rng, during=f"while drawing batchable context {i}")
            for i in range(batch_size)
        ]
        return maybe_numeric_batch(values, batch_size)

    def __call__(self, batch_size: int, rng: SeedLike = None, *, non_batchable_context: Any = UNSET) -> dict:
        """Draw the context of one batch.

        Parameters
        ----------
        batch_size : int
            Number of simulations (batchable draws).
        rng : numpy.random.Generator or int, optional
            Randomness passed to functions that take an ``rng`` keyword.
        non_batchable_context : optional, keyword-only
            Reuse this non-batchable context instead of drawing one (used when re-simulating
            part of a batch, whose shapes must stay the same).

        Returns
        -------
        dict
            ``{"batchable_context": array/list or None, "non_batchable_context": value or None}``.
        """
        rng = resolve_rng(rng)
        if non_batchable_context is UNSET:
            non_batchable_context = self.non_batchable_context(rng)
        return {
            "batchable_context": self.batchable_context(batch_size, non_batchable_context, rng),
            "non_batchable_context": non_batchable_context,
        }

    def __repr__(self) -> str:
        parts = [f.label for f in (self.batchable_fun, self.non_batchable_fun) if f is not None]
        return f"ContextGenerator({', '.join(parts) or 'empty'})"


def context_args(batchable: Any, non_batchable: Any, batchable_exists: bool | None = None) -> tuple:
    """Extra positional arguments for user functions: only the contexts that exist, batchable first.

    ``batchable_exists`` overrides the ``is not None`` test for the batchable entry (a per-simulation
    value may itself be ``None`` while the batch has a batchable context).
    """
    has_batchable = batchable is not None if batchable_exists is None else batchable_exists
    return ((batchable,) if has_batchable else ()) + ((non_batchable,) if non_batchable is not None else ())


def draw_context(
    generator: ContextGenerator | None, batch_size: int, rng: np.random.Generator, non_batchable: Any = UNSET
) -> dict:
    """Context of a batch from an optional generator (both entries ``None`` without one)."""
    if generator is None:
        return {"batchable_context": None, "non_batchable_context": None}
    return generator(batch_size, rng, non_batchable_context=non_batchable)
