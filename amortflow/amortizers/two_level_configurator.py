"""The configurator of :class:`~amortflow.amortizers.TwoLevelAmortizedPosterior`: raw two-level dict -> network inputs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from amortflow._checks import SAME_GROUP_SIZE, numeric_array
from amortflow.exceptions import ConfigurationError, ShapeError


class DefaultTwoLevelConfigurator:
    """Configures a :class:`~amortflow.simulation.TwoLevelGenerativeModel` raw dict.

    Returns float32 arrays:

    * ``summary_conditions (B, G, N, d)``: ``sim_data``;
    * ``direct_conditions (B, 2)``: ``[sqrt(G), sqrt(N)]`` from the data's shape, so the
      posterior knows how much data it summarises (mean-pooled summaries do not);
    * ``global_parameters (B, H + S)``: hyper draws followed by shared draws;
    * ``local_parameters (B, G, L)``.

    Parameters are ``None`` when the raw dict has none (observed data). Groups of different
    sizes within one batch (ragged ``sim_data``) are refused with a :class:`ConfigurationError`.
    """

    def __call__(self, raw: Mapping) -> dict:
        if not isinstance(raw, Mapping) or raw.get("sim_data") is None:
            raise ConfigurationError(
                "DefaultTwoLevelConfigurator needs a raw dict with 'sim_data' (B, G, N, d); received "
                f"{sorted(raw) if isinstance(raw, Mapping) else type(raw).__name__}."
            )
        data = numeric_array(raw["sim_data"], "DefaultTwoLevelConfigurator: 'sim_data'", dtype=np.float32,
                             error=ConfigurationError, expected=f"shape (B, G, N, d) {SAME_GROUP_SIZE}")  # fmt: skip
        if data.ndim != 4:
            raise ShapeError(f"'sim_data' must have shape (B, G, N, d), received shape {data.shape}.")
        batch, groups, size = data.shape[:3]
        direct = np.tile(np.sqrt([groups, size], dtype=np.float32), (batch, 1))
        return {
            "summary_conditions": data,
            "direct_conditions": direct,
            "global_parameters": self._global(raw),
            "local_parameters": None if raw.get("local_prior_draws") is None
            else np.asarray(raw["local_prior_draws"], dtype=np.float32),
        }  # fmt: skip

    @staticmethod
    def _global(raw: Mapping) -> np.ndarray | None:
        parts = [raw.get(k) for k in ("hyper_prior_draws", "shared_prior_draws") if raw.get(k) is not None]
        if not parts:
            return None
        return np.concatenate([np.asarray(p, dtype=np.float32).reshape(len(p), -1) for p in parts], axis=-1)
