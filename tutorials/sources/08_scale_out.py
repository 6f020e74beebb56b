# %% [markdown]
# # Scaling out: simulations on a Dask cluster, streamed into training
#
# Real simulators are slow: seconds to hours per run. When one process is not enough, amortflow
# runs the simulations on [Dask](https://distributed.dask.org): a `LocalCluster` on your machine,
# or any cluster Dask can reach (SLURM, PBS, LSF, Kubernetes, ...). Your prior, simulator and
# training code stay the same. This notebook shows
#
# * `DaskGenerativeModel`: a drop-in generative model whose batches run as Dask tasks, reproducibly
#   under a seed;
# * `dask_presimulate_and_save`: a presimulation folder written by the workers, identical to the serial one;
# * `Trainer.train_streaming`: online training fed by simulations that keep arriving from the
#   workers into a bounded buffer (the DeepMelissa pattern), on a model whose exact posterior we know;
# * how to point the same code at a SLURM cluster with dask-jobqueue.
#
# It needs the optional extra `pip install amortflow[distributed]` (Dask and `distributed`).
# More details are in the documentation page *Scaling out simulations with Dask*.
#
# **Model.** The conjugate Gaussian: $\boldsymbol\theta \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_2)$
# and $N = 10$ observations $\mathbf{x}_n \sim \mathcal{N}(\boldsymbol\theta, \mathbf{I}_2)$, so the
# exact posterior is $\mathcal{N}\big(\sum_n \mathbf{x}_n / 11, \mathbf{I}_2 / 11\big)$. To play
# the part of a real simulator, ours **sleeps 10 ms per simulation** (its NumPy work takes microseconds).

# %%
import importlib
import logging
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

import amortflow as af

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
af.set_seed(8)
D, N_OBS, SECONDS_PER_SIMULATION = 2, 10, 0.01


def prior_fun(batch_size, rng):
    return rng.normal(size=(batch_size, D))


def slow_simulator(theta, rng):
    """(B, 2) parameters -> (B, 10, 2) observations, taking 10 ms per simulation."""
    time.sleep(SECONDS_PER_SIMULATION * len(theta))
    return theta[:, None, :] + rng.normal(size=(len(theta), N_OBS, D))


model = af.simulation.GenerativeModel(
    af.simulation.Prior(batch_prior_fun=prior_fun, param_names=[r"$\theta_1$", r"$\theta_2$"]),
    af.simulation.Simulator(batch_simulator_fun=slow_simulator),
    name="slow_gaussian",
    skip_test=True,
)

# %% [markdown]
# ## A local cluster
#
# Two worker processes with one thread each (Python simulators hold the GIL, so processes, not
# threads, run them in parallel). Each worker imports amortflow, and with it TensorFlow, once;
# `client.run` makes them do it now rather than at their first task. Functions defined in a
# notebook or script are sent to the workers by value; functions in a module must be importable there.

# %%
start = time.perf_counter()
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
client = Client(cluster)
client.run(importlib.import_module, "amortflow")
print(f"cluster with {len(client.scheduler_info()['workers'])} workers ready in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# ## Simulating on the cluster: `DaskGenerativeModel`
#
# `DaskGenerativeModel(model, client, chunk_size, seed)` splits a batch into tasks of `chunk_size`
# simulations, runs them on the workers and returns the same raw dictionary as `model(...)`.
# Give each task at least a tenth of a second of work (Dask's overhead is about a millisecond per
# task, more on a busy machine): here 16 simulations, 0.16 s.

# %%
dask_model = af.simulation.DaskGenerativeModel(model, client, chunk_size=16, seed=2024)

start = time.perf_counter()
serial = model(batch_size=128, rng=np.random.default_rng(0))
serial_seconds = time.perf_counter() - start
start = time.perf_counter()
raw = dask_model(batch_size=128)  # 8 tasks of 16 simulations
dask_seconds = time.perf_counter() - start
print({key: value.shape for key, value in raw.items() if value is not None})
print(f"128 simulations: {serial_seconds:.2f} s in this process, {dask_seconds:.2f} s on 2 workers "
      f"(speed-up {serial_seconds / dask_seconds:.1f}x)")  # fmt: skip

# %% [markdown]
# On a machine with a free core per worker, the speed-up approaches 2 once the tasks are long
# compared with Dask's overhead. This notebook was executed on a 2-core machine busy with other jobs,
# where the workers, the scheduler and this process compete for the cores, so the figure above is
# lower there (the documentation page *Scaling out simulations with Dask* lists measured speed-ups).
#
# **Reproducibility.** Task $i$ draws its random numbers from child $i$ of
# `numpy.random.SeedSequence(seed)`. The simulations therefore depend only on the seed and the
# chunk size: not on the number of workers, on which worker runs which task, on the order in which
# tasks finish, or on a task being re-run after a worker died; and no two tasks share a random
# stream. A fresh model with the same seed repeats the same batches; another seed gives others.

# %%
again = af.simulation.DaskGenerativeModel(model, client, chunk_size=16, seed=2024)(batch_size=128)
other = af.simulation.DaskGenerativeModel(model, client, chunk_size=16, seed=7)(batch_size=128)
print("same seed, same simulations:     ", np.array_equal(raw["sim_data"], again["sim_data"]))
print("another seed, other simulations: ", not np.allclose(raw["sim_data"], other["sim_data"]))

# %% [markdown]
# ## Presimulation fanned out over the workers
#
# `dask_presimulate_and_save` writes the same folder format as the serial `presimulate_and_save`
# (a manifest and one `.npz` shard per batch): the workers write the shards, so simulations never
# travel through this process. Shard $i$ holds exactly what the serial function writes for the same
# seed, and calling it again resumes (only missing or damaged shards are simulated). On a cluster
# the folder must be on a file system that every worker sees at the same path.

# %%
start = time.perf_counter()
paths = af.simulation.dask_presimulate_and_save(model, "sims_dask", batch_size=64, n_batches=4, seed=1,
                                                client=client, progress=False)  # fmt: skip
print(f"{len(paths)} shards written by the workers in {time.perf_counter() - start:.1f} s:", [p.name for p in paths])

model.presimulate_and_save("sims_serial", batch_size=64, n_batches=1, seed=1)  # only the first shard, for comparison
dask_shard = af.simulation.load_shard(Path("sims_dask") / "shard_00000.npz")
serial_shard = af.simulation.load_shard(Path("sims_serial") / "shard_00000.npz")
print("shard 0 identical to the serial one:", np.array_equal(dask_shard["sim_data"], serial_shard["sim_data"]))

# %% [markdown]
# ## Streaming simulations into online training
#
# Online training with a slow simulator would wait for every batch. Streaming training instead
# keeps the workers busy all the time: `StreamingSimulations` keeps tasks submitted, collects each
# one as it finishes into a bounded in-memory buffer, and the trainer draws each batch uniformly
# from the buffer. Training waits once, until the buffer holds `watermark` simulations, and never
# again for the slowest simulation; memory stays at `buffer_capacity` simulations.
#
# Our workers deliver at most 200 simulations per second (2 workers, 10 ms each), and each training
# step draws 64. Whether a simulation is drawn many times or replaced before any batch drew it depends
# on how fast simulation and training are relative to each other; the stream's statistics tell. The buffer's policy decides
# which simulation a new one replaces: `"fifo"` (the oldest, used here) or `"reservoir"` (a uniform
# sample of all simulations so far). The stream counts how often each simulation was drawn.
#
# The network: the 10 observations of 2 numbers are flattened into 20 conditions of a small
# normalizing flow (no summary network, since the posterior mean is linear in the data).


# %%
def configurator(raw):
    """Parameters and the flattened observations (as direct conditions), in float32."""
    data = np.asarray(raw["sim_data"], dtype=np.float32)
    parameters = raw.get("prior_draws")
    return {
        "parameters": None if parameters is None else np.asarray(parameters, dtype=np.float32),
        "direct_conditions": data.reshape(len(data), -1),
    }


inference_net = af.networks.InvertibleNetwork(
    num_params=D, num_coupling_layers=2, coupling_settings={"dense_args": {"units": 32}, "num_dense": 1}
)
amortizer = af.amortizers.AmortizedPosterior(inference_net)
trainer = af.trainers.Trainer(amortizer, model, configurator=configurator, default_lr=1e-3, progress=False, seed=0)

# %% [markdown]
# 3 epochs of 500 steps with batches of 64 from a buffer of at most 5,000 simulations (tasks of 50);
# training starts once 2,000 have arrived. After each epoch the trainer logs the stream's statistics
# (simulations done and in flight, buffer fill, how often the buffered simulations were seen).
# The 200 validation simulations are simulated here, by the plain model.

# %%
stream = af.simulation.StreamingSimulations(model, client, buffer_capacity=5000, watermark=2000, chunk_size=50, seed=1)
logging.getLogger("amortflow").setLevel(logging.INFO)
start = time.perf_counter()
history = trainer.train_streaming(epochs=3, iterations_per_epoch=500, batch_size=64, stream=stream, validation_sims=200)
print(f"trained in {time.perf_counter() - start:.0f} s, waiting {stream.stats()['seconds_to_watermark']:.1f} s for the watermark")
logging.getLogger("amortflow").setLevel(logging.WARNING)
stream.close()
print(stream.describe())

# %%
{key: value for key, value in stream.stats().items() if key in ("simulations_done", "buffer_fill", "rows_evicted",
                                                                 "rows_evicted_unseen", "seen_mean", "seen_max")}  # fmt: skip

# %% [markdown]
# `seen_mean` and `seen_max` count how often the simulations now in the buffer were drawn into a batch;
# `rows_evicted_unseen` counts simulations replaced before any batch drew them. Many unseen evictions
# mean training is the bottleneck and simulations are wasted (simulate less, or train faster); a large
# `seen_mean` means the other way round, with a risk of overfitting (raise `buffer_capacity` or add
# workers). In the run stored here training outpaced the two workers: each
# simulation in the buffer was drawn many times (`seen` above), the regime where more workers pay.
#
# ## Did it learn the posterior?
#
# For 200 new data sets we compare the learned posteriors with the exact ones: the posterior means
# (left, one point per data set and parameter) should lie on the diagonal, the posterior standard
# deviations (middle) at the exact $1/\sqrt{11} \approx 0.30$, and for one data set (right) the
# histogram of the draws of $\theta_1$ should follow the exact density.

# %%
test = model(batch_size=200, rng=np.random.default_rng(123))
draws = amortizer.sample(configurator(test), n_samples=1000, seed=5)  # (200, 1000, 2)
exact_mean = test["sim_data"].sum(axis=1) / (N_OBS + 1)
exact_sd = 1 / np.sqrt(N_OBS + 1)
print(f"posterior means: RMSE {np.sqrt(np.mean((draws.mean(axis=1) - exact_mean) ** 2)):.3f} "
      f"(exact posterior sd {exact_sd:.3f})")  # fmt: skip
print(f"posterior sds: {draws.std(axis=1).mean():.3f} on average (exact {exact_sd:.3f})")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
axes[0].scatter(exact_mean.ravel(), draws.mean(axis=1).ravel(), s=6, alpha=0.6)
lims = [exact_mean.min() - 0.2, exact_mean.max() + 0.2]
axes[0].plot(lims, lims, color="black", lw=1)
axes[0].set(xlabel="exact posterior mean", ylabel="amortized posterior mean", title="posterior means")
axes[1].hist(draws.std(axis=1).ravel(), bins=30, color="C0", alpha=0.7)
axes[1].axvline(exact_sd, color="C1", lw=2, label="exact")
axes[1].set(xlabel="posterior sd", ylabel="data sets x parameters", title="posterior standard deviations")
axes[1].legend()
grid = np.linspace(exact_mean[0, 0] - 4 * exact_sd, exact_mean[0, 0] + 4 * exact_sd, 200)
axes[2].hist(draws[0, :, 0], bins=40, density=True, color="C0", alpha=0.7, label="amortflow")
density = np.exp(-0.5 * ((grid - exact_mean[0, 0]) / exact_sd) ** 2) / (exact_sd * np.sqrt(2 * np.pi))
axes[2].plot(grid, density, color="C1", lw=2, label="exact")
axes[2].axvline(test["prior_draws"][0, 0], color="black", ls="--", lw=1, label="true value")
axes[2].set(xlabel=r"$\theta_1$", title="one data set")
axes[2].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Done with the cluster: close the client and the cluster (a `DaskGenerativeModel` or stream never
# closes a client you passed in).

# %%
# Workers that loaded TensorFlow can take longer than the 4 s the nanny grants them to exit; the
# nanny then ends them, which is harmless: keep its warnings about that out of the output.
logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
client.close()
cluster.close()

# %% [markdown]
# ## The same code on a SLURM cluster
#
# Only the cluster object changes. [dask-jobqueue](https://jobqueue.dask.org) (`pip install
# dask-jobqueue`) submits SLURM jobs that start Dask workers; run the script on a login node or
# in a small job. (Not executed here: this machine has no SLURM.)
#
# ```python
# from dask_jobqueue import SLURMCluster
# from distributed import Client
#
# cluster = SLURMCluster(
#     queue="compute",              # partition (#SBATCH -p)
#     account="my_project",         # #SBATCH -A
#     cores=32,                     # cores per job
#     processes=32,                 # one single-threaded worker process per core
#     memory="64GB",                # per job
#     walltime="04:00:00",
#     job_script_prologue=["source ~/venvs/amortflow/bin/activate", "export OMP_NUM_THREADS=1"],
#     log_directory="dask-logs",
# )
# print(cluster.job_script())       # check what will be submitted
# cluster.scale(jobs=4)             # 4 jobs x 32 workers, or cluster.adapt(minimum_jobs=1, maximum_jobs=20)
# client = Client(cluster)
#
# # from here on, exactly the code of this notebook
# dask_model = af.simulation.DaskGenerativeModel(model, client, chunk_size=1, seed=2024)
# af.simulation.dask_presimulate_and_save(model, "/scratch/me/sims", batch_size=1024, n_batches=500,
#                                         seed=1, client=client)
# stream = af.simulation.StreamingSimulations(model, client, buffer_capacity=50_000, watermark=10_000, seed=1)
# history = trainer.train_streaming(epochs=20, iterations_per_epoch=1000, batch_size=64, stream=stream)
# ```
#
# * The workers need the same Python environment (`job_script_prologue`) and must be able to
#   import the modules that define your prior and simulator.
# * Presimulation folders must be on a shared file system (home, project or scratch), not on a
#   node's local disk.
# * A job that reaches its `walltime` is just a set of workers dying: Dask re-runs their tasks
#   elsewhere, with the same seeds, so nothing is lost or trained on twice; `cluster.adapt(...)`
#   starts replacement jobs.
# * PBS, LSF, SGE and HTCondor work the same with `PBSCluster`, `LSFCluster`, ... .
