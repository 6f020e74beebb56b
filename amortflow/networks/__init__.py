"""(filled in by its issue)"""

from amortflow.networks.summary import DeepSet, HierarchicalNetwork, SequenceNetwork, SetTransformer, SplitNetwork, TimeSeriesTransformer  # noqa: F401,E501
