"""TSNPE: truncated sequential neural posterior estimation (Deistler, Goncalves & Macke 2022).

Round ``r > 1`` draws its parameters from the prior *truncated* to the highest-probability
region of the current posterior estimate for ``x_obs``,

``p~_r(theta) ∝ p(theta) 1[theta in HPR_{1 - eps}]``,  ``HPR = {theta : log q(theta | x_obs) >= tau}``,

with ``tau`` the ``eps``-quantile of ``log q`` at draws of ``q(theta | x_obs)`` (so the region holds
``1 - eps`` of its mass; ``eps = 1e-4`` as in the paper), sampled by rejection from the prior.
Where the posterior has its mass, the pooled proposals of all rounds are the prior times a
constant, so the plain NPE loss ``-log q(theta | x)`` learns the posterior there without the
atomic loss or any correction (Deistler et al. 2022, "Truncated proposals for scalable and
hassle-free simulation-based inference", NeurIPS). The share of prior draws accepted (the
prior mass of the region) is the round's ``proposal_acceptance``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from amortflow.exceptions import ArgumentError, SamplingError
from amortflow.inference.snpe import SNPEC
from amortflow.simulation import tfp_prior

#: ``eps``: the posterior mass left outside the truncation region.
DEFAULT_TRUNCATION_QUANTILE = 1e-4
#: Posterior draws whose ``log q`` quantile sets the region's threshold.
DEFAULT_THRESHOLD_DRAWS = 20_000
#: Prior draws per rejection batch at most; and the most prior draws per accepted one before giving up.
MAX_PRIOR_BATCH = 100_000
MAX_PRIOR_DRAWS_PER_PROPOSAL = 10_000


class TSNPE(SNPEC):
    """The ``method="tsnpe"`` of :class:`~amortflow.inference.SequentialInference` (see the module docstring).

    Parameters as in :class:`~amortflow.inference.snpe.SNPEC`, plus ``truncation_quantile``
    (``eps``, default ``1e-4``). ``log_prob`` is the network's normalized ``log q(theta | x_obs)``.
    """

    name = "tsnpe"
    proposal_name = "truncated prior"

    def __init__(self, generative_model, amortizer, x_obs, prior, trainer_kwargs: Mapping,
                 truncation_quantile: float = DEFAULT_TRUNCATION_QUANTILE):  # fmt: skip
        super().__init__(generative_model, amortizer, x_obs, prior, num_atoms=None, trainer_kwargs=trainer_kwargs)
        if not 0 < truncation_quantile < 1:
            raise ArgumentError(f"truncation_quantile must lie in (0, 1), received {truncation_quantile!r}.")
        self.truncation_quantile = float(truncation_quantile)
        self.last_threshold = None

    def trainer_for(self, round_index: int):
        """The one Trainer (plain NPE loss) of every round."""
        return self.trainer

    def threshold(self, seed: int | None) -> float:
        """``tau``: the ``truncation_quantile`` of ``log q(theta | x_obs)`` at draws of ``q``."""
        draws = self.amortizer.sample(self.conditions, DEFAULT_THRESHOLD_DRAWS, seed=seed, squeeze=True)
        return float(np.quantile(self.log_prob(draws), self.truncation_quantile))

    def propose(self, n: int, seed: int | None) -> np.ndarray:
        """``(n, D)`` draws of the prior truncated to the region, by rejection; sets ``last_acceptance_rate``."""
        rng = np.random.default_rng(seed)
        tau = self.last_threshold = self.threshold(None if seed is None else seed + 1)
        kept, n_kept, n_drawn, rate = [], 0, 0, 1.0
        while n_kept < n:
            size = int(min(MAX_PRIOR_BATCH, max(n, np.ceil(1.2 * (n - n_kept) / rate))))
            theta = tfp_prior.sample(self.prior, size, rng).astype(np.float32)
            inside = self.log_prob(theta) >= tau
            kept.append(theta[inside])
            n_kept, n_drawn = n_kept + int(inside.sum()), n_drawn + size
            rate = max(n_kept / n_drawn, 1e-6)
            if n_kept < n and n_drawn > MAX_PRIOR_DRAWS_PER_PROPOSAL * n:
                raise SamplingError(
                    f"TSNPE: only {n_kept} of {n_drawn} prior draws fell in the posterior's highest-probability region; "
                    "it holds too little prior mass for rejection sampling. Use method='snpe_c'."
                )
        self.last_acceptance_rate = n_kept / n_drawn
        return np.concatenate(kept)[:n]
