"""Simulations held in memory as rows, configured once up front whenever that is safe.

Configuring a whole data set once and slicing batches from the result is much faster than
configuring every batch. It is only equivalent when the configurator treats every simulation
on its own (row-wise), which :meth:`RowData.build` checks by configuring two simulations
separately and comparing them with the matching rows of the whole. A configurator that
mixes rows (batch statistics) or draws noise fails the check and is then applied to every
batch, as it would be online.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from amortflow._checks import BATCHABLE_RAW_KEYS, take_raw_rows
from amortflow.exceptions import ConfigurationError
from amortflow.trainers.arrays import Nested, concatenate, iter_leaves, num_rows, take_rows

logger = logging.getLogger("amortflow")

def is_standard_raw(raw: Mapping) -> bool:
    """True for a single-model raw dict (``prior_draws`` / ``sim_data``), which can be sliced by rows."""
    return isinstance(raw, Mapping) and (raw.get("sim_data") is not None or raw.get("prior_draws") is not None)


def raw_num_rows(raw: Mapping) -> int:
    """Number of simulations of a raw dict."""
    if not is_standard_raw(raw):
        raise ConfigurationError(f"Expected a raw dict with 'prior_draws' or 'sim_data'; received keys {sorted(raw)}.")
    sizes = {key: len(raw[key]) for key in BATCHABLE_RAW_KEYS if raw.get(key) is not None}
    if len(set(sizes.values())) > 1:
        raise ConfigurationError(f"The raw simulations disagree on their number (first axis): {sizes}.")
    return next(iter(sizes.values()))


def concat_raw(raws: list[Mapping]) -> dict:
    """Concatenate raw dicts along the simulations; their per-batch contexts must be equal."""
    out = dict(raws[0])
    for key, value in raws[0].items():
        if key in BATCHABLE_RAW_KEYS:
            if value is not None:
                parts = [r[key] for r in raws]
                out[key] = np.concatenate(parts) if isinstance(value, np.ndarray) else [x for p in parts for x in p]
        elif any(not _equal(value, r.get(key)) for r in raws[1:]):
            raise ConfigurationError(
                f"Cannot pool simulations whose '{key}' differs ({value!r} vs others); their configurator "
                "must be row-wise so that they can be configured separately."
            )
    return out


def _equal(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return a == b


class RowData:
    """``n`` simulations, as configured rows (fast path) or as raw rows configured per batch."""

    def __init__(self, n: int, configured: Nested | None = None, raw: Mapping | None = None, configure=None):
        self.n = n
        self.configured = configured
        self.raw = raw
        self._configure = configure

    @classmethod
    def build(cls, raw: Mapping, configure: Callable[[Mapping], Nested], require_rows: bool = False) -> RowData:
        """Configure ``raw`` once if the configurator is row-wise, else keep it raw.

        ``require_rows=True`` always configures once (with a WARNING if the check fails).
        """
        if not is_standard_raw(raw):  # e.g. several models' outputs: configure once
            configured = configure(raw)
            return cls(num_rows(configured), configured=configured)
        n = raw_num_rows(raw)
        configured = configure(raw)
        if num_rows(configured) == n and _rowwise(raw, configured, configure, n):
            return cls(n, configured=configured)
        if require_rows:
            logger.warning(
                "The configurator does not act on each simulation alone (configuring rows separately "
                "changed them); it is applied once to all simulations of this round."
            )
            return cls(num_rows(configured), configured=configured)
        logger.info("The configurator is not row-wise; it runs on every batch instead of once up front.")
        return cls(n, raw=raw, configure=configure)

    def batch(self, index: np.ndarray) -> Nested:
        """The configured simulations ``index``."""
        if self.configured is not None:
            return take_rows(self.configured, index)
        return self._configure(take_raw_rows(self.raw, index))

    @staticmethod
    def concat(parts: list[RowData]) -> RowData:
        """All simulations of ``parts`` in one :class:`RowData`."""
        if all(part.configured is not None for part in parts):
            return RowData(sum(p.n for p in parts), configured=concatenate([p.configured for p in parts]))
        raw = concat_raw([p.raw if p.raw is not None else _unsupported() for p in parts])
        return RowData(sum(p.n for p in parts), raw=raw, configure=parts[0]._configure)


def _unsupported():
    raise ConfigurationError("Cannot pool configured and raw simulations; use one configurator for all rounds.")


def _rowwise(raw: Mapping, configured: Nested, configure: Callable, n: int) -> bool:
    """Configure the first and last simulation alone and compare with the whole's rows."""
    probe = np.unique([0, n - 1])
    try:
        alone = configure(take_raw_rows(raw, probe))
    except Exception:  # noqa: BLE001 - a configurator that cannot take a sub-batch is not row-wise
        return False
    expected = take_rows(configured, probe)
    pairs = list(zip(iter_leaves(alone), iter_leaves(expected)))
    if len(pairs) != len(list(iter_leaves(expected))):
        return False
    for (path_a, a), (path_b, b) in pairs:
        if path_a != path_b or (a is None) != (b is None):
            return False
        if a is not None and (np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True)):
            return False
    return True
