"""The quickstart job: amortized posterior estimation of the means of a 4-D Gaussian.

Model (as in BayesFlow's introductory tutorial)::

    theta ~ N(0, I_4),    x_n | theta ~ N(theta, I_4),  n = 1..50

The posterior is conjugate: ``theta | x ~ N(n xbar / (n + 1), I / (n + 1))``, so the
diagnostics written here (SBC, recovery, z-score/contraction) can be read against a known answer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

NUM_PARAMS = 4
N_OBS = 50

logger = logging.getLogger("amortflow")


def gaussian_means_prior(batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``theta ~ N(0, I_4)`` for a whole batch."""
    return rng.normal(size=(batch_size, NUM_PARAMS))


def gaussian_means_simulator(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulate ``N_OBS`` i.i.d. draws ``x_n ~ N(theta, I)`` per parameter vector: (B, D) -> (B, N_OBS, D)."""
    return rng.normal(loc=theta[:, None, :], size=(theta.shape[0], N_OBS, theta.shape[1]))


def analytic_posterior(sim_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact posterior means ``(B, D)`` and standard deviation (scalar) for data ``(B, N, D)``."""
    n = sim_data.shape[1]
    return sim_data.sum(axis=1) / (n + 1.0), np.sqrt(1.0 / (n + 1.0))


def build_quickstart(seed: int = 2024):
    """Return ``(generative_model, amortizer)`` of the quickstart configuration."""
    import amortflow as af

    af.set_seed(seed)
    prior = af.simulation.Prior(batch_prior_fun=gaussian_means_prior, param_names=[f"mu_{i + 1}" for i in range(NUM_PARAMS)])
    simulator = af.simulation.Simulator(batch_simulator_fun=gaussian_means_simulator)
    model = af.simulation.GenerativeModel(prior=prior, simulator=simulator, prior_is_batched=True, name="gaussian_means")
    summary_net = af.networks.DeepSet(summary_dim=10)
    inference_net = af.networks.InvertibleNetwork(num_params=NUM_PARAMS, num_coupling_layers=4)
    amortizer = af.amortizers.AmortizedPosterior(inference_net, summary_net)
    return model, amortizer


def run_quickstart(
    out_dir: str | Path,
    epochs: int = 10,
    iterations_per_epoch: int = 1000,
    batch_size: int = 32,
    validation_sims: int = 200,
    n_test_datasets: int = 300,
    n_posterior_draws: int = 500,
    seed: int = 2024,
) -> dict[str, Path]:
    """Train the quickstart model online and write its diagnostic plots to ``out_dir``.

    Returns
    -------
    dict
        Name -> path of every file written (plots, the trained amortizer, the loss history).
    """
    import amortflow as af

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, amortizer = build_quickstart(seed)
    trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model, checkpoint_path=out_dir / "checkpoints")

    start = time.perf_counter()
    history = trainer.train_online(
        epochs=epochs, iterations_per_epoch=iterations_per_epoch, batch_size=batch_size, validation_sims=validation_sims
    )
    train_seconds = time.perf_counter() - start

    rng = np.random.default_rng(seed + 1)
    test_sims = trainer.configurator(model(n_test_datasets, rng=rng))
    draws = amortizer.sample(test_sims, n_samples=n_posterior_draws, seed=seed)
    truths = test_sims["parameters"]
    z, _ = amortizer(test_sims)
    names = model.prior.param_names

    written = {
        "losses": out_dir / "losses.png",
        "latent_space": out_dir / "latent_space.png",
        "sbc_histograms": out_dir / "sbc_histograms.png",
        "sbc_ecdf": out_dir / "sbc_ecdf.png",
        "recovery": out_dir / "recovery.png",
        "z_score_contraction": out_dir / "z_score_contraction.png",
    }
    diag = af.diagnostics
    diag.plot_losses(history["train_losses"], history["val_losses"], moving_average=True, save_path=written["losses"])
    diag.plot_latent_space_2d(np.asarray(z), save_path=written["latent_space"])
    diag.plot_sbc_histograms(draws, truths, num_bins=10, param_names=names, save_path=written["sbc_histograms"])
    diag.plot_sbc_ecdf(draws, truths, difference=True, param_names=names, save_path=written["sbc_ecdf"])
    diag.plot_recovery(draws, truths, param_names=names, save_path=written["recovery"])
    diag.plot_z_score_contraction(draws, truths, param_names=names, save_path=written["z_score_contraction"])

    written["amortizer"] = out_dir / "amortizer.keras"
    amortizer.save(written["amortizer"])
    written["history"] = out_dir / "train_losses.csv"
    history["train_losses"].to_csv(written["history"], index=False)

    raw = test_sims.get("summary_conditions")
    exact_means, exact_sd = analytic_posterior(np.asarray(raw))
    mean_error = float(np.sqrt(np.mean((draws.mean(axis=1) - exact_means) ** 2)))
    sd_ratio = float(np.mean(draws.std(axis=1)) / exact_sd)
    steps = epochs * iterations_per_epoch
    logger.info("Trained %d steps in %.1f s (%.0f it/s).", steps, train_seconds, steps / train_seconds)
    summary = (
        f"Trained {steps} steps in {train_seconds:.1f} s ({steps / train_seconds:.0f} it/s). "
        f"Against the exact posterior on {n_test_datasets} new data sets: RMSE of posterior means "
        f"{mean_error:.3f} (exact sd {exact_sd:.3f}), mean sd / exact sd = {sd_ratio:.2f}."
    )
    (out_dir / "summary.txt").write_text(summary + "\n")
    written["summary"] = out_dir / "summary.txt"
    print(summary)
    return written
