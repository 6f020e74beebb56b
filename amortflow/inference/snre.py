"""SNRE: sequential neural ratio estimation; SNLE's rounds with a ratio classifier in place of the likelihood.

An :class:`~amortflow.amortizers.AmortizedRatio` contrasts each simulation ``(theta, x)`` with
parameters of other simulations of its batch, so on the pooled rounds both come from the
same mixture of proposals ``p~(theta)``. Its optimum is then

``r(x, theta) = p~(theta | x) / p~(theta) = p(x | theta) / p~(x)``,

whose denominator does not depend on ``theta``: ``p(theta) r(x_obs, theta) ∝ p(theta | x_obs)``
for any proposals, so no correction is needed (Durkan, Murray & Papamakarios 2020, "On
contrastive learning for likelihood-free inference", ICML; NRE-B/C up to the constant ``c(x)``
they leave, which MCMC on one ``x_obs`` ignores). The posterior is sampled by MCMC as in
:mod:`amortflow.inference.snle`.
"""

from __future__ import annotations

from amortflow.exceptions import ArgumentError
from amortflow.inference.snle import SNLE


class SNRE(SNLE):
    """The ``method="snre"`` of :class:`~amortflow.inference.SequentialInference` (see the module docstring).

    ``log_prob`` is the unnormalized ``log p(theta) + log r(x_obs, theta)``; other parameters as in :class:`SNLE`.
    """

    name = "snre"

    def _check_amortizer(self, amortizer) -> None:
        from amortflow.amortizers import AmortizedRatio

        if not isinstance(amortizer, AmortizedRatio):
            raise ArgumentError(f"method='snre' needs an AmortizedRatio, received {type(amortizer).__name__}.")
