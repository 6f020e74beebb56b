"""Inference networks: conditional density estimators ``q(targets | condition)``.

Every network subclasses :class:`InferenceNetwork` (``log_prob``, ``sample``); normalizing
flows subclass :class:`FlowNetwork` and also map ``(targets, condition) -> (z, log_det_J)``.
"""

from amortflow.networks.inference.actnorm import ActNorm
from amortflow.networks.inference.base import FlowNetwork, InferenceNetwork
from amortflow.networks.inference.consistency_model import ConsistencyModel
from amortflow.networks.inference.coupling import Coupling
from amortflow.networks.inference.flow_matching import FlowMatching
from amortflow.networks.inference.invertible_network import InvertibleNetwork
from amortflow.networks.inference.maf import MaskedAutoregressiveFlow
from amortflow.networks.inference.mdn import MixtureDensityNetwork
from amortflow.networks.inference.mlp import ConditionerMLP
from amortflow.networks.inference.permutations import FixedPermutation, LearnablePermutation, ReversePermutation
from amortflow.networks.inference.transforms import AffineTransform, RationalQuadraticSpline, Transform

__all__ = [
    "ActNorm",
    "AffineTransform",
    "ConditionerMLP",
    "ConsistencyModel",
    "Coupling",
    "FixedPermutation",
    "FlowMatching",
    "FlowNetwork",
    "InferenceNetwork",
    "InvertibleNetwork",
    "LearnablePermutation",
    "MaskedAutoregressiveFlow",
    "MixtureDensityNetwork",
    "RationalQuadraticSpline",
    "ReversePermutation",
    "Transform",
]
