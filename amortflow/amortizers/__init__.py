"""Amortizers: the estimators users train (posterior, likelihood, joint, ratio, model comparison).

Each is a Keras ``Model`` that takes the configured dict, computes its loss with
``compute_loss(input_dict)``, answers queries after training (``sample``, ``log_posterior``,
``log_likelihood``, ``log_ratio``, ``posterior_probs``) and saves to one ``.keras`` file.
"""

from amortflow.amortizers.base import Amortizer
from amortflow.amortizers.joint import AmortizedPosteriorLikelihood
from amortflow.amortizers.likelihood import AmortizedLikelihood
from amortflow.amortizers.losses import maximum_mean_discrepancy
from amortflow.amortizers.model_comparison import AmortizedModelComparison
from amortflow.amortizers.posterior import AmortizedPosterior
from amortflow.amortizers.ratio import AmortizedRatio
from amortflow.amortizers.two_level import TwoLevelAmortizedPosterior
from amortflow.amortizers.two_level_configurator import DefaultTwoLevelConfigurator

__all__ = [
    "Amortizer",
    "AmortizedLikelihood",
    "AmortizedModelComparison",
    "AmortizedPosterior",
    "AmortizedPosteriorLikelihood",
    "AmortizedRatio",
    "DefaultTwoLevelConfigurator",
    "TwoLevelAmortizedPosterior",
    "maximum_mean_discrepancy",
]
