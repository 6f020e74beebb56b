"""Diagnostics a trainer can run with its own generative model (a mixin of :class:`Trainer`).

* :meth:`~DiagnosticsMixin.diagnose_latent2d` - latent codes of simulations (a converged
  flow maps them onto a standard normal),
* :meth:`~DiagnosticsMixin.diagnose_sbc_histograms` - simulation-based calibration ranks,
* :meth:`~DiagnosticsMixin.mmd_hypothesis_test` - model misspecification test in summary space
  (Schmitt et al., 2021, "Detecting model misspecification in amortized Bayesian inference
  with neural networks").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from amortflow.exceptions import ArgumentError, ConfigurationError
from amortflow.trainers.seeds import Stream


DIAGNOSTIC_SIMS = 500


class DiagnosticsMixin:
    """Diagnostic plots and tests of :class:`~amortflow.trainers.Trainer`."""

    def _diagnostic_inputs(self, inputs, num_sims: int, position: int) -> dict:
        """Configured inputs: ``inputs`` (raw or configured dict) or ``num_sims`` new simulations."""
        if inputs is None:
            model = self._require_model("This diagnostic")
            inputs = model(num_sims, rng=self.seeds.rng(Stream.DIAGNOSTICS, position))
        if isinstance(inputs, Mapping) and ("parameters" in inputs or "summary_conditions" in inputs):
            return dict(inputs)
        return self.configure(inputs)

    def diagnose_latent2d(self, inputs=None, num_sims: int = DIAGNOSTIC_SIMS, **kwargs):
        """Plot the latent codes ``z`` of simulations with :func:`amortflow.diagnostics.plot_latent_space_2d`.

        Parameters
        ----------
        inputs : raw or configured dict, optional
            Default: ``num_sims`` new simulations of the generative model.
        **kwargs
            Passed to the plot function.
        """
        from amortflow.diagnostics import plot_latent_space_2d

        conf = self._diagnostic_inputs(inputs, num_sims, 0)
        try:
            z = self.amortizer(conf)[0]
        except Exception as exc:
            raise ConfigurationError(
                f"diagnose_latent2d needs an amortizer whose call returns latent codes (z, log_det_J); "
                f"{type(self.amortizer).__name__} raised {type(exc).__name__}: {exc}"
            ) from exc
        return plot_latent_space_2d(np.asarray(z), **kwargs)

    def diagnose_sbc_histograms(self, inputs=None, n_samples: int | None = None, num_sims: int = DIAGNOSTIC_SIMS, **kwargs):
        """Plot SBC rank histograms (:func:`amortflow.diagnostics.plot_sbc_histograms`).

        Parameters
        ----------
        inputs : raw or configured dict, optional
            Default: ``num_sims`` new simulations.
        n_samples : int, optional
            Posterior draws per data set; default 99 (100 possible ranks).
        **kwargs
            Passed to the plot function.
        """
        from amortflow.diagnostics import plot_sbc_histograms

        conf = self._diagnostic_inputs(inputs, num_sims, 1)
        if conf.get("parameters") is None:
            raise ArgumentError("diagnose_sbc_histograms needs simulations with their true parameters.")
        draws = self.amortizer.sample(conf, n_samples=99 if n_samples is None else int(n_samples))
        return plot_sbc_histograms(draws, conf["parameters"], **kwargs)

    def _summaries(self, data, who: str) -> np.ndarray:
        """Summary-network outputs of raw or configured data, or of a summary-conditions array."""
        summary_net = getattr(self.amortizer, "summary_net", None)
        if summary_net is None:
            raise ConfigurationError(f"{who} compares data in summary space; {type(self.amortizer).__name__} has no summary_net.")
        if isinstance(data, Mapping):
            conditions = self._diagnostic_inputs(data, 0, 2).get("summary_conditions")
            if conditions is None:
                raise ConfigurationError(f"{who}: the configured data have no 'summary_conditions'.")
        else:
            conditions = np.asarray(data, dtype=np.float32)
        return np.asarray(summary_net(conditions, training=False))

    def mmd_hypothesis_test(self, observed_data, reference_data=None, num_reference_simulations: int = 1000,
                            num_null_samples: int = 100, bootstrap: bool = False):  # fmt: skip
        """Test whether observed data sets look like simulations, in the learned summary space.

        The statistic is the squared maximum mean discrepancy (MMD) between the summaries of
        the ``n`` observed data sets and those of the reference simulations. Its null
        distribution (what to expect when the model is well specified) comes from resampling
        the reference: ``num_null_samples`` times, ``n`` reference summaries are drawn (without
        replacement against the remaining reference, or with replacement against the whole
        reference when ``bootstrap=True``) and their MMD computed.

        Parameters
        ----------
        observed_data : raw dict, configured dict or array of summary conditions ``(n, ...)``
        reference_data : same kinds, optional
            Default: ``num_reference_simulations`` new simulations of the generative model.
        num_reference_simulations : int, default 1000
        num_null_samples : int, default 100
        bootstrap : bool, default False

        Returns
        -------
        (mmd_null, mmd_observed) : (numpy.ndarray (num_null_samples,), float)
            E.g. for :func:`amortflow.diagnostics.plot_mmd_hypothesis_test`; the p-value is
            ``mean(mmd_null >= mmd_observed)``.
        """
        from amortflow.diagnostics import maximum_mean_discrepancy, mmd_null_distribution
        from amortflow.diagnostics.metrics.mmd_bootstrap import mmd_bootstrap_null

        observed = self._summaries(observed_data, "mmd_hypothesis_test")
        if reference_data is None:
            model = self._require_model("mmd_hypothesis_test without reference_data")
            reference_data = model(int(num_reference_simulations), rng=self.seeds.rng(Stream.DIAGNOSTICS, 3))
        reference = self._summaries(reference_data, "mmd_hypothesis_test")
        n = observed.shape[0]
        rng = self.seeds.rng(Stream.DIAGNOSTICS, 4)
        if bootstrap:
            null = mmd_bootstrap_null(reference, n, int(num_null_samples), rng)
        else:
            null = mmd_null_distribution(reference, n, num_null_samples=int(num_null_samples), rng=rng)
        return null, float(maximum_mean_discrepancy(observed, reference))
