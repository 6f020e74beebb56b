"""The Dask simulation paths on a real one-node SLURM cluster, through ``dask_jobqueue.SLURMCluster``.

The fixture starts munge, slurmctld and slurmd on this machine (see ``slurm_cluster.py``);
dask-jobqueue submits two ``sbatch`` jobs of one worker each, which run this very Python with
the repository on ``PYTHONPATH``. The simulations must be exactly those of a LocalCluster
with the same seed: a task's rows depend only on its seed, never on where it ran. Where
SLURM is not installed or will not start, the test is skipped with the reason; ``.ci/run``
installs it, and the terminal summary says when this test passed (see ``conftest.py``).

Every wait has a limit, so the test fails with the workers' states instead of hanging: in the
CI run of 2026-12-07 it hung for 40 minutes because the jobs asked for 1 GB, a worker that has
imported TensorFlow holds about 0.9 GB, and Dask pauses a worker above 80 % of its memory
limit: the paused workers took no tasks and the batch waited for ever.
"""

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from amortflow.simulation import GenerativeModel, Prior, Simulator
from amortflow.simulation.distributed import DaskGenerativeModel, StreamingSimulations
from tests.simulation.slurm_cluster import SlurmUnavailable, one_node_slurm

distributed = pytest.importorskip("distributed")
dask_jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (a test requirement)")

ROOT = Path(__file__).resolve().parents[2]
N_JOBS = 2
WORKER_START_TIMEOUT_S = 120  # two fresh Python processes importing TensorFlow on a busy machine
#: Dask memory limit of a worker: pausing starts at 80 % of it, and a worker that has imported
#: TensorFlow and amortflow holds about 0.9 GB. SLURM is not asked for memory (``--mem``
#: skipped): the test node enforces none.
WORKER_MEMORY = "4GB"
BATCH_TIMEOUT_S = 120  # one DaskGenerativeModel call (a few ms of simulation once the workers run)
TEST_DEADLINE_S = 420  # the whole test, worker start-up included; it takes ~40 s here


@contextlib.contextmanager
def deadline(seconds, what):
    """Raise TimeoutError in the main thread after ``seconds`` (SIGALRM interrupts Dask's waits)."""

    def expire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Module-level functions: the SLURM workers import them by name from this file.
def normal_prior(batch_size, rng):
    return rng.normal(size=(batch_size, 2))


def shifted_sim(params, rng):
    return params[:, None, :] + rng.normal(size=(len(params), 3, 2))


def make_model():
    return GenerativeModel(Prior(batch_prior_fun=normal_prior), Simulator(batch_simulator_fun=shifted_sim),
                           skip_test=True, name="shifted")  # fmt: skip


@pytest.fixture(scope="module")
def slurm_client(tmp_path_factory):
    """A Dask client whose two workers are two SLURM jobs on a one-node cluster started here."""
    try:
        with deadline(TEST_DEADLINE_S, "the SLURM test"), one_node_slurm() as partition:
            logs = tmp_path_factory.mktemp("slurm-jobs")
            python_path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
            cluster = dask_jobqueue.SLURMCluster(
                queue=partition,
                cores=1,
                processes=1,
                memory=WORKER_MEMORY,
                job_directives_skip=["--mem"],
                walltime="00:10:00",
                python=sys.executable,  # the jobs run this interpreter, with its packages
                job_script_prologue=[f"export PYTHONPATH={python_path}", "export KERAS_BACKEND=tensorflow",
                                     "export TF_CPP_MIN_LOG_LEVEL=2", "export OMP_NUM_THREADS=1"],  # fmt: skip
                log_directory=str(logs),
                local_directory=str(logs),
                scheduler_options={"dashboard_address": ":0"},
            )
            try:
                cluster.scale(jobs=N_JOBS)
                client = distributed.Client(cluster)
                try:
                    client.wait_for_workers(N_JOBS, timeout=WORKER_START_TIMEOUT_S)
                except TimeoutError as exc:
                    outputs = "\n".join(path.read_text()[-1500:] for path in sorted(logs.glob("*")))
                    raise AssertionError(f"the SLURM jobs' workers did not connect:\n{cluster.job_script()}\n{outputs}") from exc
                yield client
                client.close()
            finally:
                cluster.close()
    except SlurmUnavailable as exc:
        pytest.skip(f"no SLURM cluster: {exc}")


@pytest.fixture(scope="module")
def local_client():
    """The reference: a LocalCluster (threads; where a task runs must not matter)."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


def sorted_rows(array):
    return array[np.lexsort(array.reshape(len(array), -1).T[::-1])]


def stream_everything(client, seed, n_simulations=24, chunk_size=4):
    """All simulations of a finite stream (its buffer holds every row once; batch == fill returns each once)."""
    with StreamingSimulations(make_model(), client, buffer_capacity=n_simulations, chunk_size=chunk_size,
                              max_simulations=n_simulations, seed=seed) as stream:  # fmt: skip
        deadline = time.monotonic() + 60
        while stream.stats()["active"]:
            assert time.monotonic() < deadline, f"the stream did not finish: {stream.describe()}"
            time.sleep(0.05)
        stats = stream.stats()
        raw = stream.next_batch(n_simulations)
    assert stats["tasks_done"] == n_simulations // chunk_size and stats["duplicates_dropped"] == 0
    return raw


def test_slurm_jobs_simulate_exactly_what_a_local_cluster_does(slurm_client, local_client):
    job_ids = slurm_client.run(lambda: os.environ.get("SLURM_JOB_ID"))
    assert len(set(job_ids.values()) - {None}) == N_JOBS  # two workers, each inside its own SLURM job

    # DaskGenerativeModel: tasks come back in task order, so whole batches are bit-identical.
    with DaskGenerativeModel(make_model(), slurm_client, chunk_size=4, seed=7, timeout=BATCH_TIMEOUT_S) as on_slurm:
        slurm_batches = [on_slurm(16), on_slurm(10)]
    with DaskGenerativeModel(make_model(), local_client, chunk_size=4, seed=7) as on_local:
        local_batches = [on_local(16), on_local(10)]
    for slurm_raw, local_raw in zip(slurm_batches, local_batches):
        np.testing.assert_array_equal(slurm_raw["prior_draws"], local_raw["prior_draws"])
        np.testing.assert_array_equal(slurm_raw["sim_data"], local_raw["sim_data"])
    assert not np.array_equal(slurm_batches[0]["prior_draws"][:10], slurm_batches[1]["prior_draws"])  # a new batch

    # StreamingSimulations: tasks arrive in completion order, the set of simulations is the same.
    with distributed.get_task_stream(slurm_client) as task_stream:
        from_slurm = stream_everything(slurm_client, seed=11)
    from_local = stream_everything(local_client, seed=11)
    for key in ("prior_draws", "sim_data"):
        np.testing.assert_array_equal(sorted_rows(from_slurm[key]), sorted_rows(from_local[key]))
    assert len({task["worker"] for task in task_stream.data}) == N_JOBS  # both jobs simulated

