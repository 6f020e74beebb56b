"""A generative model: prior and simulator joined, with pilot checks and invalid-simulation handling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow._checks import RAW_KEYS
from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation import presimulation, tfp_prior
from amortflow.simulation.prior import Prior, check_batch_size
from amortflow.simulation.simulator import Simulator
from amortflow.simulation.validation import (
    SeedLike,
    format_vector,
    nonfinite_rows,
    replace_rows,
    resolve_rng,
    select_rows,
)

logger = logging.getLogger("amortflow")

PILOT_BATCH_SIZE = 2
#: Give up re-simulating when more than this fraction of (at least 100) simulations was invalid.
MAX_INVALID_FRACTION = 0.99


class GenerativeModel:
    """Draws ``theta ~ p(theta)`` and ``x ~ p(x | theta)`` and returns them as one raw dict.

    Parameters
    ----------
    prior : Prior, TFP distribution or callable
        A plain callable is wrapped as ``Prior(batch_prior_fun=...)`` if ``prior_is_batched``
        else ``Prior(prior_fun=...)``; a distribution as ``Prior(distribution=...)``.
    simulator : Simulator or callable
        A plain callable needs ``simulator_is_batched`` (``True``: it takes ``(B, D)``;
        ``False``: one ``theta`` at a time).
    skip_test : bool, default False
        Skip the pilot run (two simulations) that checks shapes and logs them (INFO,
        logger ``"amortflow"``) at construction.
    prior_is_batched, simulator_is_batched : bool
        How to wrap plain callables (see above).
    name : str, default "anonymous"
        Used in log messages and in the manifest of presimulated shards.
    on_invalid : {"raise", "drop"}, default "raise"
        What to do with simulations containing NaN or inf: raise a :class:`SimulationError`,
        or drop them and re-simulate (new parameters, same non-batchable context) until the
        batch is full again; the number dropped is logged.
    max_resimulation_rounds : int, default 10
        With ``on_invalid="drop"``: give up (``SimulationError``) after this many rounds,
        or as soon as more than 99% of at least 100 simulations were invalid.

    Examples
    --------
    >>> model = GenerativeModel(
    ...     prior=Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2))),
    ...     simulator=Simulator(batch_simulator_fun=lambda th, rng: th[:, None] + rng.normal(size=(len(th), 10, 2))))
    >>> out = model(batch_size=3, rng=0)
    >>> out["prior_draws"].shape, out["sim_data"].shape, out["sim_batchable_context"]
    ((3, 2), (3, 10, 2), None)
    """

    def __init__(
        self,
        prior: Prior | Callable | Any,
        simulator: Simulator | Callable,
        skip_test: bool = False,
        prior_is_batched: bool = False,
        simulator_is_batched: bool | None = None,
        name: str = "anonymous",
        on_invalid: str = "raise",
        max_resimulation_rounds: int = 10,
    ):
        if on_invalid not in ("raise", "drop"):
            raise ArgumentError(f"GenerativeModel(on_invalid=...) must be 'raise' or 'drop', received {on_invalid!r}.")
        self.prior = _as_prior(prior, prior_is_batched)
        self.simulator = _as_simulator(simulator, simulator_is_batched)
        self.name = str(name)
        self.on_invalid = on_invalid
        self.max_resimulation_rounds = int(max_resimulation_rounds)
        if not skip_test:
            self._pilot_run()

    @property
    def uses_global_rng(self) -> bool:
        """True if some user function draws from NumPy's global state instead of an ``rng`` keyword."""
        return self.prior.uses_global_rng or self.simulator.uses_global_rng

    def __call__(self, batch_size: int, rng: SeedLike = None) -> dict:
        """Simulate a batch.

        Parameters
        ----------
        batch_size : int
            Number of simulations ``B``.
        rng : numpy.random.Generator or int, optional
            Randomness for functions with an ``rng`` parameter (and distribution priors).

        Returns
        -------
        dict
            ``prior_draws (B, D)``, ``sim_data (B, ...)`` and the four context entries
            (``None`` when absent).
        """
        batch_size = check_batch_size(batch_size)
        rng = resolve_rng(rng)
        out = self._simulate(batch_size, rng)
        invalid = nonfinite_rows(out["sim_data"])
        if invalid.any():
            if self.on_invalid == "raise":
                raise SimulationError(self._invalid_message(out, invalid))
            self._replace_invalid(out, invalid, rng)
        return out

    def _simulate(self, batch_size: int, rng: np.random.Generator, fixed: dict | None = None) -> dict:
        """One batch; ``fixed`` holds the non-batchable contexts to reuse (when re-simulating)."""
        reuse = {} if fixed is None else {"non_batchable_context": fixed["prior_non_batchable_context"]}
        prior_out = self.prior(batch_size, rng, **reuse)
        reuse = {} if fixed is None else {"non_batchable_context": fixed["sim_non_batchable_context"]}
        sim_out = self.simulator(prior_out["prior_draws"], rng, **reuse)
        return {
            "prior_non_batchable_context": prior_out["non_batchable_context"],
            "prior_batchable_context": prior_out["batchable_context"],
            "prior_draws": prior_out["prior_draws"],
            "sim_non_batchable_context": sim_out["non_batchable_context"],
            "sim_batchable_context": sim_out["batchable_context"],
            "sim_data": sim_out["sim_data"],
        }

    def _invalid_message(self, out: dict, invalid: np.ndarray) -> str:
        bad = np.flatnonzero(invalid)
        return (
            f"{self.simulator.label} returned NaN or inf in 'sim_data' (shape {out['sim_data'].shape}) for "
            f"{bad.size} of {invalid.size} simulations, e.g. simulation {bad[0]} with parameters "
            f"{format_vector(out['prior_draws'][bad[0]])}; expected finite data. Pass "
            "GenerativeModel(on_invalid='drop') to drop and re-simulate such simulations."
        )

    def _replace_invalid(self, out: dict, invalid: np.ndarray, rng: np.random.Generator) -> None:
        """Re-simulate the invalid rows of ``out`` in place, keeping the non-batchable contexts."""
        batch_size = invalid.size
        n_simulated, n_invalid, rounds = batch_size, int(invalid.sum()), 0
        while invalid.any():
            if rounds >= self.max_resimulation_rounds or (
                n_simulated >= 100 and n_invalid / n_simulated > MAX_INVALID_FRACTION
            ):
                raise SimulationError(
                    f"GenerativeModel {self.name!r}: {n_invalid} of {n_simulated} simulations from "
                    f"{self.simulator.label} had NaN or inf in 'sim_data' after {rounds} re-simulation rounds; "
                    f"{int(invalid.sum())} of {batch_size} still invalid. Check the simulator or the prior range."
                )
            rounds += 1
            rows = np.flatnonzero(invalid)
            # Oversample by the observed failure rate so one or two rounds usually suffice.
            valid_rate = max(1.0 - n_invalid / n_simulated, 0.01)
            n_try = int(min(np.ceil(1.2 * rows.size / valid_rate) + 1, 100 * batch_size))
            new = self._simulate(n_try, rng, fixed=out)
            new_invalid = nonfinite_rows(new["sim_data"])
            n_simulated, n_invalid = n_simulated + n_try, n_invalid + int(new_invalid.sum())
            good = np.flatnonzero(~new_invalid)[: rows.size]
            self._merge_rows(out, new, rows[: good.size], good)
            invalid[rows[: good.size]] = False
        logger.info(
            "GenerativeModel %r: dropped %d invalid (NaN/inf) of %d simulations and re-simulated them "
            "in %d round(s) to keep batch_size=%d.",
            self.name, n_invalid, n_simulated, rounds, batch_size,
        )  # fmt: skip

    @staticmethod
    def _merge_rows(out: dict, new: dict, rows: np.ndarray, source: np.ndarray) -> None:
        for key in ("prior_draws", "sim_data"):
            if new[key].shape[1:] != out[key].shape[1:]:
                raise ShapeError(
                    f"Re-simulated '{key}' has shape {new[key].shape[1:]} per simulation, but the batch has "
                    f"{out[key].shape[1:]}; expected the same shape for the same non-batchable context."
                )
            out[key] = out[key].copy()
            out[key][rows] = new[key][source]
        for key in ("prior_batchable_context", "sim_batchable_context"):
            out[key] = replace_rows(out[key], rows, select_rows(new[key], source))

    def _pilot_run(self) -> None:
        logger.info("GenerativeModel %r: running %d pilot simulations.", self.name, PILOT_BATCH_SIZE)
        out = self(PILOT_BATCH_SIZE, rng=np.random.default_rng(0))
        logger.info("Shape of parameter batch after %d pilot simulations: %s", PILOT_BATCH_SIZE, out["prior_draws"].shape)
        logger.info("Shape of simulation batch after %d pilot simulations: %s", PILOT_BATCH_SIZE, out["sim_data"].shape)
        for key in RAW_KEYS:
            if "context" not in key:
                continue
            if out[key] is None:
                logger.info("No optional %s was given (it is None).", key)
            else:
                logger.info("%s: %s", key, _describe_context(out[key]))

    def presimulate_and_save(self, folder, batch_size: int, n_batches: int, seed: SeedLike = None, **kwargs) -> list:
        """Write simulations to ``folder`` as shards; see :func:`amortflow.simulation.presimulate_and_save`."""
        return presimulation.presimulate_and_save(self, folder, batch_size, n_batches, seed=seed, **kwargs)

    def __repr__(self) -> str:
        return f"GenerativeModel(name={self.name!r}, prior={self.prior!r}, simulator={self.simulator!r})"


def _describe_context(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} ({value.dtype})"
    if isinstance(value, list):
        return f"list of {len(value)} {type(value[0]).__name__ if value else 'items'}"
    return f"{type(value).__name__} {value!r}"


def _as_prior(prior: Any, prior_is_batched: bool) -> Prior:
    if isinstance(prior, Prior):
        return prior
    if tfp_prior.is_distribution(prior):
        return Prior(distribution=prior)
    if callable(prior):
        return Prior(batch_prior_fun=prior) if prior_is_batched else Prior(prior_fun=prior)
    raise ArgumentError(
        f"GenerativeModel(prior=...) must be a Prior, a TFP distribution or a callable, received {type(prior).__name__}."
    )


def _as_simulator(simulator: Any, simulator_is_batched: bool | None) -> Simulator:
    if isinstance(simulator, Simulator):
        return simulator
    if not callable(simulator):
        raise ArgumentError(
            f"GenerativeModel(simulator=...) must be a Simulator or a callable, received {type(simulator).__name__}."
        )
    if simulator_is_batched is None:
        raise ArgumentError(
            "GenerativeModel(simulator=<function>) needs simulator_is_batched=True (the function takes the "
            "whole (B, D) batch) or False (one theta at a time); or pass a Simulator(...)."
        )
    if simulator_is_batched:
        return Simulator(batch_simulator_fun=simulator)
    return Simulator(simulator_fun=simulator)
