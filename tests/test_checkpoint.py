"""Tests for tinytransformer/training/checkpoint.py: the file format, atomic saving, clear errors, exact resume,
and files from elsewhere (zip bombs, lying sizes, wrong types, NaN weights, fuzzing)."""
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tinytransformer import backend
from tinytransformer.module import is_int
from tinytransformer.training import checkpoint
from tinytransformer.training.checkpoint import (CheckpointError, check_config, load_checkpoint, restore,
                                        save_checkpoint)
from tinytransformer.optim import AdamW, clip_grad_norm, cosine_lr

from helpers import TinyNet

CONFIG = {"d_in": 4, "d_hidden": 8, "d_out": 3, "activation": "none", "sizes": [1, 2]}
TOKENIZER = {"kind": "char", "chars": "\n !abcü—"}


def train_step(model, optimizer, it, data_rng):
    """One step of a nanoGPT-style loop on a random batch drawn from ``data_rng``; returns the loss."""
    x = backend.asarray(data_rng.standard_normal((5, 4)), dtype=backend.default_dtype())
    target = backend.asarray(data_rng.standard_normal((5, 3)), dtype=backend.default_dtype())
    model.zero_grad()
    diff = model(x) - target
    model.backward(2.0 * diff / diff.size)
    clip_grad_norm(model.parameters(), 1.0)
    optimizer.step(lr=cosine_lr(it, lr=1e-2, min_lr=1e-3, warmup_iters=2, lr_decay_iters=8))
    return float((diff * diff).mean())


def trained(steps=2, seed=0):
    """A model and optimizer after a few steps, so that weights, m and v are all non-trivial."""
    model = TinyNet(seed=seed)
    optimizer = AdamW(model.named_parameters(), weight_decay=0.1)
    data_rng = np.random.default_rng(seed)
    for it in range(steps):
        train_step(model, optimizer, it, data_rng)
    return model, optimizer


def assert_states_equal(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(backend.to_numpy(a[name]), backend.to_numpy(b[name]), err_msg=name)


# --- the round trip -------------------------------------------------------------------------------------

def test_round_trip_keeps_everything(tmp_path):
    path = tmp_path / "ckpt.npz"
    model, optimizer = trained()
    rng = np.random.default_rng(7)
    rng.standard_normal(3)  # move the generator away from its seeded start
    save_checkpoint(path, model=model, config=CONFIG, optimizer=optimizer, tokenizer=TOKENIZER,
                    iteration=7, rng_state=rng.bit_generator.state, extra={"best_val_loss": 1.2345678901})

    ckpt = load_checkpoint(path)

    assert ckpt.config == CONFIG
    assert ckpt.tokenizer == TOKENIZER
    assert ckpt.iteration == 7
    assert ckpt.extra == {"best_val_loss": 1.2345678901}
    assert_states_equal(ckpt.model_state, model.state_dict())
    expected = optimizer.state_dict()
    for key in ("step", "lr", "betas", "eps", "weight_decay"):
        assert ckpt.optimizer_state[key] == expected[key], key
    assert_states_equal(ckpt.optimizer_state["m"], expected["m"])
    assert_states_equal(ckpt.optimizer_state["v"], expected["v"])
    # The generator continues from where it was saved.
    resumed = np.random.default_rng()
    resumed.bit_generator.state = ckpt.rng_state
    np.testing.assert_array_equal(resumed.standard_normal(5), rng.standard_normal(5))


def test_without_optimizer_or_tokenizer(tmp_path):
    path = tmp_path / "weights.npz"
    model, _ = trained()
    save_checkpoint(path, model=model, config=CONFIG)
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state is None and ckpt.tokenizer is None and ckpt.rng_state is None
    assert ckpt.iteration == 0 and ckpt.extra == {}
    assert_states_equal(ckpt.model_state, model.state_dict())


def test_readable_with_plain_numpy_and_json(tmp_path):
    path = tmp_path / "ckpt"  # no .npz suffix: the file must still be written exactly here
    model, optimizer = trained()
    save_checkpoint(path, model=model, config=CONFIG, optimizer=optimizer, tokenizer=TOKENIZER,
                    iteration=3, extra={"note": "plain"})
    assert os.listdir(tmp_path) == ["ckpt"]

    with np.load(path, allow_pickle=False) as npz:
        names = [name for name, _ in model.named_parameters()]
        assert sorted(npz.files) == sorted(["header"] + [f"model/{n}" for n in names]
                                           + [f"optim/m/{n}" for n in names]
                                           + [f"optim/v/{n}" for n in names])
        assert npz["header"].dtype == np.uint8
        header = json.loads(npz["header"].tobytes().decode("utf-8"))
        for name, p in model.named_parameters():
            np.testing.assert_array_equal(npz[f"model/{name}"], p.data)
            np.testing.assert_array_equal(npz[f"optim/m/{name}"], optimizer.m[name])
    assert header["format"] == checkpoint.FORMAT_NAME and header["version"] == checkpoint.FORMAT_VERSION
    assert header["config"] == CONFIG and header["tokenizer"] == TOKENIZER
    assert header["iteration"] == 3 and header["extra"] == {"note": "plain"}
    assert header["optimizer"]["step"] == 2 and header["optimizer"]["betas"] == [0.9, 0.999]


@pytest.mark.parametrize("save_on, load_on", [("standin", "numpy"), ("numpy", "standin")])
def test_saved_on_one_backend_loads_on_the_other(tmp_path, save_on, load_on):
    path = tmp_path / "ckpt.npz"
    with backend.using(backend=save_on):
        model, optimizer = trained()
        save_checkpoint(path, model=model, config=CONFIG, optimizer=optimizer)
        saved_model, saved_optimizer = model.state_dict(), optimizer.state_dict()
    with backend.using(backend=load_on):
        fresh = TinyNet(seed=1)
        fresh_optimizer = AdamW(fresh.named_parameters())
        restore(load_checkpoint(path), fresh, fresh_optimizer)
        for name, p in fresh.named_parameters():
            assert isinstance(p.data, backend.xp.ndarray), name      # on the loading backend's device
            assert isinstance(fresh_optimizer.v[name], backend.xp.ndarray), name
        assert_states_equal(fresh.state_dict(), saved_model)
        assert_states_equal(fresh_optimizer.state_dict()["m"], saved_optimizer["m"])
        assert_states_equal(fresh_optimizer.state_dict()["v"], saved_optimizer["v"])
        assert fresh_optimizer.step_count == saved_optimizer["step"]


# --- damaged and missing files --------------------------------------------------------------------------

def valid_checkpoint_bytes(tmp_path):
    path = tmp_path / "valid.npz"
    model, optimizer = trained()
    save_checkpoint(path, model=model, config=CONFIG, optimizer=optimizer)
    return path.read_bytes()


def assert_invalid(path, reason):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a valid tinytransformer checkpoint (")
    assert reason in message
    return message


def test_random_bytes_are_rejected(tmp_path):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    message = assert_invalid(path, "not a zip/.npz archive")
    assert "delete it and train again, or use an earlier checkpoint" in message


def test_empty_file_and_single_npy_are_rejected(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert_invalid(empty, "not a zip/.npz archive")
    single = tmp_path / "single.npz"
    with open(single, "wb") as file:
        np.save(file, np.zeros(3))
    assert_invalid(single, "not a zip/.npz archive")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_checkpoint_is_rejected(tmp_path, keep):
    data = valid_checkpoint_bytes(tmp_path)
    path = tmp_path / "ckpt.npz"
    path.write_bytes(data[:int(len(data) * keep)])
    message = assert_invalid(path, "cannot read the archive")
    assert "it may be truncated" in message


def test_damaged_bytes_inside_are_rejected(tmp_path):
    data = bytearray(valid_checkpoint_bytes(tmp_path))
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the stored arrays
    path = tmp_path / "ckpt.npz"
    path.write_bytes(bytes(data))
    assert_invalid(path, "cannot read the archive")


def test_npz_without_header_is_rejected(tmp_path):
    path = tmp_path / "ckpt.npz"
    with open(path, "wb") as file:
        np.savez(file, **{"model/fc1.weight": np.zeros((4, 8))})
    assert_invalid(path, "no header")


def write_with_header(path, header):
    with open(path, "wb") as file:
        np.savez(file, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def test_wrong_format_name_or_version_is_rejected(tmp_path):
    good = {"format": checkpoint.FORMAT_NAME, "version": checkpoint.FORMAT_VERSION, "config": {},
            "iteration": 0}
    path = tmp_path / "ckpt.npz"
    write_with_header(path, {**good, "format": "something-else"})
    assert_invalid(path, "format is 'something-else'")
    write_with_header(path, {**good, "version": checkpoint.FORMAT_VERSION + 1})
    message = assert_invalid(path, f"format version {checkpoint.FORMAT_VERSION + 1}")
    assert "another version of tinytransformer" in message
    write_with_header(path, {key: value for key, value in good.items() if key != "config"})
    assert_invalid(path, "the header has no 'config'")
    write_with_header(path, good)
    assert load_checkpoint(path).config == {}  # the minimal header itself is accepted


def test_missing_file_says_train_first(tmp_path):
    path = tmp_path / "out" / "ckpt.npz"
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*ckpt\.npz; train first .*--out-dir"):
        load_checkpoint(path)


# --- configs that do not fit ----------------------------------------------------------------------------

def test_check_config_names_each_differing_field():
    saved = {"n_layer": 4, "n_head": 2, "block_size": 64, "bias": True}
    check_config(saved, dict(saved))  # equal: no error
    with pytest.raises(CheckpointError) as info:
        check_config(saved, {**saved, "n_layer": 6, "block_size": 128})
    message = str(info.value)
    assert "n_layer: checkpoint 4, model 6" in message
    assert "block_size: checkpoint 64, model 128" in message
    assert "n_head" not in message
    assert "build the model from the checkpoint's config, or start a fresh run" in message.lower()


def test_check_config_after_a_json_round_trip(tmp_path):
    path = tmp_path / "ckpt.npz"
    config = {**CONFIG, "sizes": (1, 2)}  # a tuple comes back from JSON as a list: still equal
    save_checkpoint(path, model=TinyNet(), config=config)
    check_config(load_checkpoint(path).config, config)
    with pytest.raises(CheckpointError, match=r"dropout: checkpoint \(absent\), model 0\.1"):
        check_config(load_checkpoint(path).config, {**config, "dropout": 0.1})


def test_restore_into_a_model_of_another_shape_explains(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model=TinyNet(), config=CONFIG)
    with pytest.raises(CheckpointError, match=r"do not fit this model.*fc1\.weight.*checkpoint's config"):
        restore(load_checkpoint(path), TinyNet(d_hidden=6))
    with pytest.raises(CheckpointError, match="no optimizer state"):
        model = TinyNet()
        restore(load_checkpoint(path), model, AdamW(model.named_parameters()))


# --- atomic saving --------------------------------------------------------------------------------------

def save_old_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    old_model, old_optimizer = trained(steps=1)
    save_checkpoint(path, model=old_model, config=CONFIG, optimizer=old_optimizer, iteration=1)
    return path, old_model.state_dict()


def assert_old_checkpoint_intact(tmp_path, path, old_state):
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
    ckpt = load_checkpoint(path)
    assert ckpt.iteration == 1
    assert_states_equal(ckpt.model_state, old_state)


def test_failed_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path, old_state = save_old_checkpoint(tmp_path)
    new_model, new_optimizer = trained(steps=3)

    def failing_replace(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, model=new_model, config=CONFIG, optimizer=new_optimizer, iteration=3)
    monkeypatch.undo()
    assert_old_checkpoint_intact(tmp_path, path, old_state)


def test_failure_halfway_through_writing_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path, old_state = save_old_checkpoint(tmp_path)
    new_model, new_optimizer = trained(steps=3)
    temporaries = []

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 the first bytes of an archive")
        temporaries.append(file.name)
        assert os.path.exists(file.name)
        raise OSError("simulated full disk")

    monkeypatch.setattr(checkpoint.numpy, "savez", failing_savez)
    with pytest.raises(OSError, match="simulated full disk"):
        save_checkpoint(path, model=new_model, config=CONFIG, optimizer=new_optimizer, iteration=3)
    monkeypatch.undo()
    assert temporaries and os.path.dirname(temporaries[0]) == str(tmp_path)  # written beside the target
    assert_old_checkpoint_intact(tmp_path, path, old_state)


def test_non_json_config_fails_before_touching_the_file(tmp_path):
    path, old_state = save_old_checkpoint(tmp_path)
    with pytest.raises(TypeError, match="JSON-able"):
        save_checkpoint(path, model=TinyNet(), config={"dtype": np.float32})
    assert_old_checkpoint_intact(tmp_path, path, old_state)


def test_data_is_forced_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                       else fd))
        real_fsync(fd)

    def recording_replace(src, dst):
        events.append(("replace", os.fspath(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model=TinyNet(), config=CONFIG)
    monkeypatch.undo()

    kinds = [kind for kind, _ in events]
    assert "replace" in kinds and "fsync" in kinds[:kinds.index("replace")]
    temporary = events[kinds.index("replace")][1]
    if os.path.exists("/proc/self/fd"):  # Linux: check that it was the temporary file that was synced
        assert ("fsync", os.path.realpath(temporary)) in events[:kinds.index("replace")]
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_saving_again_replaces_the_checkpoint(tmp_path):
    path, _ = save_old_checkpoint(tmp_path)
    new_model, new_optimizer = trained(steps=3)
    save_checkpoint(path, model=new_model, config=CONFIG, optimizer=new_optimizer, iteration=3)
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    ckpt = load_checkpoint(path)
    assert ckpt.iteration == 3
    assert_states_equal(ckpt.model_state, new_model.state_dict())


# --- resuming gives the run that never stopped ----------------------------------------------------------

def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    total, k = 8, 3
    path = tmp_path / "ckpt.npz"

    straight = TinyNet()
    straight_optimizer = AdamW(straight.named_parameters(), weight_decay=0.1)
    data_rng = np.random.default_rng(123)
    straight_losses = [train_step(straight, straight_optimizer, it, data_rng) for it in range(total)]

    model = TinyNet()
    optimizer = AdamW(model.named_parameters(), weight_decay=0.1)
    data_rng = np.random.default_rng(123)
    losses = [train_step(model, optimizer, it, data_rng) for it in range(k)]
    save_checkpoint(path, model=model, config=CONFIG, optimizer=optimizer, iteration=k,
                    rng_state=data_rng.bit_generator.state)
    del model, optimizer, data_rng

    ckpt = load_checkpoint(path)
    check_config(ckpt.config, CONFIG)
    config = ckpt.config
    model = TinyNet(config["d_in"], config["d_hidden"], config["d_out"], seed=42)  # restore must replace

    optimizer = AdamW(model.named_parameters())  # default hyperparameters: restore must replace them
    restore(ckpt, model, optimizer)
    data_rng = np.random.default_rng()
    data_rng.bit_generator.state = ckpt.rng_state
    losses += [train_step(model, optimizer, it, data_rng) for it in range(ckpt.iteration, total)]

    assert losses == straight_losses
    for (name, p), (_, q) in zip(model.named_parameters(), straight.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    for name in optimizer.m:
        np.testing.assert_array_equal(optimizer.m[name], straight_optimizer.m[name], err_msg=name)
        np.testing.assert_array_equal(optimizer.v[name], straight_optimizer.v[name], err_msg=name)


# --- files from elsewhere: sizes, lies and values checked before anything is unpacked ----------------------

def npy_bytes(header_shape, dtype="<f4", data=b""):
    """A .npy entry whose header says ``header_shape`` and whose data is ``data``, whatever that says."""
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(header_shape)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


def header_entry(**changes):
    header = {"format": checkpoint.FORMAT_NAME, "version": checkpoint.FORMAT_VERSION, "config": {},
              "iteration": 0, **changes}
    return npy_bytes((len(json.dumps(header)),), "|u1", json.dumps(header).encode())


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    """A small file whose entry unpacks to 200 MB of zeros (compressed 1000 to 1): refused from the sizes
    the archive declares, without unpacking (memory stays a small multiple of the file's size)."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.npy", header_entry())
        with archive.open("model/w.npy", "w", force_zip64=True) as entry:
            entry.write(npy_bytes((50_000_000,)))
            for _ in range(200):
                entry.write(bytes(1_000_000))
    size = path.stat().st_size
    assert size < 1_000_000
    tracemalloc.start()
    try:
        assert_invalid(path, "would unpack to")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * size


def test_an_entry_whose_array_header_lies_about_its_size_is_refused(tmp_path):
    """A .npy header claiming 10¹² floats over 8 bytes of data: refused before the array is allocated."""
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.npy", header_entry())
        archive.writestr("model/w.npy", npy_bytes((10**12,), data=bytes(8)))
    assert_invalid(path, "says it holds float32 of shape (1000000000000,)")


def test_an_entry_twice_is_refused(tmp_path):
    """numpy.load would keep one of two entries of the same name silently."""
    path = tmp_path / "twice.npz"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.npy", header_entry())
        archive.writestr("model/w.npy", npy_bytes((2,), data=bytes(8)))
        archive.writestr("model/w.npy", npy_bytes((2,), data=bytes(8)))
    assert_invalid(path, "the entry 'model/w.npy' is in the archive twice")


@pytest.mark.parametrize("text, reason", [
    ("[" * 100_000 + "]" * 100_000, "the header is not UTF-8 JSON"),             # RecursionError before
    ('{"iteration": 1' + "0" * 5000 + "}", "the header is not UTF-8 JSON"),       # Python's digit limit
])
def test_a_header_that_breaks_the_json_reader_is_refused(tmp_path, text, reason):
    path = tmp_path / "ckpt.npz"
    with open(path, "wb") as file:
        np.savez(file, header=np.frombuffer(text.encode(), dtype=np.uint8))
    assert_invalid(path, reason)


@pytest.mark.parametrize("changes, reason", [
    ({"iteration": -40}, "the header's 'iteration' is -40, not a whole number >= 0"),
    ({"iteration": "7"}, "the header's 'iteration' is '7'"),
    ({"iteration": True}, "the header's 'iteration' is True"),
    ({"config": []}, "the header's 'config' is [], not a dict"),
    ({"rng_state": 3}, "the header's 'rng_state' is 3, not a dict"),
    ({"optimizer": {}}, "the header's optimizer state is wrong (step None, lr None, eps None, weight_decay None, "
                        "betas None)"),
    ({"optimizer": {"step": 2, "lr": 0.1, "eps": 1e-8, "weight_decay": 0.0, "betas": [0.9]}},
     "(betas [0.9])"),
    ({"extra": {"best_val_loss": "low"}}, "extra.best_val_loss is 'low', not a number"),
])
def test_header_fields_of_the_wrong_type_or_range_are_refused(tmp_path, changes, reason):
    path = tmp_path / "ckpt.npz"
    good = {"format": checkpoint.FORMAT_NAME, "version": checkpoint.FORMAT_VERSION, "config": {}, "iteration": 0}
    write_with_header(path, {**good, **changes})
    assert_invalid(path, reason)


def rewritten(path, tmp_path, change_arrays):
    """A copy of the checkpoint at ``path`` with its arrays changed by ``change_arrays(dict)``."""
    with np.load(path) as npz:
        entries = {key: npz[key].copy() for key in npz.files}
    change_arrays(entries)
    copy = tmp_path / "changed.npz"
    with open(copy, "wb") as file:
        np.savez(file, **entries)
    return copy


@pytest.mark.parametrize("change, reason", [
    (lambda e: e["model/fc1.weight"].__setitem__((0, 0), np.nan), "model/fc1.weight holds NaN or infinite"),
    (lambda e: e["optim/v/fc1.weight"].__setitem__((1, 2), np.inf), "optim/v/fc1.weight holds NaN or infinite"),
    (lambda e: e.__setitem__("model/fc1.weight", e["model/fc1.weight"].astype(np.int64)), "is int64, not a float"),
    (lambda e: e.pop("optim/m/fc1.weight"), "no moment of shape (4, 8) for fc1.weight"),
    (lambda e: e.__setitem__("optim/m/extra", np.zeros(3)), "moments for ['extra']"),
    (lambda e: e.__setitem__("notes", np.zeros(3)), "entries a checkpoint does not have: ['notes']"),
])
def test_weights_that_are_not_finite_floats_or_lack_moments_are_refused(tmp_path, change, reason):
    path = tmp_path / "ckpt.npz"
    model, optimizer = trained()
    save_checkpoint(path, model=model, config=CONFIG, optimizer=optimizer)
    assert_invalid(rewritten(path, tmp_path, change), reason)


# --- fuzzing: a clear error or a correct load, never another exception, never a memory bomb --------------

def load_or_refuse(path):
    """load_checkpoint under tracemalloc: the checkpoint, or None for a CheckpointError naming the file.
    Any other exception fails the test, and so does memory beyond a small multiple of the file's size
    (JSON costs ~30 bytes of Python objects per byte of a header; the arrays cost their own size)."""
    size = path.stat().st_size
    tracemalloc.start()
    try:
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as err:
            assert str(path) in str(err)
            loaded = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (64 << 10) + 40 * size
    if loaded is not None:          # what a load promises: typed fields, finite float weights
        assert is_int(loaded.iteration) and loaded.iteration >= 0
        assert isinstance(loaded.config, dict) and isinstance(loaded.extra, dict)
        for array in loaded.model_state.values():
            assert np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all()
    return loaded


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory):
    return valid_checkpoint_bytes(tmp_path_factory.mktemp("valid"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
       keep=st.floats(0.02, 1.0))
def test_fuzz_damaged_checkpoints_are_loaded_or_refused(tmp_path_factory, valid_bytes, edits, keep):
    data = bytearray(valid_bytes)
    for where, byte in edits:
        data[int(where * len(data))] = byte
    path = tmp_path_factory.mktemp("fuzz") / "ckpt.npz"
    path.write_bytes(bytes(data[:max(2, int(len(data) * keep))]))
    load_or_refuse(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
HEADER_FIELDS = ["config", "iteration", "optimizer", "tokenizer", "rng_state", "extra"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(HEADER_FIELDS), JSON), weight=st.sampled_from(
    [np.zeros((2, 3), np.float32), np.array([np.nan]), np.arange(4), np.zeros((0, 5)), np.array([np.inf])]))
def test_fuzz_headers_and_arrays_are_loaded_or_refused(tmp_path_factory, fields, weight):
    header = {"format": checkpoint.FORMAT_NAME, "version": checkpoint.FORMAT_VERSION, **fields}
    path = tmp_path_factory.mktemp("fuzz") / "ckpt.npz"
    with open(path, "wb") as file:
        np.savez(file, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **{"model/w": weight})
    load_or_refuse(path)
