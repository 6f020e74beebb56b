"""Networks: summary networks (data -> fixed-size summaries) and inference networks (densities).

* :mod:`amortflow.networks.summary`: ``DeepSet``, ``SetTransformer`` (exchangeable sets),
  ``SequenceNetwork``, ``TimeSeriesTransformer`` (series), ``ConvSummary`` (fields on a grid),
  ``HierarchicalNetwork``, ``SplitNetwork`` (composites); each maps ``(B, ...) -> (B, summary_dim)``.
* :mod:`amortflow.networks.inference`: ``InvertibleNetwork`` (coupling flow), ``MaskedAutoregressiveFlow``,
  ``MixtureDensityNetwork`` and their transforms, conditioners and permutations.
* :mod:`amortflow.networks.classifiers`: the ratio and model-comparison classifiers.
"""

from amortflow.networks.inference import *  # noqa: F401,F403  (inference networks)
from amortflow.networks.summary import ConvSummary, DeepSet, HierarchicalNetwork, SequenceNetwork, SetTransformer, SplitNetwork, TimeSeriesTransformer  # noqa: F401,E501
