"""What the benchmark protocols share: checked settings, the seeded budget, training with early stopping, C2ST scoring.

Used by the NPE protocol (:mod:`~amortflow.benchmarks.runner`) and the NLE/NRE protocol
(:mod:`~amortflow.benchmarks.nle_nre`), so that for a seed and budget both see the same
simulations and are scored against the same reference samples with the same classifier.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from amortflow._checks import positive_int
from amortflow.exceptions import ArgumentError

logger = logging.getLogger("amortflow")

#: The C2ST classifiers a run can be scored with (see :func:`c2st_against_reference`).
C2ST_CLASSIFIERS = ("benchmark", "early_stopping")


def prepare_run(task: str, num_simulations: int, num_observations: int, num_posterior_samples: int,
                epochs: int | None, settings: Mapping[str, Any] | None, c2st_classifier: str,
                defaults: Mapping[str, Any]):  # fmt: skip
    """Check a run's arguments; return its ``Benchmark`` and settings.

    ``defaults`` are the method's settings (e.g. :func:`~amortflow.benchmarks.runner.default_settings`),
    over which the user's ``settings`` are merged. Raises :class:`ArgumentError` on a bad argument.
    """
    from amortflow.benchmarks import Benchmark
    from amortflow.benchmarks.tasks import get_task

    for name, value in (("num_simulations", num_simulations), ("num_observations", num_observations),
                        ("num_posterior_samples", num_posterior_samples)):  # fmt: skip
        positive_int(name, value)
    if c2st_classifier not in C2ST_CLASSIFIERS:
        raise ArgumentError(f"c2st_classifier must be one of {C2ST_CLASSIFIERS}, received {c2st_classifier!r}.")
    task_info = get_task(task)
    if num_observations > task_info.num_observations:
        raise ArgumentError(
            f"num_observations must be at most {task_info.num_observations} for {task}, received {num_observations}."
        )
    config = merge_benchmark_settings(dict(defaults), settings)
    config["c2st_classifier"] = c2st_classifier
    if epochs is not None:
        config["max_epochs"] = positive_int("epochs", epochs)
    return Benchmark(task, parameter_space=config.get("parameter_space", "identity")), config


def simulate_budget(bench, num_simulations: int, seed: int) -> dict:
    """The raw training simulations of a run (same ``seed`` and budget, same simulations).

    Exposed so that competitors (``benchmarks/accuracy.py --with-sbi``) train on the very same pairs.
    """
    return bench.generative_model(int(num_simulations), rng=np.random.default_rng([int(seed), int(num_simulations)]))


def merge_benchmark_settings(defaults: dict, overrides: Mapping | None) -> dict:
    """``overrides`` over a protocol's ``defaults``: unknown keys rejected, dict entries merged key by key."""
    out = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in out:
            raise ArgumentError(f"Unknown benchmark setting {key!r}; expected one of {sorted(out)}.")
        out[key] = {**out[key], **value} if isinstance(out[key], dict) else value
    return out


def train_with_early_stopping(bench, amortizer, raw: Mapping, config: Mapping, seed: int, progress: bool,
                              configurator=None) -> dict:  # fmt: skip
    """Offline training on a seeded ``1 - validation_fraction`` split, stopped by the Trainer's own early stopping.

    One ``train_offline`` run of at most ``max_epochs`` epochs with one cosine-decayed Adam over
    them (``learning_rate``), validated on the held-out rows after every epoch; it stops after
    ``patience`` epochs without a lower validation loss and ends with the weights of the lowest
    (:class:`~amortflow.trainers.EarlyStopper` with ``tolerance=0``, sbi's rule).
    ``configurator`` defaults to ``bench.configurator`` (posterior estimation's inputs).

    Returns ``{"epochs", "best_epoch", "best_val_loss"}``.
    """
    from amortflow.trainers import Trainer
    from amortflow.trainers.optimizers import default_optimizer

    n = len(raw["prior_draws"])
    n_val = max(1, int(round(config["validation_fraction"] * n)))
    order = np.random.default_rng([seed, 7]).permutation(n)
    train_raw, val_raw = _rows(raw, order[n_val:]), _rows(raw, order[:n_val])
    trainer = Trainer(amortizer, generative_model=bench.generative_model, configurator=configurator or bench.configurator,
                      seed=int(seed), skip_checks=True, progress=progress)  # fmt: skip
    batch_size, max_epochs = int(config["batch_size"]), int(config["max_epochs"])
    steps_per_epoch = -(-(n - n_val) // batch_size)
    optimizer = default_optimizer(steps_per_epoch * max_epochs, float(config["learning_rate"]))
    stopping = {"patience": int(config["patience"]), "tolerance": 0.0, "restore_best_weights": True}
    history = trainer.train_offline(train_raw, epochs=max_epochs, batch_size=batch_size, optimizer=optimizer,
                                    early_stopping=stopping, validation_sims=val_raw, save_checkpoint=False)  # fmt: skip
    losses = history["val_losses"]["Loss"].to_numpy()
    finite = np.where(np.isfinite(losses), losses, np.inf)
    best_index = int(np.argmin(finite))
    best = float(finite[best_index])
    best_epoch = int(history["val_losses"]["Epoch"].iloc[best_index]) if np.isfinite(best) else 0
    logger.info("Best validation loss %.3f at epoch %d of %d.", best, best_epoch, trainer.epoch)
    return {"epochs": trainer.epoch, "best_epoch": best_epoch, "best_val_loss": best}


def c2st_against_reference(
    bench, observation: int, draws: np.ndarray, seed: int, classifier: str = "benchmark"
) -> tuple[float, float, float]:
    """C2ST of ``draws (S, D)`` against ``S`` reference samples of ``observation`` (reference seed 0).

    ``classifier="benchmark"``: the paper's MLP (up to 10,000 epochs); ``"early_stopping"``: the same MLP
    stopped on a 10 % validation split (:func:`amortflow.diagnostics.c2st` with ``early_stopping=True``).
    Returns ``(c2st, seconds for the reference samples, seconds for the classifier)``.
    """
    import amortflow.diagnostics  # looked up at call time (tests replace the classifier)

    draws = np.asarray(draws, dtype=np.float64)
    start = time.perf_counter()
    reference = bench.reference_posterior_samples(observation, len(draws), rng=0)
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    value = amortflow.diagnostics.c2st(reference, draws, seed=int(seed), early_stopping=classifier == "early_stopping")
    logger.info("%s observation %d: C2ST %.3f", bench.name, observation, value)
    return value, reference_s, time.perf_counter() - start


def _rows(raw: Mapping, index: np.ndarray) -> dict:
    """Rows ``index`` of the batchable entries of a raw dict (others are kept as they are)."""
    n = len(raw["prior_draws"])
    out = {}
    for key, value in raw.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n and "non_batchable" not in key:
            out[key] = value[index]
        else:
            out[key] = value
    return out

