# %% [markdown]
# # Fields on a grid: Gaussian random maps with a power-law spectrum
#
# Many simulators produce *fields*: temperature on a mesh, density in a cosmological volume, a
# map of the sky. Their data are images, not sets or series, and the information sits in spatial
# structure. This tutorial trains neural posterior estimation on maps with `ConvSummary`, a
# residual convolutional summary network, and checks calibration and recovery.
#
# **Model.** A Gaussian random field on a periodic $32 \times 32$ grid whose power spectrum is a
# power law, as for the matter distribution in cosmology:
#
# $$P(k) = A \, (k / k_0)^{-n}, \qquad \log_{10} A \sim \mathcal{U}(-1, 1), \quad n \sim \mathcal{U}(1, 4),$$
#
# observed with white noise of standard deviation 0.1. The amplitude $A$ sets how strongly the
# map varies, the slope $n$ how smooth it is (large $n$: power on large scales). Each map is
# simulated in Fourier space: white noise times $\sqrt{P(k)}$, transformed back (numpy only).

# %%
import logging
import time

import numpy as np
import tensorflow_probability as tfp

import amortflow as af

tfd = tfp.distributions
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
rng = af.set_seed(9)

GRID = 32
NOISE_SD = 0.1
names = [r"$\log_{10} A$", r"$n$"]

# |k| on the grid in units of the fundamental mode k_0 = 2 pi / GRID; the k = 0 mode (the mean) is dropped.
k = np.sqrt(np.add.outer(np.fft.fftfreq(GRID) ** 2, np.fft.fftfreq(GRID) ** 2)) * GRID
k[0, 0] = np.inf


def simulate_fields(theta, rng):
    """Maps ``(B, GRID, GRID, 1)`` for parameters ``theta = (log10 A, n)`` of shape ``(B, 2)``."""
    amplitude, slope = 10.0 ** theta[:, 0], theta[:, 1]
    power = amplitude[:, None, None] * k[None] ** (-slope[:, None, None])
    white = np.fft.fft2(rng.normal(size=(len(theta), GRID, GRID)))
    field = np.fft.ifft2(white * np.sqrt(power)).real
    return (field + NOISE_SD * rng.normal(size=field.shape))[..., None]


prior = af.simulation.Prior(
    distribution=tfd.Independent(tfd.Uniform(low=[-1.0, 1.0], high=[1.0, 4.0]), reinterpreted_batch_ndims=1),
    param_names=names,
)
model = af.simulation.GenerativeModel(prior, af.simulation.Simulator(batch_simulator_fun=simulate_fields),
                                      name="power_law_maps")

# %% [markdown]
# Six maps on one colour scale: the amplitude grows from left to right, the slope from top to
# bottom. A steep spectrum gives smooth, large blobs; a faint field is hard to tell from the noise.

# %%
import matplotlib.pyplot as plt

demo = np.array([[a, n] for n in (1.5, 3.5) for a in (-0.5, 0.3, 0.9)])
maps = simulate_fields(demo, np.random.default_rng(0))
limit = np.abs(maps).max()
fig, axes = plt.subplots(2, 3, figsize=(7.5, 5))
for ax, theta, field in zip(axes.ravel(), demo, maps):
    ax.imshow(field[..., 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"log10 A = {theta[0]}, n = {theta[1]}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# ## Networks
#
# `ConvSummary` reads fields channels-last, `(B, 32, 32, 1)`. Each of its three stages is a
# residual block of two $3 \times 3$ convolutions followed by average pooling by 2, so the grid
# size must be a multiple of $2^3 = 8$; global average pooling then gives a fixed-size summary for
# any such grid. The summaries feed the default coupling flow. The default configurator passes
# the maps as `summary_conditions`, and the amortizer standardizes them (and the parameters) with
# statistics of the first training batches.

# %%
summary_net = af.networks.ConvSummary(summary_dim=8, num_stages=3, filters=8)
amortizer = af.amortizers.AmortizedPosterior(af.networks.InvertibleNetwork(num_params=2), summary_net)
trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model, seed=1)
conf = trainer.configurator(model(batch_size=2, rng=rng))
print({key: None if value is None else value.shape for key, value in conf.items()})

# %% [markdown]
# ## Online training
#
# Simulating a batch of maps takes about a millisecond, so every step gets fresh simulations.
# 3 epochs of 300 steps with batches of 32 keep this notebook to a few minutes on a 2-core CPU
# (convolutions dominate the cost); longer training sharpens the posteriors further.

# %%
start = time.perf_counter()
history = trainer.train_online(epochs=3, iterations_per_epoch=300, batch_size=32, validation_sims=300, progress=False)
print(f"trained in {time.perf_counter() - start:.0f} s")
fig = af.diagnostics.plot_losses(history["train_losses"], history["val_losses"], moving_average=True)

# %% [markdown]
# ## Calibration and recovery on 300 new maps
#
# Simulation-based calibration: the rank of each true parameter among its posterior draws should
# be uniform, so the ECDF difference stays inside the band. Recovery: posterior medians against
# the truth.

# %%
test = model(batch_size=300, rng=np.random.default_rng(11))
test_conf = trainer.configurator(test)
draws = amortizer.sample(test_conf, n_samples=250, seed=3)
fig = af.diagnostics.plot_sbc_ecdf(draws, test_conf["parameters"], difference=True, param_names=names)

# %% [markdown]
# After only 900 training steps the ECDF differences of both parameters stay inside the 95 %
# band, but above zero for most ranks and close to the band's edge near rank 0.35 for
# $\log_{10} A$: true values rank low among their draws slightly more often than they should, so
# the posteriors sit a little too high. SBC shows this where the loss curve does not; train
# longer (more epochs) before relying on these posteriors.

# %%
fig = af.diagnostics.plot_recovery(draws, test_conf["parameters"], param_names=names)

# %% [markdown]
# Both parameters are recovered ($R^2$ above 0.8): the amplitude most tightly where the field
# dominates the noise (large $A$), the slope from how the power is shared between large and small
# scales. Where the field is faint next to the noise the posteriors widen toward the prior.
#
# ## One map, its posterior
#
# A map with $\log_{10} A = 0.2$ and $n = 2.5$, and 4,000 posterior draws from one network call.

# %%
theta_true = np.array([[0.2, 2.5]])
x_obs = simulate_fields(theta_true, np.random.default_rng(12))
posterior = amortizer.sample(trainer.configurator({"sim_data": x_obs}), n_samples=4000, seed=4, squeeze=True)
print("posterior mean", np.round(posterior.mean(axis=0), 3), " sd", np.round(posterior.std(axis=0), 3))
fig = af.diagnostics.pairplot(posterior, points=theta_true[0], labels=names)
