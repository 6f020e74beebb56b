"""Chunked sampling from conditional density estimators, with optional rejection to a box.

Memory stays bounded whatever ``n_datasets x n_samples`` is: the summary network sees at most
``datasets_per_chunk`` data sets at once, and the inference network at most ``max_rows``
(data set, draw) rows per call. Results are written into one preallocated numpy array.

Rejection to prior bounds: draws outside ``[lower, upper]`` are discarded and new ones
proposed until every data set has ``n_samples`` draws inside. Proposals per round are sized
from the acceptance rate seen so far. A data set whose acceptance rate falls below
``min_acceptance`` (after ``n_samples / min_acceptance`` proposals) raises a
:class:`~amortflow.exceptions.SamplingError` instead of looping for ever.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from amortflow.amortizers.base import SeedStream, chunk_ranges, n_chunks, plan_chunks, progress_bar
from amortflow.defaults import DEFAULT_REJECTION_MIN_ACCEPTANCE, DEFAULT_REJECTION_WARN_ACCEPTANCE
from amortflow.exceptions import SamplingError

logger = logging.getLogger("amortflow")

#: ``draw_fn(condition, n_draws, seed) -> numpy (n_condition_rows or 1, n_draws, D)``
DrawFn = Callable[[tf.Tensor | None, int, int | None], np.ndarray]


@dataclass
class RejectionStats:
    """Counts of a rejection run (for the acceptance-rate report)."""

    proposed: int = 0
    accepted: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 1.0


def sample_chunked(
    draw_fn: DrawFn,
    condition_fn: Callable[[int, int], tf.Tensor | None],
    n_datasets: int,
    n_samples: int,
    dim: int,
    *,
    batch_size: int | None,
    max_rows: int,
    seed: int | None,
    progress: bool | None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    min_acceptance: float = DEFAULT_REJECTION_MIN_ACCEPTANCE,
    desc: str = "sampling",
) -> tuple[np.ndarray, RejectionStats | None]:
    """Draw ``(n_datasets, n_samples, dim)`` values, chunk by chunk.

    Returns the draws and, with ``bounds``, the rejection counts (else ``None``).
    """
    per_chunk, draws_per_call = plan_chunks(n_datasets, n_samples, batch_size, max_rows)
    out = np.empty((n_datasets, n_samples, dim), dtype=np.float32)
    seeds = SeedStream(seed)
    stats = None if bounds is None else RejectionStats()
    total_calls = n_chunks(n_datasets, n_samples, per_chunk, draws_per_call)
    with progress_bar(n_datasets * n_samples, total_calls, progress, desc) as bar:
        for start, stop in chunk_ranges(n_datasets, per_chunk):
            condition = condition_fn(start, stop)
            if bounds is None:
                for d0, d1 in chunk_ranges(n_samples, draws_per_call):
                    out[start:stop, d0:d1] = draw_fn(condition, d1 - d0, seeds())
                    bar.update((stop - start) * (d1 - d0))
            else:
                _fill_by_rejection(out[start:stop], draw_fn, condition, bounds, max_rows, seeds, stats, min_acceptance)
                bar.update((stop - start) * n_samples)
    return out, stats


def _fill_by_rejection(out, draw_fn, condition, bounds, max_rows, seeds, stats, min_acceptance) -> None:
    """Fill ``out`` (b, n_samples, D) with draws inside ``bounds`` for the ``b`` data sets of ``condition``."""
    n_sets, n_samples, _ = out.shape
    lower, upper = (np.asarray(b, dtype=np.float32) for b in bounds)
    filled = np.zeros(n_sets, dtype=np.int64)
    proposed = np.zeros(n_sets, dtype=np.int64)
    accepted = np.zeros(n_sets, dtype=np.int64)
    give_up_after = math.ceil(n_samples / min_acceptance)
    while True:
        active = np.flatnonzero(filled < n_samples)
        if active.size == 0:
            return
        # Expected acceptance per data set so far (optimistic 1 before any proposal).
        rates = np.where(proposed[active] > 0, accepted[active] / np.maximum(proposed[active], 1), 1.0)
        needed = (n_samples - filled[active]) / np.maximum(rates, min_acceptance)
        n_prop = int(min(max(1, math.ceil(1.2 * needed.max())), max(1, max_rows // active.size)))
        sub_condition = None if condition is None else tf.gather(condition, active)
        draws = draw_fn(sub_condition, n_prop, seeds())
        inside = np.all((draws >= lower) & (draws <= upper), axis=-1)  # (a, n_prop)
        for row, i in enumerate(active):
            keep = draws[row][inside[row]][: n_samples - filled[i]]
            out[i, filled[i] : filled[i] + len(keep)] = keep
            filled[i] += len(keep)
        proposed[active] += n_prop
        accepted[active] += inside.sum(axis=1)
        stats.proposed += n_prop * active.size
        stats.accepted += int(inside.sum())
        stuck = active[(filled[active] < n_samples) & (proposed[active] >= give_up_after)]
        if stuck.size:
            i = int(stuck[0])
            raise SamplingError(
                f"Only {filled[i]} of {n_samples} posterior draws of a data set fell inside the prior bounds "
                f"after {proposed[i]} proposals (acceptance {accepted[i] / proposed[i]:.2g} < {min_acceptance:g}); "
                f"{stuck.size} data set(s) in this chunk are affected. The network puts almost no mass on the "
                "prior support: train longer, check the data for misspecification, or pass "
                "bounded_sampling='none' to get unconstrained draws."
            )


def report_acceptance(stats: RejectionStats | None, warn_below: float = DEFAULT_REJECTION_WARN_ACCEPTANCE) -> None:
    """Log the acceptance rate of a rejection run at INFO; warn when it is low."""
    if stats is None:
        return
    rate = stats.acceptance_rate
    logger.info(
        "Bounded sampling: %d of %d draws inside the prior bounds (acceptance rate %.3f).",
        stats.accepted, stats.proposed, rate,
    )  # fmt: skip
    if rate < warn_below:
        logger.warning(
            "Bounded sampling accepted only %.1f%% of the posterior draws: the network puts much mass "
            "outside the prior support (undertrained, or data unlike the simulations).",
            100.0 * rate,
        )
