"""Summary networks: learned statistics ``(B, ...) -> (B, summary_dim)`` of sets and time series.

* :class:`DeepSet` and :class:`SetTransformer` for exchangeable data ``(B, N, d)``
  (invariant to the order of the ``N`` elements),
* :class:`SequenceNetwork` and :class:`TimeSeriesTransformer` for series ``(B, T, d)``,
* :class:`HierarchicalNetwork` for nested sets ``(B, G, N, d)``,
* :class:`ConvSummary` for fields on 1-, 2- or 3-D grids ``(B, *grid, C)``, also evolving in time,
* :class:`SplitNetwork` for data made of several parts.

All are Keras layers, registered serializable, and accept any set size or length (ConvSummary:
any grid size that is a multiple of its downsampling).
"""

from amortflow.networks.summary.attention import (
    InducedSelfAttentionBlock,
    MultiHeadAttentionBlock,
    PoolingByMultiHeadAttention,
    SelfAttentionBlock,
)
from amortflow.networks.summary.conv import ConvSummary, ResidualConvBlock
from amortflow.networks.summary.deep_set import DeepSet, EquivariantModule, InvariantModule
from amortflow.networks.summary.hierarchical import HierarchicalNetwork
from amortflow.networks.summary.sequence import MultiConv1D, SequenceNetwork
from amortflow.networks.summary.set_transformer import SetTransformer
from amortflow.networks.summary.split import SplitNetwork, split_by_feature, split_by_index_column
from amortflow.networks.summary.time_series_transformer import TimeEncoding, TimeSeriesTransformer

__all__ = [
    "ConvSummary",
    "DeepSet",
    "EquivariantModule",
    "HierarchicalNetwork",
    "InducedSelfAttentionBlock",
    "InvariantModule",
    "MultiConv1D",
    "MultiHeadAttentionBlock",
    "PoolingByMultiHeadAttention",
    "ResidualConvBlock",
    "SelfAttentionBlock",
    "SequenceNetwork",
    "SetTransformer",
    "SplitNetwork",
    "TimeEncoding",
    "TimeSeriesTransformer",
    "split_by_feature",
    "split_by_index_column",
]
