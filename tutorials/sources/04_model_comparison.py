# %% [markdown]
# # Amortized Bayesian model comparison
#
# Which of several simulators produced the data? With models $m = 1, \dots, M$ and prior model
# probabilities $p(m)$, Bayesian model comparison asks for the *posterior model probabilities*
# $p(m \mid x)$. Their exact computation needs each model's marginal likelihood $p(x \mid m)$,
# an integral over all parameters that is out of reach for most simulators.
#
# Amortized model comparison (Radev et al., 2021) trains a classifier on simulations
# $m \sim p(m)$, $x \sim p(x \mid m)$. Trained with a proper scoring rule (here cross-entropy), its
# output converges to $p(m \mid x)$, for any data set, in one network pass.
#
# **Three models** for a set of 50 observations, each with a location $\mu \sim \mathcal{N}(0, 1)$
# and a scale $\sigma \sim \mathcal{U}(0.5, 2)$, differing in the *shape* of the noise:
#
# 1. Gaussian: $x_n = \mu + \sigma\,\varepsilon_n$, $\varepsilon_n \sim \mathcal{N}(0, 1)$;
# 2. heavy-tailed: $\varepsilon_n \sim t_3 / \sqrt{3}$ (Student-t with 3 degrees of freedom, unit variance);
# 3. skewed: $\varepsilon_n \sim \mathrm{Exp}(1) - 1$ (mean 0, variance 1).
#
# Mean and variance cannot tell them apart; only the shape of the distribution can.

# %%
import logging
import time

import numpy as np

import amortflow as af
from amortflow.networks.classifiers import ModelClassifier

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
rng = af.set_seed(4)
N_OBS = 50
model_names = ["Gaussian", "heavy-tailed", "skewed"]


def prior_fun(batch_size, rng):
    return np.column_stack([rng.normal(size=batch_size), rng.uniform(0.5, 2.0, size=batch_size)])


def make_simulator(noise):
    def simulate(theta, rng):
        eps = noise(rng, (theta.shape[0], N_OBS, 1))
        return theta[:, None, :1] + theta[:, None, 1:] * eps

    return simulate


noises = [
    lambda rng, size: rng.normal(size=size),
    lambda rng, size: rng.standard_t(3, size=size) / np.sqrt(3.0),
    lambda rng, size: rng.exponential(size=size) - 1.0,
]
models = [
    af.simulation.GenerativeModel(
        af.simulation.Prior(batch_prior_fun=prior_fun, param_names=["mu", "sigma"]),
        af.simulation.Simulator(batch_simulator_fun=make_simulator(noise)),
        name=name,
        skip_test=True,
    )
    for name, noise in zip(model_names, noises)
]

# %% [markdown]
# `MultiGenerativeModel` draws a model index for every simulation (here with equal prior
# probabilities) and then a data set from that model. Its output keeps each model's raw
# simulations apart, together with the model indices.

# %%
multi_model = af.simulation.MultiGenerativeModel(models)
out = multi_model(batch_size=6, rng=rng)
print("model indices:", out["model_indices"])
print("data per model:", [None if o is None else o["sim_data"].shape for o in out["model_outputs"]])

# %% [markdown]
# ## The amortizer
#
# A `DeepSet` summarizes each set of 50 observations; a `ModelClassifier` maps the summaries to
# the logits of the 3 models. The trainer's default configurator merges the per-model simulations
# into one batch with one-hot `model_indices`.

# %%
summary_net = af.networks.DeepSet(summary_dim=16)
classifier = ModelClassifier(num_models=3)
amortizer = af.amortizers.AmortizedModelComparison(classifier, summary_net)
trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=multi_model)

conf = trainer.configurator(multi_model(batch_size=4, rng=rng))
for key, value in conf.items():
    print(f"{key:20s}", "None" if value is None else f"{value.shape} {value.dtype}")

# %% [markdown]
# ## Online training
#
# Every step simulates a fresh batch of 64 data sets from randomly chosen models.

# %%
start = time.perf_counter()
history = trainer.train_online(epochs=6, iterations_per_epoch=500, batch_size=64, validation_sims=500)
print(f"trained in {time.perf_counter() - start:.0f} s")
fig = af.diagnostics.plot_losses(history["train_losses"], history["val_losses"], moving_average=True)

# %% [markdown]
# ## Checking the classifier on 2,000 new simulations
#
# The **confusion matrix** shows how often the most probable model is the true one. The skewed
# model is easy to recognize; Gaussian and heavy-tailed data sets of 50 observations sometimes
# look alike, so some confusion between them is the honest answer, not a failure.

# %%
test_conf = trainer.configurator(multi_model(batch_size=2000, rng=np.random.default_rng(1)))
true_models = test_conf["model_indices"]  # one-hot, (2000, 3)
probs = amortizer.posterior_probs(test_conf)  # (2000, 3), rows sum to 1
accuracy = np.mean(probs.argmax(1) == true_models.argmax(1))
print(f"accuracy of the most probable model: {accuracy:.3f}")
fig = af.diagnostics.plot_confusion_matrix(true_models, probs, model_names=model_names)

# %% [markdown]
# **Calibration.** Accuracy is not the point of Bayesian model comparison: the probabilities
# must be *calibrated*. Among all data sets where the network says "model 2 with probability 0.7",
# model 2 should be the truth 70% of the time. The calibration curves bin the predicted
# probabilities and plot the observed frequency in each bin: on the diagonal means calibrated.
# The expected calibration error (ECE) is the average distance from the diagonal. The dot sizes show
# how many data sets fall into each bin: skewed data sets are recognized with probabilities near 0
# or 1, so its few middle bins hold only a handful of data sets and that curve is noisy there.

# %%
fig = af.diagnostics.plot_calibration_curves(true_models, probs, model_names=model_names)
print("expected calibration error per model:", np.round(af.diagnostics.expected_calibration_error(true_models, probs), 3))

# %% [markdown]
# ## Posterior model probabilities for observed data
#
# For a new data set the posterior model probabilities come in one network pass. The Bayes
# factor of model $j$ over model $k$ is the ratio of their posterior probabilities divided by
# the ratio of their prior probabilities (here equal, so the prior ratio is 1).

# %%
obs_rng = np.random.default_rng(7)
observed = np.concatenate([make_simulator(noise)(np.array([[0.3, 1.2]]), obs_rng) for noise in noises])
obs_probs = amortizer.posterior_probs(trainer.configurator({"sim_data": observed}))
for name, p in zip(model_names, obs_probs):
    bf = p[0] / p[1]
    print(f"data from the {name:12s} model: p(m | x) = {np.round(p, 3)},  Bayes factor Gaussian vs heavy-tailed = {bf:.2f}")
