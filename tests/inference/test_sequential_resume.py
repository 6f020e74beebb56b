"""A sequential run killed (SIGKILL) in round 2 resumes in round 2 from its checkpoint folder; damaged folders are refused.

The run: SNPE-C, 3 rounds of 200 simulations of the conjugate Gaussian model, each in its own
subprocess. The simulator appends the size of every call to a log file, so the test counts the
round simulations (calls of 200) that each process made.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import CheckpointError
from amortflow.inference import SequentialInference
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import X_OBS, model

REPO_ROOT = Path(__file__).resolve().parents[2]
N, ROUNDS = 200, 3

# One process of the run. ``kill_at``: "simulate" kills the process inside round 2's simulator call
# (its proposal draws are saved, its simulations are not); "train" kills it when round 2's training
# starts (its simulations are saved); "none" runs to the end.
RUN_SCRIPT = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
import numpy as np
import amortflow as af
from amortflow.inference import SequentialInference
from amortflow.trainers import Trainer
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import X_OBS, model, sample_means

folder, kill_at, log, out = sys.argv[1:5]
N = {n}
round_calls = []

def logged_means(theta, rng):
    if len(theta) == N:
        round_calls.append(1)
        with open(log, "a") as handle:
            handle.write(f"{{len(theta)}}\\n")
        if kill_at == "simulate" and len(round_calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return sample_means(theta, rng)

trainings = [0]
original = Trainer.train_offline
def train_offline(self, *args, **kwargs):
    trainings[0] += 1
    if kill_at == "train" and trainings[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
Trainer.train_offline = train_offline

import keras
keras.utils.set_random_seed(0)  # the networks' initial weights, the same in every process
base = model()
generative = af.simulation.GenerativeModel(prior=base.prior, simulator=af.simulation.Simulator(batch_simulator_fun=logged_means),
                                           skip_test=True)
inference = SequentialInference(generative, af.amortizers.AmortizedPosterior(tiny_flow(2)), X_OBS, seed=3,
                                trainer_kwargs={{"progress": False}}, checkpoint_path=folder)
resumed_after = len(inference.history)
inference.run(rounds={rounds} - resumed_after, simulations_per_round=N, epochs=4, batch_size=50, optimizer=3e-3)
np.savez(out, draws=inference.sample(500, seed=0), weights=np.concatenate([w.numpy().ravel() for w in inference.amortizer.weights]))
with open(out + ".json", "w") as handle:
    json.dump({{"resumed_after": resumed_after, "history": [r.__dict__ for r in inference.history]}}, handle)
"""


def _run(tmp_path: Path, folder: Path, kill_at: str, tag: str) -> tuple[int, int, dict | None]:
    """One process: (return code, round simulator calls it made, its outputs or None when killed)."""
    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT.format(root=str(REPO_ROOT), n=N, rounds=ROUNDS))
    log, out = tmp_path / f"{tag}.log", tmp_path / f"{tag}.npz"
    done = subprocess.run([sys.executable, str(script), str(folder), kill_at, str(log), str(out)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"the run failed:\n{done.stderr[-3000:]}")
    calls = len(log.read_text().split()) if log.exists() else 0
    if done.returncode != 0:
        return done.returncode, calls, None
    with np.load(out) as data:
        outputs = {key: data[key] for key in data.files}
    outputs.update(json.loads(Path(str(out) + ".json").read_text()))
    return done.returncode, calls, outputs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reference")
    code, calls, outputs = _run(tmp_path, tmp_path / "run", "none", "reference")
    assert code == 0 and calls == ROUNDS
    return outputs


@pytest.mark.parametrize("kill_at, calls_after", [("simulate", 2), ("train", 1)])
def test_a_run_killed_in_round_2_resumes_in_round_2(tmp_path, uninterrupted, kill_at, calls_after):
    folder = tmp_path / "run"
    code, calls, _ = _run(tmp_path, folder, kill_at, "killed")
    assert code == -signal.SIGKILL and calls == 2  # round 1, and round 2's call (killed in it, or finished)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [entry["stage"] for entry in manifest["rounds"]] == ["trained", "proposed" if kill_at == "simulate" else "simulated"]
    code, calls, resumed = _run(tmp_path, folder, "none", "resumed")
    # round 1's simulations are reused; round 2's are re-simulated only if they were not complete
    assert code == 0 and calls == calls_after and resumed["resumed_after"] == 1
    assert [r["round"] for r in resumed["history"]] == [1, 2, 3]
    assert [r["total_simulations"] for r in resumed["history"]] == [N, 2 * N, 3 * N]
    assert resumed["history"][0] == uninterrupted["history"][0]  # round 1's record is the saved one
    # the same seeds, proposal draws and simulations, and the Trainer resumes its exact state (weights,
    # optimizer, RNG streams), so on this CPU the resumed run ends with the uninterrupted run's weights
    np.testing.assert_array_equal(resumed["weights"], uninterrupted["weights"])
    np.testing.assert_array_equal(resumed["draws"], uninterrupted["draws"])


def _fresh(folder: Path, method: str = "snpe_c", x_obs=X_OBS, generative=None):
    amortizer = af.amortizers.AmortizedLikelihood(tiny_flow(2)) if method == "snle" else af.amortizers.AmortizedPosterior(tiny_flow(2))
    return SequentialInference(generative or model(), amortizer, x_obs, method=method, seed=0,
                               trainer_kwargs={"progress": False}, checkpoint_path=folder)  # fmt: skip


@pytest.fixture(scope="module")
def one_round(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one_round") / "run"
    _fresh(folder).run(rounds=1, simulations_per_round=100, epochs=1, batch_size=50)
    return folder


def test_a_checkpoint_of_another_run_is_refused(one_round, tmp_path):
    import shutil

    with pytest.raises(CheckpointError, match="its method is 'snpe_c', this run's is 'snle'"):
        _fresh(one_round, method="snle")
    with pytest.raises(CheckpointError, match="its x_obs_sha256 is"):
        _fresh(one_round, x_obs=X_OBS + 0.1)
    import tensorflow_probability as tfp

    wide = tfp.distributions.Independent(tfp.distributions.Normal(np.zeros(3, "float32"), 1.0), 1)
    three = af.simulation.GenerativeModel(prior=af.simulation.Prior(distribution=wide), skip_test=True,
                                          simulator=af.simulation.Simulator(batch_simulator_fun=lambda t, rng: t[:, :2]))  # fmt: skip
    with pytest.raises(CheckpointError, match="its num_params is 2, this run's is 3"):
        _fresh(one_round, generative=three)
    with pytest.raises(CheckpointError, match="drew 100 parameters, but this run asks for simulations_per_round=120"):
        copy = tmp_path / "copy"
        shutil.copytree(one_round, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["rounds"][0]["stage"] = "simulated"  # as if killed before round 1's training ended
        (copy / "manifest.json").write_text(json.dumps(manifest))
        _fresh(copy).run(rounds=1, simulations_per_round=120, epochs=1, batch_size=50)


def test_a_damaged_checkpoint_is_refused(one_round, tmp_path):
    import shutil

    garbled, damaged = tmp_path / "garbled", tmp_path / "damaged"
    shutil.copytree(one_round, garbled)
    (garbled / "manifest.json").write_text('{"identity": {"method": "snpe')
    with pytest.raises(CheckpointError, match="cannot be read as a sequential-run manifest"):
        _fresh(garbled)
    shutil.copytree(one_round, damaged)
    path = damaged / "round_001.simulations.npz"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        _fresh(damaged)
    with pytest.raises(af.exceptions.ArgumentError, match="Pass checkpoint_path to SequentialInference"):
        SequentialInference(model(), af.amortizers.AmortizedPosterior(tiny_flow(2)), X_OBS,
                            trainer_kwargs={"checkpoint_path": tmp_path / "x"}, checkpoint_path=tmp_path / "y")  # fmt: skip
