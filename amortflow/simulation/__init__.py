"""Simulation layer: priors, context, simulators and generative models, plus presimulated shards.

A generative model returns a *raw dict* of numpy arrays (see ``docs/architecture.md``)::

    >>> import numpy as np
    >>> import amortflow as af
    >>> prior = af.simulation.Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2)))
    >>> simulator = af.simulation.Simulator(
    ...     simulator_fun=lambda theta, rng: rng.normal(theta, 1.0, size=(20, 2)))
    >>> model = af.simulation.GenerativeModel(prior, simulator)
    >>> out = model(batch_size=4, rng=0)
    >>> out["prior_draws"].shape, out["sim_data"].shape
    ((4, 2), (4, 20, 2))
"""

from amortflow.simulation.context import ContextGenerator
from amortflow.simulation.distributed import (  # Dask itself is imported only when used
    DaskGenerativeModel,
    SimulationBuffer,
    StreamingSimulations,
    dask_presimulate_and_save,
)
from amortflow.simulation.generative_model import RAW_KEYS, GenerativeModel
from amortflow.simulation.multi_model import MultiGenerativeModel
from amortflow.simulation.predictive import posterior_predictive
from amortflow.simulation.presimulation import iter_shard_paths, load_shard, presimulate_and_save, read_manifest
from amortflow.simulation.prior import Prior
from amortflow.simulation.simulator import Simulator
from amortflow.simulation.two_level_model import TWO_LEVEL_RAW_KEYS, TwoLevelGenerativeModel
from amortflow.simulation.two_level_prior import TwoLevelPrior

__all__ = [
    "RAW_KEYS",
    "ContextGenerator",
    "GenerativeModel",
    "MultiGenerativeModel",
    "Prior",
    "Simulator",
    "TWO_LEVEL_RAW_KEYS",
    "TwoLevelGenerativeModel",
    "TwoLevelPrior",
    "iter_shard_paths",
    "posterior_predictive",
    "load_shard",
    "presimulate_and_save",
    "read_manifest",
    "DaskGenerativeModel",
    "SimulationBuffer",
    "StreamingSimulations",
    "dask_presimulate_and_save",
]
