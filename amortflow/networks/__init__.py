"""(filled in by its issue)"""

from amortflow.networks.inference import *  # noqa: F401,F403  (inference networks)
from amortflow.networks.summary import ConvSummary, DeepSet, HierarchicalNetwork, SequenceNetwork, SetTransformer, SplitNetwork, TimeSeriesTransformer  # noqa: F401,E501
