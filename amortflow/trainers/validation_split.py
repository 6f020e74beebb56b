"""Validation data for fixed-budget training: held out of the given simulations when none are given.

With a fixed simulation budget (``train_offline``, ``train_from_presimulation``) the network
should train until it stops generalising, not for a guessed number of epochs. That needs a
validation loss on simulations it does not train on. When the user passes none, the trainer
holds out :func:`validation_size` of the simulations (10 %, at least 100, as sbi's NPE does with
its 10 % split), chosen at random with the trainer's seed, so that a resumed run holds out the
same ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from amortflow.exceptions import ArgumentError
from amortflow.trainers.sources.rows import is_standard_raw, raw_num_rows, take_raw_rows

#: Fraction of the simulations held out for validation.
VALIDATION_FRACTION = 0.1
#: Fewest simulations a held-out validation set has (below this a validation loss is too noisy
#: to stop on: its standard error is about sd / sqrt(n) of the per-simulation losses).
MIN_VALIDATION_SIMULATIONS = 100
#: A held-out set from disk stops growing here (it is held in memory).
MAX_VALIDATION_SIMULATIONS = 10_000


def validation_size(num_simulations: int) -> int:
    """Simulations held out of ``num_simulations``: ``max(100, ceil(0.1 n))``, at most 10,000."""
    size = max(MIN_VALIDATION_SIMULATIONS, math.ceil(VALIDATION_FRACTION * num_simulations))
    return min(size, MAX_VALIDATION_SIMULATIONS)


def can_hold_out(num_simulations: int) -> bool:
    """True when holding out :func:`validation_size` still leaves at least as many to train on."""
    return num_simulations - validation_size(num_simulations) >= validation_size(num_simulations)


def split_simulations(raw: Mapping, rng: np.random.Generator) -> tuple[dict, dict]:
    """``(training, validation)`` raw dicts: :func:`validation_size` random simulations held out of ``raw``.

    The two are disjoint and together are ``raw``; per-batch (non-batchable) contexts go to both.
    """
    n = raw_num_rows(raw)
    if not can_hold_out(n):
        raise ArgumentError(
            f"early_stopping=True holds out {validation_size(n)} of the simulations for validation, which needs "
            f"at least {2 * MIN_VALIDATION_SIMULATIONS}; received {n}. Pass validation_sims=... or early_stopping=False."
        )
    order = rng.permutation(n)
    held_out = np.sort(order[: validation_size(n)])
    kept = np.sort(order[validation_size(n) :])
    return take_raw_rows(raw, kept), take_raw_rows(raw, held_out)


def splittable(raw: Mapping) -> bool:
    """True for a single-model raw dict large enough to hold out a validation set."""
    return is_standard_raw(raw) and can_hold_out(raw_num_rows(raw))


def split_shards(shards: list[Path], sizes: list[int], rng: np.random.Generator) -> tuple[list[Path], list[Path]]:
    """``(training shards, validation shards)``: whole shards held out, in random order, until they hold
    :func:`validation_size` simulations. Raises :class:`ArgumentError` when too little would remain."""
    total = sum(sizes)
    target = validation_size(total)
    held, count = [], 0
    for index in rng.permutation(len(shards)):
        if count >= target:
            break
        held.append(int(index))
        count += sizes[index]
    remaining = total - count
    if count < MIN_VALIDATION_SIMULATIONS or remaining < count:
        raise ArgumentError(
            f"early_stopping=True holds out whole shards for validation ({target} of {total} simulations), but "
            f"the {len(shards)} shard(s) cannot be split so: {count} held out would leave {remaining}. "
            "Pass validation_sims=... or early_stopping=False, or write smaller shards."
        )
    held_set = set(held)
    return [s for i, s in enumerate(shards) if i not in held_set], [shards[i] for i in sorted(held_set)]
