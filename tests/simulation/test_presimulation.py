import json

import numpy as np
import pytest

from amortflow.exceptions import DataError
from amortflow.simulation import (
    ContextGenerator,
    GenerativeModel,
    Prior,
    Simulator,
    iter_shard_paths,
    load_shard,
    presimulate_and_save,
)

from .conftest import gaussian_batch_prior


@pytest.fixture
def model():
    """Batchable and non-batchable simulator contexts, so every kind of key is stored."""
    context = ContextGenerator(non_batchable_context_fun=lambda rng: int(rng.integers(3, 6)),
                               batchable_context_fun=lambda rng: rng.uniform())  # fmt: skip

    def sim(params, scales, n_obs, rng):
        return params[:, None, :] * np.asarray(scales)[:, None, None] + rng.normal(size=(len(params), n_obs, 2))

    return GenerativeModel(Prior(batch_prior_fun=gaussian_batch_prior), Simulator(batch_simulator_fun=sim, context_generator=context),
                           skip_test=True, name="ctx")  # fmt: skip


def read_all(folder):
    return [load_shard(p) for p in iter_shard_paths(folder)]


def assert_same(shards_a, shards_b):
    assert len(shards_a) == len(shards_b)
    for a, b in zip(shards_a, shards_b):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_writes_shards_and_manifest(tmp_path, model):
    paths = presimulate_and_save(model, tmp_path, batch_size=8, n_batches=3, seed=1, progress=False)
    assert [p.name for p in paths] == ["shard_00000.npz", "shard_00001.npz", "shard_00002.npz"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["batch_size"] == 8 and manifest["n_batches"] == 3
    assert manifest["model_name"] == "ctx" and manifest["seed_entropy"] == 1
    entry = manifest["shards"]["0"]
    assert entry["keys"] == ["prior_draws", "sim_batchable_context", "sim_data", "sim_non_batchable_context"]
    assert entry["shapes"]["prior_draws"] == [8, 2] and len(entry["sha256"]) == 64
    raw = load_shard(paths[0])
    assert raw["prior_batchable_context"] is None and raw["prior_non_batchable_context"] is None
    assert raw["sim_data"].shape == (8, raw["sim_non_batchable_context"], 2)
    assert raw["sim_batchable_context"].shape == (8,)
    with np.load(paths[0], allow_pickle=False) as plain:  # portable: readable with NumPy alone
        assert "sim_data" in plain.files


def test_method_and_seed_reproducibility(tmp_path, model):
    model.presimulate_and_save(tmp_path / "a", batch_size=4, n_batches=2, seed=7, progress=False)
    presimulate_and_save(model, tmp_path / "b", batch_size=4, n_batches=2, seed=7, progress=False)
    assert_same(read_all(tmp_path / "a"), read_all(tmp_path / "b"))
    presimulate_and_save(model, tmp_path / "c", batch_size=4, n_batches=2, seed=8, progress=False)
    assert not np.array_equal(read_all(tmp_path / "a")[0]["prior_draws"], read_all(tmp_path / "c")[0]["prior_draws"])


def test_resume_skips_complete_and_redoes_damaged_shards(tmp_path, model):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    presimulate_and_save(model, full, batch_size=6, n_batches=4, seed=3, progress=False)
    presimulate_and_save(model, resumed, batch_size=6, n_batches=4, seed=3, progress=False)
    # Simulate an interrupted and damaged run: shard 1 truncated, shard 2 missing, shard 3 bit-flipped,
    # a stale half-written temp file lying around.
    data = (resumed / "shard_00001.npz").read_bytes()
    (resumed / "shard_00001.npz").write_bytes(data[: len(data) // 2])
    (resumed / "shard_00002.npz").unlink()
    corrupted = bytearray((resumed / "shard_00003.npz").read_bytes())
    corrupted[len(corrupted) // 2] ^= 0xFF
    (resumed / "shard_00003.npz").write_bytes(bytes(corrupted))
    (resumed / ".shard_00002.npz.partial").write_bytes(b"half")
    untouched = (resumed / "shard_00000.npz").stat().st_mtime_ns
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_shard(resumed / "shard_00001.npz")
    assert [p.name for p in iter_shard_paths(resumed)] == ["shard_00000.npz", "shard_00003.npz"]  # size check only
    assert [p.name for p in iter_shard_paths(resumed, verify=True)] == ["shard_00000.npz"]

    presimulate_and_save(model, resumed, batch_size=6, n_batches=4, progress=False)  # seed taken from the manifest
    assert (resumed / "shard_00000.npz").stat().st_mtime_ns == untouched
    assert not (resumed / ".shard_00002.npz.partial").exists()
    assert_same(read_all(full), read_all(resumed))


def test_resume_can_extend_and_global_rng_models_resume_exactly(tmp_path):
    # Functions without an rng keyword use np.random: the per-shard global seeding keeps resumes exact.
    model = GenerativeModel(lambda: np.random.normal(size=2), lambda theta: theta + np.random.normal(size=(3, 2)),
                            simulator_is_batched=False, skip_test=True)  # fmt: skip
    presimulate_and_save(model, tmp_path / "full", batch_size=5, n_batches=3, seed=2, progress=False)
    presimulate_and_save(model, tmp_path / "part", batch_size=5, n_batches=1, seed=2, progress=False)
    state = np.random.get_state()[1].copy()
    presimulate_and_save(model, tmp_path / "part", batch_size=5, n_batches=3, seed=2, progress=False)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global state restored
    assert_same(read_all(tmp_path / "full"), read_all(tmp_path / "part"))


def test_mismatched_resume_and_overwrite(tmp_path, model):
    presimulate_and_save(model, tmp_path, batch_size=4, n_batches=1, seed=1, progress=False)
    with pytest.raises(DataError, match="batch_size=4, but batch_size=5"):
        presimulate_and_save(model, tmp_path, batch_size=5, n_batches=1, progress=False)
    with pytest.raises(DataError, match="seed=1, but seed=2"):
        presimulate_and_save(model, tmp_path, batch_size=4, n_batches=1, seed=2, progress=False)
    presimulate_and_save(model, tmp_path, batch_size=5, n_batches=1, seed=2, overwrite=True, progress=False)
    assert load_shard(tmp_path / "shard_00000.npz")["prior_draws"].shape == (5, 2)


def test_non_numeric_context_cannot_be_saved(tmp_path):
    context = ContextGenerator(batchable_context_fun=lambda: "label")
    model = GenerativeModel(Prior(batch_prior_fun=gaussian_batch_prior),
                            Simulator(simulator_fun=lambda t, label: t, context_generator=context), skip_test=True)  # fmt: skip
    with pytest.raises(DataError, match=r"Cannot save 'sim_batchable_context'.*dtype <U5 with shape \(3,\).*numeric"):
        presimulate_and_save(model, tmp_path, batch_size=3, n_batches=1, progress=False)


def test_missing_and_invalid_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        iter_shard_paths(tmp_path / "nowhere")
    with pytest.raises(DataError, match="has no manifest.json"):
        iter_shard_paths(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        iter_shard_paths(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DataError, match="format_version=1.*found version 99"):
        iter_shard_paths(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_shard(tmp_path / "shard_00000.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(DataError, match=r"lacks \['prior_draws', 'sim_data'\]"):
        load_shard(tmp_path / "other.npz")


def test_resuming_with_another_model_refuses_shards_of_another_shape(tmp_path, model):
    presimulate_and_save(model, tmp_path, batch_size=4, n_batches=2, seed=1, progress=False)
    other = GenerativeModel(Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 3))),
                            Simulator(batch_simulator_fun=lambda t, rng: t + rng.normal(size=t.shape)), skip_test=True)  # fmt: skip
    with pytest.raises(DataError, match=r"holds shards whose .*\(shard_00000.npz: prior_draws \(4, 2\).*\), but the new "
                                        r"shard shard_00002.npz has prior_draws \(4, 3\)"):  # fmt: skip
        presimulate_and_save(other, tmp_path, batch_size=4, n_batches=3, progress=False)
    assert not (tmp_path / "shard_00002.npz").exists() and len(list(iter_shard_paths(tmp_path))) == 2
    # the same model resumes as before
    presimulate_and_save(model, tmp_path, batch_size=4, n_batches=3, progress=False)
    assert len(list(iter_shard_paths(tmp_path))) == 3
