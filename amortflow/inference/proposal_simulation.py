"""What every sequential method needs from the generative model: the prior's density and simulations at given parameters.

Sequential rounds draw parameters from a proposal (the last round's posterior estimate) instead
of the prior, so they simulate with the generative model's *simulator* only; the prior still
enters through its density, which needs a TensorFlow Probability distribution.
"""

from __future__ import annotations

import logging

import numpy as np

from amortflow.exceptions import ArgumentError, ShapeError, SimulationError, describe_shape
from amortflow.simulation import tfp_prior
from amortflow.simulation.validation import nonfinite_rows

logger = logging.getLogger("amortflow")


def prior_distribution(generative_model, who: str):
    """The prior of ``generative_model`` as a TFP distribution with event shape ``(D,)``.

    Raises
    ------
    ArgumentError
        When the prior is a function, whose density amortflow cannot know.
    """
    prior = getattr(generative_model, "prior", None)
    distribution = prior if tfp_prior.is_distribution(prior) else getattr(prior, "distribution", None)
    if distribution is None:
        raise ArgumentError(
            f"{who} needs the prior's density log p(theta): build the generative model's prior from a TensorFlow "
            "Probability distribution (Prior(distribution=tfd.Independent(tfd.Normal(...), 1)) or the distribution "
            f"itself); received {prior!r}, whose density amortflow cannot know."
        )
    return tfp_prior.normalize_distribution(distribution)


def simulate_at(generative_model, theta: np.ndarray, rng: np.random.Generator) -> dict:
    """A raw simulation dict (the six keys of ``generative_model(B)``) with ``prior_draws = theta``.

    Prior contexts are None: a distribution prior takes none. Simulations with NaN or inf are
    dropped (with a log line) under ``on_invalid="drop"`` and raise a :class:`SimulationError` otherwise.
    """
    theta = np.asarray(theta)
    if theta.ndim != 2:
        raise ShapeError(f"Proposal draws must have shape (B, D), received {describe_shape(theta)}.")
    out = generative_model.simulator(theta, rng)
    raw = {
        "prior_non_batchable_context": None,
        "prior_batchable_context": None,
        "prior_draws": theta,
        "sim_non_batchable_context": out["non_batchable_context"],
        "sim_batchable_context": out["batchable_context"],
        "sim_data": out["sim_data"],
    }
    invalid = nonfinite_rows(raw["sim_data"])
    if not invalid.any():
        return raw
    if getattr(generative_model, "on_invalid", "raise") != "drop":
        raise SimulationError(
            f"{int(invalid.sum())} of {invalid.size} simulations at proposal draws have NaN or inf in 'sim_data' "
            f"(shape {raw['sim_data'].shape}); pass GenerativeModel(on_invalid='drop') to drop them."
        )
    logger.info("Dropped %d of %d simulations with NaN or inf at proposal draws.", int(invalid.sum()), invalid.size)
    keep = ~invalid
    batchable = raw["sim_batchable_context"]
    raw.update(prior_draws=theta[keep], sim_data=raw["sim_data"][keep],
               sim_batchable_context=None if batchable is None else np.asarray(batchable)[keep])  # fmt: skip
    return raw


def check_observation(x_obs, generative_model) -> np.ndarray:
    """``x_obs`` as a float32 array shaped like one simulation's ``sim_data`` (ShapeError otherwise)."""
    x_obs = np.asarray(x_obs, dtype=np.float32)
    pilot = generative_model(1, rng=np.random.default_rng(0))["sim_data"]
    expected = tuple(pilot.shape[1:])
    if x_obs.shape != expected:
        raise ShapeError(
            f"x_obs must be one data set shaped like one simulation's sim_data, {expected}; "
            f"received {describe_shape(x_obs)}."
        )
    if not np.isfinite(x_obs).all():
        raise ArgumentError("x_obs holds NaN or inf; expected finite observed data.")
    return x_obs
