"""Where training batches come from: one source per training mode.

Every mode feeds the same compiled training step; they differ only in their source:

* :class:`OnlineSource` - fresh simulations every step (``train_online``),
* :class:`ReplaySource` - fresh simulations through a replay buffer (``train_experience_replay``),
* :class:`OfflineSource` - a simulation dict in memory (``train_offline``),
* :class:`RoundsSource` - simulate a round, train on all rounds so far (``train_rounds``),
* :class:`PresimulationSource` - shards on disk via a shuffle buffer (``train_from_presimulation``),
* :class:`StreamingSource` - a bounded buffer refilled by a Dask cluster (``train_streaming``).
"""

from amortflow.trainers.sources.base import BatchSource, Chunk
from amortflow.trainers.sources.disk import PresimulationSource, ShuffleBuffer
from amortflow.trainers.sources.memory import OfflineSource, RoundsSource
from amortflow.trainers.sources.online import OnlineSource, ReplaySource
from amortflow.trainers.sources.rows import RowData
from amortflow.trainers.sources.streaming import StreamingSource

__all__ = [
    "BatchSource",
    "Chunk",
    "OfflineSource",
    "OnlineSource",
    "PresimulationSource",
    "ReplaySource",
    "RoundsSource",
    "RowData",
    "ShuffleBuffer",
    "StreamingSource",
]
