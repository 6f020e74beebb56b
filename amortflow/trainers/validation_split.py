"""Validation data for fixed-budget training: held out of the given simulations when none are given.

With a fixed simulation budget (``train_offline``, ``train_from_presimulation``) the network
should train until it stops generalising, not for a guessed number of epochs. That needs a
validation loss on simulations it does not train on. When the user passes none, the trainer
holds out :func:`validation_size` of the simulations (10 %, at least 100, as sbi's NPE does with
its 10 % split), chosen at random with the trainer's seed, so that a resumed run holds out the
same ones.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from amortflow.exceptions import ArgumentError
from amortflow.trainers.sources.disk import complete_shards
from amortflow.trainers.sources.rows import concat_raw, is_standard_raw, raw_num_rows, take_raw_rows

logger = logging.getLogger("amortflow")

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


# --- what train_offline and train_from_presimulation do with early_stopping="auto" ------------
def _resolved(early_stopping):
    return True if early_stopping == "auto" else early_stopping


def hold_out_simulations(raw: Mapping, early_stopping, validation_sims, rng: np.random.Generator):
    """``(training raw, validation_sims, early_stopping)`` of an offline run.

    ``early_stopping`` False/None: nothing held out, no stopping. With ``validation_sims``: they
    are used. Otherwise :func:`split_simulations` holds some out; ``"auto"`` skips that (and the
    stopping) for data too small or not single-model, ``True`` (or a stopper) insists.
    """
    if early_stopping is False or early_stopping is None:
        return raw, validation_sims, False
    if validation_sims is not None:
        return raw, validation_sims, _resolved(early_stopping)
    if early_stopping == "auto" and not splittable(raw):
        logger.info("train_offline: no validation_sims and too few (or multi-model) simulations to hold some "
                    "out, so no early stopping: training runs all its epochs.")  # fmt: skip
        return raw, None, False
    training, validation = split_simulations(raw, rng)
    logger.info("train_offline: %d of the %d simulations are held out for validation (early stopping); "
                "training on %d.", raw_num_rows(validation), raw_num_rows(raw), raw_num_rows(training))  # fmt: skip
    return training, validation, _resolved(early_stopping)


def hold_out_shards(path: str | os.PathLike, early_stopping, validation_sims, rng: np.random.Generator):
    """``(training shards or None for all, validation_sims, early_stopping)`` of a run from presimulated shards.

    As :func:`hold_out_simulations`, with whole shards held out (:func:`split_shards`) and loaded
    as the validation set.
    """
    from amortflow.simulation import load_shard

    if early_stopping is False or early_stopping is None:
        return None, validation_sims, False
    if validation_sims is not None:
        return None, validation_sims, _resolved(early_stopping)
    try:
        training, held_out = split_shards(*complete_shards(Path(path)), rng)
    except ArgumentError:
        if early_stopping != "auto":
            raise
        logger.info("train_from_presimulation: no validation_sims and too few shards to hold some out, so no "
                    "early stopping: training runs all its epochs.")  # fmt: skip
        return None, None, False
    validation = concat_raw([load_shard(shard) for shard in held_out])
    logger.info("train_from_presimulation: %d shard(s) with %d simulations are held out for validation "
                "(early stopping).", len(held_out), raw_num_rows(validation))  # fmt: skip
    return training, validation, _resolved(early_stopping)
