"""Simulation on a Dask cluster: reproducible batches, presimulation fan-out, streaming buffers.

Requires the optional extra ``pip install amortflow[distributed]`` (``dask`` and
``distributed``); importing this package does not import Dask, creating an object does.
See ``docs/scale_out.md`` for a LocalCluster and for SLURM via dask-jobqueue.
"""

from amortflow.simulation.distributed.buffer import SimulationBuffer
from amortflow.simulation.distributed.model import DaskGenerativeModel
from amortflow.simulation.distributed.presimulation import dask_presimulate_and_save
from amortflow.simulation.distributed.streaming import IndexLedger, StreamingSimulations

__all__ = ["DaskGenerativeModel", "IndexLedger", "SimulationBuffer", "StreamingSimulations", "dask_presimulate_and_save"]
