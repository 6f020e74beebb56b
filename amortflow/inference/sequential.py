"""Sequential inference for one observation: spend the simulations where the posterior of ``x_obs`` lives.

Round ``r = 1, ..., R``: draw ``N`` parameters from the proposal ``p~_r`` (``p~_1`` is the prior,
``p~_r`` for ``r > 1`` the posterior estimate for ``x_obs`` after round ``r - 1``), simulate, and
train on the simulations of all rounds so far (``train_offline`` of one Trainer, whose compiled
step every round reuses, with a fresh learning-rate schedule per round; SNPE-C has a second
Trainer for its atomic loss, see :mod:`amortflow.inference.snpe`). Methods:

* ``"snpe_c"`` - APT / SNPE-C (Greenberg et al. 2019): a posterior network trained with the
  atomic loss (:mod:`amortflow.inference.atomic_loss`, :mod:`amortflow.inference.snpe`);
* ``"tsnpe"`` - truncated SNPE (Deistler et al. 2022): the prior truncated to the posterior
  estimate's highest-probability region is the proposal, and the plain NPE loss suffices
  (:mod:`amortflow.inference.tsnpe`);
* ``"snle"`` - SNLE (Papamakarios, Sterratt & Murray 2019): a likelihood network ``q(x | theta)``,
  whose posterior ``p(theta) q(x_obs | theta)`` MCMC samples (:mod:`amortflow.inference.snle`);
* ``"snre"`` - SNRE (Durkan, Murray & Papamakarios 2020): a ratio classifier ``r(x, theta)``,
  posterior ``p(theta) r(x_obs, theta)`` by MCMC (:mod:`amortflow.inference.snre`).

Unlike :meth:`~amortflow.trainers.Trainer.train_rounds`, which re-simulates from the prior
(amortized rounds), the networks here are specialized to ``x_obs``.

With a ``checkpoint_path``, every round's proposal draws and simulations are saved as they
arrive and the networks are checkpointed by the Trainer (:mod:`amortflow.inference.round_store`);
a new ``SequentialInference`` on the same folder resumes where the last one stopped. A
:class:`~amortflow.simulation.DaskGenerativeModel` simulates each round on its cluster
(:mod:`amortflow.inference.dask_rounds`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from amortflow._checks import check_choice, positive_int
from amortflow.exceptions import ArgumentError, CheckpointError, SamplingError, ShapeError, describe_shape
from amortflow.inference import dask_rounds
from amortflow.inference.atomic_loss import DEFAULT_NUM_ATOMS
from amortflow.inference.proposal_simulation import check_observation, prior_distribution, simulate_at
from amortflow.inference.round_store import RoundStore, run_identity
from amortflow.simulation import tfp_prior
from amortflow.trainers.sources.rows import concat_raw

logger = logging.getLogger("amortflow")

METHODS = ("snpe_c", "tsnpe", "snle", "snre")
#: Redraw rounds for draws outside the prior's support before :meth:`SequentialInference.sample` gives up.
MAX_SUPPORT_REDRAWS = 20


@dataclass
class RoundRecord:
    """What one round did.

    Attributes
    ----------
    round : int
        1-based round number.
    proposal : str
        ``"prior"``, ``"posterior"`` (the estimate after the previous round) or, for ``"tsnpe"``,
        ``"truncated prior"``.
    simulations : int
        Simulations of this round (after dropping invalid ones).
    total_simulations : int
        Simulations trained on in this round (all rounds so far).
    proposal_acceptance : float or None
        ``"snpe_c"``: share of the posterior network's draws inside the prior's box (None when it has
        none); ``"tsnpe"``: share of prior draws inside the truncation region; None for the prior
        (round 1) and for MCMC proposals.
    epochs : int
        Epochs trained in this round (early stopping may end a round before ``epochs``).
    final_train_loss, final_val_loss : float
        Mean training loss of the round's last epoch; its last validation loss (NaN without one).
    """

    round: int
    proposal: str
    simulations: int
    total_simulations: int
    proposal_acceptance: float | None
    epochs: int
    final_train_loss: float
    final_val_loss: float


class SequentialInference:
    """Sequential neural inference for one observed data set ``x_obs``.

    Parameters
    ----------
    generative_model : GenerativeModel or DaskGenerativeModel
        Its prior must be a TFP distribution (or ``Prior(distribution=...)``): every method needs
        ``log p(theta)``. A ``DaskGenerativeModel`` simulates every round on its cluster: the
        proposal's draws (the prior's in round 1) are made here and simulated as tasks of its
        ``chunk_size`` rows; only the wrapped model's simulator is sent to the workers.
    amortizer : AmortizedPosterior, AmortizedLikelihood or AmortizedRatio
        The network to train (``AmortizedPosterior`` for ``"snpe_c"`` and ``"tsnpe"``, ``AmortizedLikelihood``
        for ``"snle"``, ``AmortizedRatio`` for ``"snre"``); trained in place.
    x_obs : array
        The observed data set, shaped like one simulation's ``sim_data`` (no batch axis).
    method : {"snpe_c", "tsnpe", "snle", "snre"}, default "snpe_c"
    num_atoms : int, default 10
        ``"snpe_c"``: atoms per training pair of the atomic loss (see
        :mod:`amortflow.inference.atomic_loss`).
    truncation_quantile : float, default 1e-4
        ``"tsnpe"``: posterior mass left outside the truncation region (see :mod:`amortflow.inference.tsnpe`).
    mcmc_kwargs : dict, optional
        ``"snle"``, ``"snre"``: arguments of :func:`~amortflow.inference.sample_posterior_mcmc`.
    seed : int, optional
        Seeds the proposals, the simulations and the trainer.
    trainer_kwargs : dict, optional
        Passed to the :class:`~amortflow.trainers.Trainer` (e.g. ``progress=False``); not
        ``checkpoint_path`` (pass it to ``SequentialInference``).
    checkpoint_path : path, optional
        Folder of the run's checkpoint (:mod:`amortflow.inference.round_store`): each round's
        proposal draws and simulations are written as they arrive, the networks by the Trainer
        (``<path>/trainer``, SNPE-C's atomic-loss Trainer ``<path>/trainer_atomic``). If the folder
        holds a run, it is resumed: the finished rounds' simulations and history are loaded, and
        :meth:`run` continues in the interrupted round with its saved proposal draws (and saved
        simulations, if they were complete). Build it with the same arguments as the interrupted
        run; another method, ``x_obs`` or prior dimension raises a :class:`CheckpointError`.

    Examples
    --------
    >>> inference = SequentialInference(model, AmortizedPosterior(InvertibleNetwork(num_params=2)), x_obs)  # doctest: +SKIP
    >>> inference.run(rounds=4, simulations_per_round=1000, epochs=100, batch_size=128)      # doctest: +SKIP
    >>> draws = inference.sample(2000)                                                        # doctest: +SKIP
    """

    def __init__(
        self,
        generative_model,
        amortizer,
        x_obs,
        method: str = "snpe_c",
        *,
        num_atoms: int = DEFAULT_NUM_ATOMS,
        truncation_quantile: float = 1e-4,
        mcmc_kwargs: Mapping | None = None,
        seed: int | None = None,
        trainer_kwargs: Mapping | None = None,
        checkpoint_path: str | os.PathLike | None = None,
    ):
        check_choice("method", method, METHODS)
        who = f"SequentialInference(method={method!r})"
        self.generative_model = generative_model
        # a Dask model simulates the rounds; the checks and the Trainer use the model it wraps here
        local = generative_model.generative_model if dask_rounds.is_dask_model(generative_model) else generative_model
        self.prior = prior_distribution(local, who)
        self.x_obs = check_observation(x_obs, local)
        self.method = method
        self._rng = np.random.default_rng(seed)
        trainer_kwargs = {"seed": self._new_seed(), **dict(trainer_kwargs or {})}
        self._store = None
        if checkpoint_path is not None:
            if trainer_kwargs.get("checkpoint_path") is not None:
                raise ArgumentError("Pass checkpoint_path to SequentialInference, not in trainer_kwargs: the run's folder "
                                    "holds the simulations and the Trainer's checkpoints.")  # fmt: skip
            self._store = RoundStore(checkpoint_path, run_identity(method, self.x_obs, self.num_params))
            trainer_kwargs["checkpoint_path"] = self._store.trainer_folder()
        options = {"num_atoms": num_atoms, "truncation_quantile": truncation_quantile, "mcmc_kwargs": mcmc_kwargs}
        self._method = _make_method(method, local, amortizer, self.x_obs, self.prior, options, trainer_kwargs)
        self.amortizer = amortizer
        self.history: list[RoundRecord] = []
        self._rounds: list[dict] = []
        if self._store is not None:
            self._resume()

    @property
    def trainer(self):
        """The :class:`~amortflow.trainers.Trainer` of the last round run (of round 1 before any).

        ``"snpe_c"`` has two, sharing the network: one for round 1 (plain NPE loss) and one for
        the rounds after (atomic loss); the other methods train every round with one.
        """
        return self._method.trainer_for(max(len(self._rounds) - 1, 0))

    @property
    def num_params(self) -> int:
        """``D``, the prior's dimension."""
        return int(self.prior.event_shape[0])

    def _new_seed(self) -> int:
        return int(self._rng.integers(0, 2**31 - 1))

    # --- rounds -----------------------------------------------------------------------------
    def run(self, rounds: int, simulations_per_round: int, epochs: int = 100, batch_size: int = 128,
            **train_kwargs: Any) -> list[RoundRecord]:  # fmt: skip
        """Run ``rounds`` more rounds of ``simulations_per_round`` simulations each.

        Parameters
        ----------
        rounds, simulations_per_round : int
        epochs : int, default 100
            Upper bound of the epochs per round (``train_offline`` stops early by default).
        batch_size : int, default 128
        **train_kwargs
            Passed to :meth:`~amortflow.trainers.Trainer.train_offline` (``early_stopping``,
            ``optimizer``, ``progress``, ...).

        Returns
        -------
        list of RoundRecord
            :attr:`history`, one record per round so far.
        """
        rounds = positive_int("rounds", rounds)
        n = positive_int("simulations_per_round", simulations_per_round)
        for _ in range(rounds):
            self._run_round(n, positive_int("epochs", epochs), positive_int("batch_size", batch_size),
                            train_kwargs)  # fmt: skip
        return self.history

    def _run_round(self, n: int, epochs: int, batch_size: int, train_kwargs: Mapping) -> None:
        index = len(self._rounds)
        raw, acceptance = self._round_simulations(index, n)
        self._rounds.append(raw)
        pooled = concat_raw(self._rounds)
        trainer = self._method.trainer_for(index)
        epoch_before = trainer.epoch
        history = self._method.train(pooled, index, epochs, batch_size, train_kwargs)
        record = RoundRecord(
            round=index + 1, proposal="prior" if index == 0 else self._method.proposal_name,
            simulations=len(raw["prior_draws"]), total_simulations=len(pooled["prior_draws"]),
            proposal_acceptance=acceptance, epochs=trainer.epoch - epoch_before, **_final_losses(history, epoch_before),
        )  # fmt: skip
        self.history.append(record)
        if self._store is not None:
            self._store.record_trained(index, asdict(record), self._rng.bit_generator.state)
        logger.info("SequentialInference round %d (%s proposal): %d simulations, %d in all, %d epochs, loss %.3f.",
                    record.round, record.proposal, record.simulations, record.total_simulations, record.epochs,
                    record.final_train_loss)  # fmt: skip

    def _round_simulations(self, index: int, n: int) -> tuple[dict, float | None]:
        """The raw simulations of round ``index + 1`` and its proposal acceptance: loaded where saved, else made (and saved)."""
        entry = None if self._store is None else self._store.entry(index)
        if entry is not None and entry["n"] != n:
            raise CheckpointError(f"Round {index + 1} of the checkpoint in {self._store.folder} drew {entry['n']} "
                                  f"parameters, but this run asks for simulations_per_round={n}.")  # fmt: skip
        if entry is not None and entry["stage"] == "simulated":
            logger.info("Round %d: its %d simulations are loaded from the checkpoint.", index + 1, n)
            self._rng.bit_generator.state = entry["rng_after_proposal"]
            return self._store.load_simulations(index), entry["acceptance"]
        if entry is not None:  # proposed: the same draws, simulated with the same seed
            logger.info("Round %d: simulating its saved proposal draws.", index + 1)
            self._rng.bit_generator.state = entry["rng_after_proposal"]
            theta, seed, acceptance = self._store.load_proposal(index), entry["simulation_seed"], entry["acceptance"]
        else:
            seed = self._new_seed()
            theta, acceptance = (None, None) if index == 0 else self._propose(n)
            info = {"n": n, "simulation_seed": seed, "acceptance": acceptance,
                    "rng_after_proposal": self._rng.bit_generator.state}  # fmt: skip
            if theta is not None and self._store is not None:
                self._store.record_proposal(index, theta, info)
        raw = self._simulate(theta, n, np.random.default_rng(seed))
        if self._store is not None:
            self._store.record_simulations(index, raw, {"n": n, "simulation_seed": seed, "acceptance": acceptance,
                                                        "rng_after_proposal": self._rng.bit_generator.state})  # fmt: skip
        return raw, acceptance

    def _propose(self, n: int) -> tuple[np.ndarray, float | None]:
        propose = getattr(self._method, "propose", None)  # TSNPE: its own proposal; others: the posterior
        theta = self.sample(n) if propose is None else propose(n, self._new_seed())
        rate = self._method.last_acceptance_rate
        return theta, None if rate is None else float(rate)

    def _simulate(self, theta: np.ndarray | None, n: int, rng: np.random.Generator) -> dict:
        """Round 1 (``theta`` None): ``n`` simulations of the model (prior draws included); later: simulations at ``theta``."""
        if dask_rounds.is_dask_model(self.generative_model):  # round 1 too: the prior is drawn here
            theta = tfp_prior.sample(self.prior, n, rng) if theta is None else theta
            return dask_rounds.simulate_at_on_dask(self.generative_model, theta, rng)
        if theta is None:
            return self.generative_model(n, rng=rng)
        return simulate_at(self.generative_model, theta, rng)

    def _resume(self) -> None:
        """Load the trained rounds of the checkpoint (simulations, history, RNG state) and the networks' Trainer."""
        done = [entry for entry in self._store.rounds if entry["stage"] == "trained"]
        for index, entry in enumerate(done):
            self._rounds.append(self._store.load_simulations(index))
            self.history.append(RoundRecord(**entry["record"]))
        if done:
            self._rng.bit_generator.state = done[-1]["rng_after_round"]
            # the Trainer of the last trained round restores its checkpoint now (SNPE-C's atomic one
            # is built lazily), so that the next proposal is drawn from the trained network
            self._method.trainer_for(len(done) - 1)
            logger.info("SequentialInference resumed from %s after round %d (%d simulations).", self._store.folder,
                        len(done), sum(len(raw["prior_draws"]) for raw in self._rounds))  # fmt: skip

    # --- the posterior for x_obs ------------------------------------------------------------
    def sample(self, n_samples: int, seed: int | None = None) -> np.ndarray:
        """``(n_samples, D)`` posterior draws for ``x_obs``, all inside the prior's support.

        ``"snpe_c"``, ``"tsnpe"``: draws of the posterior network ``q(theta | x_obs)``; ``"snle"`` /
        ``"snre"``: MCMC draws of ``p(theta) q(x_obs | theta)`` / ``p(theta) r(x_obs, theta)``. Draws
        where the prior density is 0 are redrawn.
        """
        n_samples = positive_int("n_samples", n_samples)
        self._require_trained("sample")
        seed = self._new_seed() if seed is None else seed
        kept, have = [], 0
        for attempt in range(MAX_SUPPORT_REDRAWS):
            draws = np.asarray(self._method.sample(n_samples, seed + attempt))
            draws = draws[np.isfinite(np.asarray(self.prior.log_prob(draws.astype(self.prior.dtype.as_numpy_dtype))))]
            kept.append(draws)
            have += len(draws)
            if have >= n_samples:
                return np.concatenate(kept)[:n_samples]
        raise SamplingError(
            f"Only {have} of {MAX_SUPPORT_REDRAWS * n_samples} posterior draws for x_obs fell inside the prior's "
            "support; the posterior estimate puts its mass outside it (train more, or check x_obs)."
        )

    def log_prob(self, theta) -> np.ndarray:
        """Log posterior density of parameter rows ``theta (n, D)`` (or ``(D,)``) given ``x_obs``: ``(n,)``.

        ``"snpe_c"``, ``"tsnpe"``: the network's normalized ``log q(theta | x_obs)``, which is the
        posterior estimate (neither method needs a correction at inference). ``"snle"`` /
        ``"snre"``: the unnormalized ``log p(theta) + log q(x_obs | theta)`` /
        ``+ log r(x_obs, theta)`` (the evidence is unknown). ``-inf`` outside the prior's support.
        """
        self._require_trained("log_prob")
        theta = np.asarray(theta, dtype=np.float32)
        theta = theta[None] if theta.ndim == 1 else theta
        if theta.ndim != 2 or theta.shape[-1] != self.num_params:
            raise ShapeError(f"theta must have shape (n, {self.num_params}), received {describe_shape(theta)}.")
        log_prior = np.asarray(self.prior.log_prob(theta.astype(self.prior.dtype.as_numpy_dtype)), dtype=np.float64)
        values = np.asarray(self._method.log_prob(theta), dtype=np.float64)
        return np.where(np.isfinite(log_prior), values, -np.inf)

    def _require_trained(self, who: str) -> None:
        if not self._rounds:
            raise ArgumentError(f"SequentialInference.{who} needs a trained network; call run(rounds, ...) first.")


def _make_method(method, generative_model, amortizer, x_obs, prior, options: Mapping, trainer_kwargs):
    from amortflow.inference.snle import SNLE
    from amortflow.inference.snpe import SNPEC
    from amortflow.inference.snre import SNRE
    from amortflow.inference.tsnpe import TSNPE

    args = (generative_model, amortizer, x_obs, prior)
    if method in ("snpe_c", "tsnpe"):
        if options["mcmc_kwargs"]:
            raise ArgumentError(
                f"mcmc_kwargs apply to methods 'snle' and 'snre'; method={method!r} samples its network directly."
            )
        if method == "snpe_c":
            return SNPEC(*args, options["num_atoms"], trainer_kwargs)
        return TSNPE(*args, trainer_kwargs, truncation_quantile=options["truncation_quantile"])
    kind = SNLE if method == "snle" else SNRE
    return kind(*args, options["mcmc_kwargs"] or {}, trainer_kwargs)


def _final_losses(history: Mapping, epoch_before: int) -> dict:
    """The mean training loss of the round's last epoch and the round's last validation loss."""
    train, val = history["train_losses"], history["val_losses"]
    last = train[train["Epoch"] == train["Epoch"].max()] if len(train) else train
    val = val[val["Epoch"] > epoch_before]
    return {
        "final_train_loss": float(last["Loss"].mean()) if len(last) else float("nan"),
        "final_val_loss": float(val["Loss"].iloc[-1]) if len(val) else float("nan"),
    }
