# %% [markdown]
# # Training modes, checkpoints and resuming
#
# Every training mode of the `Trainer` runs the same compiled training step; the modes differ
# only in **where the batches come from**:
#
# | mode | batches come from | use it when |
# |---|---|---|
# | `train_online` | fresh simulations at every step | simulating is cheap (fast, never overfits) |
# | `train_experience_replay` | fresh simulations mixed into a replay buffer | simulating is moderately expensive |
# | `train_rounds` | a new round of simulations per round; all rounds so far | you want to watch the effect of the budget |
# | `train_offline` | a fixed set of simulations in memory | the budget is fixed and fits in memory |
# | `train_from_presimulation` | shards on disk, streamed with shuffling | simulations are made elsewhere (a cluster) or exceed memory |
#
# We try each on one small model with a known posterior and compare the results. The last
# section shows checkpoints: a run that stops (finished, crashed or killed) is continued by
# creating a new trainer with the same `checkpoint_path`.
#
# **Model.** The means of a 2-D Gaussian from 20 observations, $\boldsymbol\mu \sim \mathcal{N}(\mathbf{0}, \mathbf{I})$,
# $\mathbf{x}_n \sim \mathcal{N}(\boldsymbol\mu, \mathbf{I})$; the exact posterior is
# $\mathcal{N}\big(\sum_n \mathbf{x}_n / 21, \mathbf{I}/21\big)$.
# The training budgets are deliberately small (about 500 steps per mode) so that the whole
# notebook runs in a few minutes on a 2-core CPU: enough to get close to the posterior of this easy
# model, not to match it exactly.
# Simulation counts are multiples of the batch size (64), so every batch is full.

# %%
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

import amortflow as af

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
rng = af.set_seed(5)
N_OBS = 20


def prior_fun(batch_size, rng):
    return rng.normal(size=(batch_size, 2))


def simulator_fun(mu, rng):
    return rng.normal(loc=mu[:, None, :], size=(mu.shape[0], N_OBS, 2))


model = af.simulation.GenerativeModel(
    af.simulation.Prior(batch_prior_fun=prior_fun), af.simulation.Simulator(batch_simulator_fun=simulator_fun), skip_test=True
)

# Fixed test data sets and their exact posterior means to score every mode the same way.
test_raw = model(batch_size=500, rng=np.random.default_rng(0))
exact_means = test_raw["sim_data"].sum(axis=1) / (N_OBS + 1)
exact_sd = 1 / np.sqrt(N_OBS + 1)


def new_amortizer():
    """Fresh, untrained networks (the same architecture for every mode)."""
    return af.amortizers.AmortizedPosterior(
        af.networks.InvertibleNetwork(num_params=2, num_coupling_layers=3), af.networks.DeepSet(summary_dim=6)
    )


results = []


def score(mode, trainer, n_sims, seconds):
    """Compare posterior means and sds on the test data sets with the exact ones."""
    draws = trainer.amortizer.sample(trainer.configurator(test_raw), n_samples=200, seed=1)
    rmse = np.sqrt(np.mean((draws.mean(axis=1) - exact_means) ** 2))
    sd_ratio = draws.std(axis=1).mean() / exact_sd
    results.append({"mode": mode, "simulations": n_sims, "steps": trainer.step, "seconds": round(seconds, 1),
                    "RMSE of posterior mean": round(rmse, 4), "posterior sd / exact": round(sd_ratio, 3)})  # fmt: skip
    print(f"{mode}: {trainer.step} steps in {seconds:.0f} s; RMSE of posterior means {rmse:.3f}, sd ratio {sd_ratio:.3f}")


# %% [markdown]
# ## 1. Online training
#
# The baseline: 512 steps, each on 64 brand-new simulations.

# %%
trainer = af.trainers.Trainer(new_amortizer(), model, progress=False)
start = time.perf_counter()
history = trainer.train_online(epochs=2, iterations_per_epoch=256, batch_size=64)
score("online", trainer, 2 * 256 * 64, time.perf_counter() - start)

# %% [markdown]
# ## 2. Experience replay
#
# Each step simulates a batch into a bounded replay buffer (here 1,024 simulations; the oldest
# are replaced first) and trains on a batch drawn from the buffer, so every simulation is used
# several times. (In a real application each step would simulate fewer data sets than it trains on.)

# %%
trainer = af.trainers.Trainer(new_amortizer(), model, progress=False)
start = time.perf_counter()
history = trainer.train_experience_replay(epochs=2, iterations_per_epoch=256, batch_size=64, buffer_capacity=1024)
score("experience replay", trainer, 2 * 256 * 64, time.perf_counter() - start)

# %% [markdown]
# ## 3. Rounds
#
# Each round simulates 1,024 new data sets and trains 3 epochs on all rounds so far.

# %%
trainer = af.trainers.Trainer(new_amortizer(), model, progress=False)
start = time.perf_counter()
history = trainer.train_rounds(rounds=3, sim_per_round=1024, epochs=3, batch_size=64)
score("rounds", trainer, 3 * 1024, time.perf_counter() - start)

# %% [markdown]
# The history's `Epoch` column counts the epochs of all rounds (3 per round):

# %%
history["train_losses"].groupby("Epoch")["Loss"].mean().round(3).to_frame("mean loss").T

# %% [markdown]
# ## 4. Offline, from memory
#
# A fixed budget of 2,048 simulations, simulated once and reshuffled every epoch.

# %%
simulations = model(batch_size=2048, rng=rng)
trainer = af.trainers.Trainer(new_amortizer(), model, progress=False)
start = time.perf_counter()
history = trainer.train_offline(simulations, epochs=16, batch_size=64)
score("offline (memory)", trainer, 2048, time.perf_counter() - start)

# %% [markdown]
# ## 5. Presimulated shards on disk
#
# For simulators that run elsewhere (e.g. as a cluster job), or for data larger than memory,
# simulate into **shards** on disk first. `presimulate_and_save` writes one `.npz` file per batch
# and a manifest; a run that is interrupted resumes at the first missing shard.

# %%
folder = Path("presimulated")
model.presimulate_and_save(folder, batch_size=512, n_batches=4, seed=1)
print(sorted(p.name for p in folder.iterdir()))
print({k: v for k, v in af.simulation.read_manifest(folder).items() if k in ("batch_size", "n_batches", "seed")})

# %% [markdown]
# `train_from_presimulation` streams the shards: every epoch visits them in a new random order and
# mixes their simulations in a shuffle buffer, so only the buffer and one shard are in memory.

# %%
trainer = af.trainers.Trainer(new_amortizer(), model, progress=False)
start = time.perf_counter()
history = trainer.train_from_presimulation(folder, epochs=16, batch_size=64, shuffle_buffer=1024)
score("offline (disk)", trainer, 2048, time.perf_counter() - start)

# %% [markdown]
# All modes get close to the exact posterior: the RMSE of the posterior means is about 0.03, a
# seventh of the exact posterior sd (0.218), and the posterior sds are within about 10% of the
# exact ones. With budgets this small, differences of this size between the modes are mostly
# chance. The modes that reuse simulations (rounds, offline) got there with 2,000 to 3,000
# simulations instead of 33,000: what matters when a simulation takes minutes, not microseconds.

# %%
pd.DataFrame(results)

# %% [markdown]
# ## 6. Checkpoints and resuming
#
# With a `checkpoint_path` the trainer saves, after every epoch (and every `checkpoint_every`
# steps), everything needed to continue: the network weights, the optimizer state, the step
# count, the history and the random-number streams.

# %%
checkpoints = Path("checkpoints").resolve()
logging.getLogger("amortflow").setLevel(logging.INFO)  # show checkpoint messages
trainer = af.trainers.Trainer(new_amortizer(), model, checkpoint_path=checkpoints, progress=False)
history = trainer.train_online(epochs=2, iterations_per_epoch=128, batch_size=64, validation_sims=300)
print("steps:", trainer.step, " files:", sorted(p.name for p in checkpoints.iterdir()))

# %% [markdown]
# Later, for example in a new Python session, create the networks and a trainer with the same
# `checkpoint_path`. The trainer restores the newest checkpoint: the weights, the step count and the
# history are back, and the next `train_online` call continues from there (epochs 3 and 4).
# A new call is a new run with a fresh learning-rate schedule (it warms the network up again from
# $5 \cdot 10^{-4}$), so the validation loss may rise briefly before it improves further.

# %%
resumed = af.trainers.Trainer(new_amortizer(), model, checkpoint_path=checkpoints, progress=False)
print("restored at step", resumed.step, "after", resumed.epoch, "epochs")
history = resumed.train_online(epochs=2, iterations_per_epoch=128, batch_size=64, validation_sims=300)
history["val_losses"]

# %%
fig = af.diagnostics.plot_losses(history["train_losses"], history["val_losses"], moving_average=True)

# %% [markdown]
# The resumed run (from step 257 on) starts where the first one ended, near 0, not at the ~2.9 of an
# untrained network: the weights were restored. The short spike right after the restart comes from
# the new run's learning rate, which starts again at $5 \cdot 10^{-4}$; the validation loss keeps improving.

# %% [markdown]
# ### A run that crashes
#
# Now a simulator that fails halfway through a run, as a node of a cluster might. The
# checkpoint written every 50 steps keeps the progress. Calling the same `train_online(...)` on a
# new trainer with the same folder *continues the interrupted run*: the rest of the epoch, the
# remaining epochs, with the learning-rate schedule at the right step.


# %%
class FlakySimulator:
    """Works for `fail_after` calls, then raises (a stand-in for a crashed job)."""

    def __init__(self, fail_after):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, mu, rng):
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("simulator node lost")
        return simulator_fun(mu, rng)


def flaky_model(fail_after):
    simulator = af.simulation.Simulator(batch_simulator_fun=FlakySimulator(fail_after))
    return af.simulation.GenerativeModel(af.simulation.Prior(batch_prior_fun=prior_fun), simulator, skip_test=True)


crash_folder = Path("checkpoints_crash").resolve()
trainer = af.trainers.Trainer(new_amortizer(), flaky_model(fail_after=220), checkpoint_path=crash_folder,
                              checkpoint_every=50, progress=False, prefetch=0)  # fmt: skip
try:
    trainer.train_online(epochs=3, iterations_per_epoch=96, batch_size=64)
except Exception as error:
    print(f"training stopped: {type(error).__name__}: {error}"[:300])
print("steps done before the crash:", trainer.step)

# %%
resumed = af.trainers.Trainer(new_amortizer(), model, checkpoint_path=crash_folder, progress=False)
history = resumed.train_online(epochs=3, iterations_per_epoch=96, batch_size=64)
print("steps after resuming:", resumed.step, "(the planned 3 x 96)")
print("history rows:", len(history["train_losses"]), " epochs:", history["train_losses"]["Epoch"].unique().tolist())
