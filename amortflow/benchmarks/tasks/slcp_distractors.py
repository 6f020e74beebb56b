"""SLCP with distractors: SLCP's 8 informative values hidden among 92 uninformative ones."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln, logsumexp

from amortflow.benchmarks.tasks.slcp import SLCP, slcp_log_likelihood, slcp_reference

N_DISTRACTORS = 92
N_COMPONENTS = 20
DF = 2.0
DISTRACTOR_SEED = 42


@functools.lru_cache(maxsize=1)
def distractor_mixture() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(locs (20, 92), scale_trils (20, 92, 92), permutation (100,))`` of the distractor law.

    Built as described for sbibm: from NumPy's legacy ``RandomState(42)``, 20 locations
    ``15 * N(0, I)``, then 20 scale factors ``3 * (tril(N(0, 1)^{92x92}) + diag(exp(N(0, I))))``,
    then a permutation of the 100 data positions - drawn in this order, so the law matches
    sbibm's (the legacy stream is frozen across NumPy versions).
    """
    rs = np.random.RandomState(DISTRACTOR_SEED)
    locs = np.array([15.0 * rs.normal(size=N_DISTRACTORS) for _ in range(N_COMPONENTS)])
    trils = []
    for _ in range(N_COMPONENTS):
        lower = np.tril(rs.normal(size=(N_DISTRACTORS, N_DISTRACTORS)))
        trils.append(3.0 * (lower + np.diag(np.exp(rs.normal(size=N_DISTRACTORS)))))
    permutation = rs.permutation(N_DISTRACTORS + 8)
    return locs, np.array(trils), permutation


class SLCPDistractors(SLCP):
    """SLCP with 92 distractors (Lueckmann et al., 2021).

    ``x`` is SLCP's 8-value data concatenated with 92 draws from a uniform mixture of 20
    multivariate Student-t distributions (2 degrees of freedom), independent of ``theta``,
    and then permuted by a fixed permutation (see :func:`distractor_mixture`). Observation
    ``i`` has the same true parameters and informative values as ``slcp``'s observation ``i``,
    and the same reference posterior: the distractors' density does not depend on ``theta``.
    """

    name = "slcp_distractors"
    dim_data = 100
    observation_seed_name = "slcp"
    exchangeable_draws = None  # the distractors are not draws of the four points' distribution

    def _simulate(self, theta, rng):
        informative = self._simulate_informative(theta, rng)
        locs, trils, permutation = distractor_mixture()
        component = rng.integers(N_COMPONENTS, size=len(theta))
        z = rng.standard_normal((len(theta), N_DISTRACTORS))
        # multivariate t: loc + L z / sqrt(w / df) with z ~ N(0, I), w ~ chi^2(df)
        z = z / np.sqrt(rng.chisquare(DF, size=(len(theta), 1)) / DF)
        noise = np.empty_like(z)
        for k in np.unique(component):  # one matrix product per component keeps memory at (B, 92)
            rows = component == k
            noise[rows] = locs[k] + z[rows] @ trils[k].T
        return np.concatenate([informative, noise], axis=1)[:, permutation]

    @staticmethod
    def informative_data(observation: np.ndarray) -> np.ndarray:
        """The 8 SLCP values of a data vector ``(..., 100)``, in SLCP's order."""
        positions = np.argsort(distractor_mixture()[2])[:8]
        return np.asarray(observation)[..., positions]

    @staticmethod
    def distractor_log_density(observation: np.ndarray) -> float:
        """Log density of the 92 distractor values of ``observation (100,)`` (constant in ``theta``)."""
        locs, trils, permutation = distractor_mixture()
        noise = np.asarray(observation)[np.argsort(permutation)[8:]]
        p = N_DISTRACTORS
        terms = []
        for loc, tril in zip(locs, trils):
            maha = np.sum(np.linalg.solve(tril, noise - loc) ** 2)
            log_det = np.sum(np.log(np.abs(np.diag(tril))))
            terms.append(gammaln((DF + p) / 2) - gammaln(DF / 2) - 0.5 * p * math.log(DF * math.pi)
                         - log_det - 0.5 * (DF + p) * math.log1p(maha / DF))  # fmt: skip
        return float(logsumexp(terms) - math.log(N_COMPONENTS))

    def log_likelihood(self, theta, observation):
        informative = slcp_log_likelihood(theta, self.informative_data(observation))
        return informative + self.distractor_log_density(observation)

    def _reference(self, observation, n_samples, rng, **options):
        return slcp_reference(self.informative_data(observation), n_samples, rng, **options)
