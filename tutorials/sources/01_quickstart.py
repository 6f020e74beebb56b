# %% [markdown]
# # Quickstart: amortized posterior estimation
#
# This notebook walks through the whole amortflow workflow on a model whose answer we know
# exactly, so every diagnostic can be read against the truth.
#
# **Model.** We want the means $\boldsymbol\mu \in \mathbb{R}^4$ of a 4-dimensional Gaussian from
# $N = 50$ observations:
#
# $$\boldsymbol\mu \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_4), \qquad
#   \mathbf{x}_n \mid \boldsymbol\mu \sim \mathcal{N}(\boldsymbol\mu, \mathbf{I}_4), \quad n = 1, \dots, 50.$$
#
# The posterior is conjugate: $\boldsymbol\mu \mid \mathbf{x} \sim
# \mathcal{N}\big(\tfrac{N}{N+1}\bar{\mathbf{x}}, \tfrac{1}{N+1}\mathbf{I}_4\big)$.
# amortflow never uses this formula: it learns the posterior from simulations alone.
#
# **Amortization.** We train a neural network once on simulated pairs $(\boldsymbol\mu, \mathbf{x})$.
# Afterwards the posterior of *any* new data set is a single network pass away: no MCMC, no retraining.

# %%
import logging
import time

import matplotlib.pyplot as plt
import numpy as np

import amortflow as af

# Show amortflow's INFO messages (shape reports, validation losses) in the notebook.
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
logging.getLogger("amortflow").setLevel(logging.INFO)

rng = af.set_seed(2024)  # seeds NumPy, TensorFlow and Keras; returns a numpy Generator

# %% [markdown]
# ## 1. The generative model: prior and simulator
#
# A **prior** draws parameter vectors and a **simulator** turns each into a data set. Both can
# be written for one draw at a time (`prior_fun`, `simulator_fun`) or, faster, for a whole
# batch (`batch_prior_fun`, `batch_simulator_fun`). Functions that take an `rng` keyword get a
# `numpy.random.Generator`, which makes simulations repeatable.
#
# The `GenerativeModel` joins the two. On construction it runs two pilot simulations and
# logs the shapes it sees: the first check that the simulator does what you think.

# %%
D, N_OBS = 4, 50


def prior_fun(batch_size, rng):
    """mu ~ N(0, I_4), for a whole batch: (B, 4)."""
    return rng.normal(size=(batch_size, D))


def simulator_fun(mu, rng):
    """50 draws x_n ~ N(mu, I_4) per parameter vector: (B, 4) -> (B, 50, 4)."""
    return rng.normal(loc=mu[:, None, :], size=(mu.shape[0], N_OBS, D))


prior = af.simulation.Prior(batch_prior_fun=prior_fun, param_names=[r"$\mu_1$", r"$\mu_2$", r"$\mu_3$", r"$\mu_4$"])
simulator = af.simulation.Simulator(batch_simulator_fun=simulator_fun)
model = af.simulation.GenerativeModel(prior=prior, simulator=simulator, name="gaussian_means")

# %% [markdown]
# Calling the model returns a *raw* dictionary of NumPy arrays. Besides the parameters
# (`prior_draws`) and data (`sim_data`) it has four context entries, which this model does not
# use (see the time-series tutorial for one that does).

# %%
out = model(batch_size=3, rng=rng)
for key, value in out.items():
    print(f"{key:28s} {value.shape if value is not None else None}")

# %% [markdown]
# ## 2. The networks
#
# The data set is a *set*: the 50 observations are exchangeable, so their order carries no
# information. A `DeepSet` summary network respects that by construction: it maps a set
# $(B, N, 4)$ to a fixed-size vector $(B, 10)$ that does not change when the observations are
# shuffled, and it works for any $N$.

# %%
summary_net = af.networks.DeepSet(summary_dim=10)

x = out["sim_data"].astype("float32")
summaries = summary_net(x)
shuffled = summary_net(x[:, rng.permutation(N_OBS)])
print("data:", x.shape, "-> summaries:", tuple(summaries.shape))
print("same summaries after shuffling the observations:", np.allclose(summaries, shuffled, atol=1e-5))
print("a set of 20 observations works too:", tuple(summary_net(x[:, :20]).shape))

# %% [markdown]
# The inference network is a conditional normalizing flow (`InvertibleNetwork`, the coupling
# flow of BayesFlow). It maps parameters to a standard-normal latent space, conditioned on the
# summaries; run backwards it turns normal draws into posterior draws. The
# `AmortizedPosterior` joins both networks; they are trained together.

# %%
inference_net = af.networks.InvertibleNetwork(num_params=D, num_coupling_layers=4)
amortizer = af.amortizers.AmortizedPosterior(inference_net, summary_net)

# %% [markdown]
# ## 3. The trainer and its configurator
#
# The `Trainer` connects the generative model to the amortizer. Between them sits a
# **configurator**, which turns a raw simulation dict into the float32 inputs the networks
# expect. Here the default does the right thing: the parameters become `parameters` and the
# set-valued data go to the summary network as `summary_conditions`.

# %%
trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model)

conf = trainer.configurator(model(batch_size=3, rng=rng))
for key, value in conf.items():
    print(f"{key:20s}", "None" if value is None else f"{value.shape} {value.dtype}")

# %% [markdown]
# ## 4. Online training
#
# In *online* training every step draws a fresh batch from the simulator, so the networks never
# see the same data set twice and cannot overfit. We run epochs of 1,000 steps with batches of
# 32 and track the loss on 200 fixed validation simulations after each epoch. The learning rate
# decays from $5 \cdot 10^{-4}$ to 0 along a cosine.
#
# BayesFlow's quickstart trains 10 such epochs. We train **5** (160,000 simulated data sets) so that
# this notebook runs in a few minutes on a 2-core CPU (the test suite executes every notebook, and
# training dominates its run time); the diagnostics below are already good. With a few more minutes
# to spare, use `epochs=10`.

# %%
start = time.perf_counter()
history = trainer.train_online(epochs=5, iterations_per_epoch=1000, batch_size=32, validation_sims=200)
seconds = time.perf_counter() - start
print(f"5,000 steps in {seconds:.0f} s ({5_000 / seconds:.0f} steps per second, including the compilation)")

# %% [markdown]
# The history holds one row per step (training) and per epoch (validation). Training and
# validation loss fall together and level off: no sign of overfitting, as expected with
# fresh simulations at every step.

# %%
history["val_losses"]

# %%
fig = af.diagnostics.plot_losses(history["train_losses"], history["val_losses"], moving_average=True)

# %% [markdown]
# ## 5. Diagnostics on new simulations
#
# A trained amortizer is checked on simulations it has never seen. For each of 300 new data
# sets with known true parameters we draw 250 posterior samples, all in one call.

# %%
test_conf = trainer.configurator(model(batch_size=300, rng=np.random.default_rng(1)))
start = time.perf_counter()
test_draws = amortizer.sample(test_conf, n_samples=250)
print(f"{test_draws.shape} posterior draws in {time.perf_counter() - start:.2f} s")
test_truths = test_conf["parameters"]

# %% [markdown]
# **Latent space.** If the flow has learned the posterior, the true parameters pushed through it
# land on a standard normal: round, uncorrelated clouds and bell-shaped marginals.

# %%
z, log_det_J = amortizer(test_conf)
fig = af.diagnostics.plot_latent_space_2d(z)

# %% [markdown]
# **Simulation-based calibration (SBC).** For a calibrated posterior the rank of the true
# parameter among its posterior draws is uniformly distributed. The histograms should stay inside
# the grey band (99% of what uniform ranks give) and the ECDF difference plot inside its 95%
# simultaneous band; systematic bows or slopes would reveal bias, over- or under-confidence.
# A single bin just outside its band is no alarm: with 40 bins, that happens about one time in three
# even for a perfectly calibrated posterior (here every bin is inside). The ECDF band holds for the
# whole curve at once, so it is the stricter check.

# %%
fig = af.diagnostics.plot_sbc_histograms(test_draws, test_truths, num_bins=10, param_names=prior.param_names)

# %%
fig = af.diagnostics.plot_sbc_ecdf(test_draws, test_truths, difference=True, param_names=prior.param_names)

# %% [markdown]
# **Recovery.** Posterior medians against the true values (bars: median absolute deviation).
# With 50 observations the posterior sd is $1/\sqrt{51} \approx 0.14$, so the points hug the
# diagonal.
#
# **z-score and contraction.** Posterior z-scores $(\bar\mu - \mu^*)/\mathrm{sd}$ should scatter
# around 0 within about $\pm 2$; contraction $1 - \mathrm{Var}_\text{post}/\mathrm{Var}_\text{prior}$
# close to 1 means the data were very informative (here the exact value is $1 - 1/51 = 0.98$).

# %%
fig = af.diagnostics.plot_recovery(test_draws, test_truths, param_names=prior.param_names)

# %%
fig = af.diagnostics.plot_z_score_contraction(test_draws, test_truths, param_names=prior.param_names)

# %% [markdown]
# ## 6. Inference on a new data set, against the exact posterior
#
# Now the payoff. We simulate one "observed" data set, configure it like the training data
# (it has no `prior_draws`, so `parameters` is `None`) and draw 2,000 posterior samples in a few
# milliseconds. The conjugate formula gives the exact posterior to compare with.

# %%
mu_true = np.array([0.8, -0.5, 0.3, 1.2])
x_obs = simulator_fun(mu_true[None], np.random.default_rng(7))  # (1, 50, 4)
obs_conf = trainer.configurator({"sim_data": x_obs})

start = time.perf_counter()
draws = amortizer.sample(obs_conf, n_samples=2000, squeeze=True)  # (2000, 4)
print(f"2,000 posterior draws in {1000 * (time.perf_counter() - start):.0f} ms")

exact_mean = x_obs[0].sum(axis=0) / (N_OBS + 1)
exact_sd = np.sqrt(1 / (N_OBS + 1))
exact_draws = np.random.default_rng(8).normal(exact_mean, exact_sd, size=(2000, D))
print("posterior mean, amortized:", np.round(draws.mean(axis=0), 3))
print("posterior mean, exact:    ", np.round(exact_mean, 3))
print("posterior sd,   amortized:", np.round(draws.std(axis=0), 3))
print(f"posterior sd,   exact:     {exact_sd:.3f} (all four)")

# %% [markdown]
# The pair plot overlays the amortized posterior (blue) on the exact one (orange), with the
# true means marked. A classifier two-sample test (C2ST) quantifies the difference: an accuracy of
# 0.5 means a neural classifier cannot tell the two sets of draws apart, 1.0 that it always can.
# Even after our shortened training the classifier cannot tell them apart here (C2ST about 0.5);
# on other data sets small shifts of a fraction of a posterior standard deviation can remain.

# %%
fig = af.diagnostics.pairplot(
    [draws, exact_draws], points=mu_true, labels=prior.param_names, legend_labels=["amortflow", "exact"]
)
print(f"C2ST accuracy (0.5 = indistinguishable): {af.diagnostics.c2st(exact_draws, draws):.3f}")

# %% [markdown]
# ## Posterior predictive check, and ArviZ
#
# Data simulated at posterior draws should look like the observation. `posterior_predictive`
# runs the simulator once per draw (here for the first 500 draws) and `plot_posterior_predictive`
# compares the simulated values with the observed ones, channel by channel. `to_inference_data`
# hands the draws (with the observation and the predictive data) to ArviZ, whose summaries and
# plots then work as for any MCMC output (ArviZ is an optional extra: `pip install amortflow[arviz]`).

# %%
import arviz as az

predictive = af.simulation.posterior_predictive(model, draws, rng=9, max_draws=500)  # (500, 50, 4)
fig = af.diagnostics.plot_posterior_predictive(x_obs[0], predictive, data_names=[f"x_{i + 1}" for i in range(D)])
idata = af.diagnostics.to_inference_data(draws, param_names=prior.param_names, observed=x_obs[0],
                                         posterior_predictive=predictive)
print(az.summary(idata, kind="stats", round_to=3))

# %% [markdown]
# ## Where to go next
#
# * Save the trained amortizer with `amortizer.save("gaussian_means.keras")` and load it with
#   `af.utils.load_amortizer("gaussian_means.keras")` (or `keras.saving.load_model`; the former
#   names a damaged file as such).
# * `02_amortized_linear_gaussian` trains offline on a fixed budget of simulations and handles a
#   bounded prior; `05_training_modes` shows every way to feed the trainer.
