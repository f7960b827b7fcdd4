"""Every bad input named in the reliability issue raises a `ValueError` subclass of the project's
own errors, whose message names the problem and the fix, before any work starts.

Config fields (latent_dim < 1, beta < 0, kl_samples < 1, batch_size < 1, unknown likelihood,
encoder, KL mode or style) are covered in test_config.py; here: images, labels, data folders,
run directories, and the fields this issue added.
"""

import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import tfp_vae
from conftest import grey_images
from tfp_vae import ConfigError, DataError, RunDirError, VAEConfig
from tfp_vae.data.idx import FILES
from tfp_vae.data.pixels import check_images, check_labels

SHAPE = (28, 28, 1)


def _raises(exc, words, fn, *args, **kwargs):
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert isinstance(err.value, (ValueError, tfp_vae.TfpVaeError))
    return message


# ---------------------------------------------------------------------------- images
@pytest.mark.parametrize(
    "images, likelihood, words",
    [
        (np.zeros([4, 28, 28], np.float32), "bernoulli", ["without a channel axis", "x[..., None]"]),
        (np.zeros([4, 28, 28, 1, 1], np.float32), "bernoulli", ["extra trailing axis", "x[..., 0]"]),
        (np.zeros([4, 28, 28, 3], np.float32), "bernoulli", ["3 channel(s)", "input_shape=(28, 28, 3)"]),
        (np.zeros([4, 32, 32, 1], np.float32), "bernoulli", ["(4, 32, 32, 1)", "input_shape"]),
        (np.zeros([4, 28, 28, 1], np.uint8), "bernoulli", ["uint8", "not scaled", "scale_images"]),
        (np.zeros([4, 28, 28, 1], np.int64), "bernoulli", ["must be floats", "scale_images"]),
        (np.full([4, 28, 28, 1], 255.0, np.float32), "bernoulli", ["[0, 1]", "255", "scale_images"]),
        (np.full([4, 28, 28, 1], -0.5, np.float32), "bernoulli", ["[0, 1]", "-0.5"]),
        (
            np.zeros([4, 28, 28, 1], np.float32),
            "beta",
            ["open interval (0, 1)", "exactly 0 or 1", "(x + 0.5) / 256"],
        ),
        (np.ones([4, 28, 28, 1], np.float32), "beta", ["open interval (0, 1)", "scale_images(x, 'beta')"]),
        (np.zeros([0, 28, 28, 1], np.float32), "bernoulli", ["empty", "at least one image"]),
    ],
    ids=[
        "no-channel",
        "extra-axis",
        "rgb",
        "wrong-size",
        "uint8",
        "ints",
        "unscaled-floats",
        "negative",
        "beta-zero",
        "beta-one",
        "empty",
    ],
)
def test_bad_images(images, likelihood, words):
    _raises(DataError, words, check_images, images, SHAPE, likelihood)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels(bad):
    x = grey_images(3, likelihood="beta")
    x[1, 5, 5, 0] = bad
    _raises(DataError, ["NaN or inf", "Clean or drop"], check_images, x, SHAPE, "beta")


def test_good_images_pass():
    check_images(grey_images(3, likelihood="beta"), SHAPE, "beta")


# ---------------------------------------------------------------------------- labels
def test_labels_of_another_length():
    _raises(DataError, ["5 entries", "4 images", "same length"], check_labels, np.arange(5), np.zeros([4, 2]))
    _raises(DataError, ["1-D", "reshape(-1)"], check_labels, np.zeros([4, 1]), np.zeros([4, 2]))
    check_labels(None, np.zeros([4, 2]))
    check_labels(np.arange(4), np.zeros([4, 2]))


def test_train_checks_labels_and_images_before_writing(tmp_path):
    x, xt = grey_images(8), grey_images(4, seed=1)
    out = tmp_path / "run"
    cfg = VAEConfig(epochs=1, hidden_units=(4,))
    _raises(
        DataError,
        ["training labels has 7 entries", "8 images"],
        tfp_vae.train,
        cfg,
        out,
        data=((x, np.arange(7)), (xt, None)),
        verbose=0,
    )
    _raises(
        DataError,
        ["test labels has 3 entries"],
        tfp_vae.train,
        cfg,
        out,
        data=((x, None), (xt, np.arange(3))),
        verbose=0,
    )
    _raises(
        DataError,
        ["uint8"],
        tfp_vae.train,
        cfg,
        out,
        data=(((x * 255).astype(np.uint8), None), (xt, None)),
        verbose=0,
    )
    assert not out.exists()  # nothing was written: the errors came before any work


# ---------------------------------------------------------------------------- new config fields
@pytest.mark.parametrize(
    "field, value, words",
    [
        ("clip_norm", -1.0, ">= 0"),
        ("clip_norm", float("inf"), "finite"),
        ("train_examples", -3, ">= 0"),
        ("deterministic", "yes", "True or False"),
        ("kl_samples", 0, ">= 1"),
    ],
)
def test_new_fields_name_themselves(field, value, words):
    kwargs = {field: value, **({"kl": "sampled"} if field == "kl_samples" else {})}
    _raises(ConfigError, [f"VAEConfig.{field}=", words], VAEConfig, **kwargs)


def test_unknown_strategy():
    from tfp_vae.training.distribute import make_strategy

    _raises(
        ConfigError,
        ["strategy='tpu': unknown distribution strategy", "mirrored", "multiworker"],
        make_strategy,
        "tpu",
    )


def test_multiworker_without_tf_config(monkeypatch):
    from tfp_vae.training.distribute import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    _raises(ConfigError, ["TF_CONFIG", "cluster"], make_strategy, "multiworker")


# ---------------------------------------------------------------------------- data folders
def test_data_dir_without_the_files(tmp_path):
    (tmp_path / FILES[0]).write_bytes(b"")  # one of four is not enough
    _raises(
        DataError,
        ["neither it nor its subfolder", "four fashion_mnist files"],
        tfp_vae.load_fashion_mnist,
        data_dir=tmp_path,
    )


def test_data_dir_with_a_corrupt_file(tmp_path, data_dir):
    for name in FILES[1:]:
        os.symlink(data_dir / name, tmp_path / name)
    truncated = (data_dir / FILES[0]).read_bytes()[:1000]
    (tmp_path / FILES[0]).write_bytes(truncated)
    _raises(
        DataError,
        ["MD5", "corrupt or truncated", "Replace it"],
        tfp_vae.load_fashion_mnist,
        data_dir=tmp_path,
    )


# ---------------------------------------------------------------------------- run directories
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A saved (untrained) small model's run directory, copied fresh by `run_dir`."""
    root = tmp_path_factory.mktemp("runs")
    tfp_vae.save(tfp_vae.build_vae(VAEConfig(hidden_units=(4,), latent_dim=2)), root / "a")
    tfp_vae.save(tfp_vae.build_vae(VAEConfig(hidden_units=(4,), latent_dim=3)), root / "b")
    return root


@pytest.fixture
def run_dir(saved_run, tmp_path):
    shutil.copytree(saved_run / "a", tmp_path / "a")
    return tmp_path / "a"


def test_intact_run_loads(run_dir):
    assert tfp_vae.load(run_dir).config.latent_dim == 2


def _truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize(
    "name, damage, words",
    [
        ("config.json", Path.unlink, ["config.json is missing", "train into it first"]),
        ("config.json", lambda p: _truncate(p, 40), ["not a valid config", "not valid JSON"]),
        ("model.weights.h5", Path.unlink, ["model.weights.h5 is missing", "train it again"]),
        ("model.weights.h5", lambda p: _truncate(p, 5000), ["not a readable HDF5", "truncated or corrupt"]),
    ],
    ids=["missing-config", "truncated-config", "missing-weights", "truncated-weights"],
)
def test_damaged_run_dir(run_dir, name, damage, words):
    damage(run_dir / name)
    _raises(RunDirError, words, tfp_vae.load, run_dir)


def test_config_swapped_under_the_weights(run_dir, saved_run):
    shutil.copy(saved_run / "b" / "config.json", run_dir / "config.json")
    _raises(
        RunDirError,
        ["written for another config", "latent_dim: 2 -> 3", "do not belong together"],
        tfp_vae.load,
        run_dir,
    )


def test_weights_of_another_architecture_without_stamp(run_dir, saved_run):
    shutil.copy(saved_run / "b" / "model.weights.h5", run_dir / "model.weights.h5")
    with h5py.File(run_dir / "model.weights.h5", "a") as f:
        del f.attrs["tfp_vae_config"]  # as if written by plain Keras: only the shapes can tell
    _raises(RunDirError, ["cannot be loaded", "another config"], tfp_vae.load, run_dir)


class _Payload:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_loading_never_runs_code(run_dir, tmp_path):
    sentinel = tmp_path / "code-ran"
    (run_dir / "model.weights.h5").write_bytes(pickle.dumps(_Payload(str(sentinel))))
    _raises(RunDirError, ["not a readable HDF5"], tfp_vae.load, run_dir)
    assert not sentinel.exists()
    # A config that names a callable is data, not code: it is rejected as an unknown field.
    (run_dir / "config.json").write_text('{"__reduce__": "os.system", "latent_dim": 2}')
    _raises(RunDirError, ["unknown VAEConfig field", "__reduce__"], tfp_vae.load, run_dir)


# ---------------------------------------------------------------------------- training protocol (issue 9)
@pytest.mark.parametrize(
    "fields, words",
    [
        ({"validation_examples": -1}, ["VAEConfig.validation_examples=-1", ">= 0"]),
        (
            {"validation_examples": 10, "early_stopping_patience": -2},
            ["VAEConfig.early_stopping_patience=-2", ">= 0"],
        ),
        ({"early_stopping_patience": 5}, ["VAEConfig.early_stopping_patience=5", "validation_examples"]),
        ({"lr_schedule": "cosine"}, ["VAEConfig.lr_schedule='cosine'", "'constant'", "'plateau'"]),
        ({"lr_schedule": "plateau"}, ["VAEConfig.lr_schedule='plateau'", "validation_examples"]),
        ({"validation_examples": 10, "lr_factor": 1.5}, ["VAEConfig.lr_factor=1.5", "between 0 and 1"]),
        ({"validation_examples": 10, "lr_patience": 0}, ["VAEConfig.lr_patience=0", ">= 1"]),
        ({"lr_min": 0.1}, ["VAEConfig.lr_min=0.1", "learning_rate"]),
    ],
)
def test_protocol_fields_name_themselves(fields, words):
    _raises(ConfigError, words, VAEConfig, **fields)


def test_validation_split_as_large_as_the_training_set_fails_before_writing(tmp_path):
    out = tmp_path / "run"
    cfg = VAEConfig(epochs=1, hidden_units=(4,), validation_examples=8)
    _raises(
        ConfigError,
        ["VAEConfig.validation_examples=8", "8 training images", "lower"],
        tfp_vae.train,
        cfg,
        out,
        data=((grey_images(8), None), (grey_images(4, seed=1), None)),
        verbose=0,
    )
    assert not out.exists()
    # with train_examples the config itself knows the training set's size
    _raises(
        ConfigError,
        ["VAEConfig.validation_examples=8", "train_examples=8", "lower"],
        VAEConfig,
        train_examples=8,
        validation_examples=8,
    )


@pytest.mark.parametrize(
    "text, words",
    [
        ("{latent_dim: 2", ["not valid JSON"]),
        ("[1, 2]", ["must be an object"]),
        ('{"latent_dim": 2, "lattent_dim": 3}', ["unknown VAEConfig field(s) ['lattent_dim']"]),
        ('{"validation_examples": -4}', ["VAEConfig.validation_examples=-4"]),
    ],
    ids=["not-json", "not-object", "unknown-field", "bad-value"],
)
def test_bad_config_file_is_named_before_training(tmp_path, capsys, text, words):
    from tfp_vae.cli import main

    path = tmp_path / "experiment.json"
    path.write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out)]) == 2
    message = capsys.readouterr().err
    for word in [f"--config {path}", *words]:
        assert word in message, f"{word!r} not in {message!r}"
    assert not out.exists()


def test_missing_config_file(tmp_path, capsys):
    from tfp_vae.cli import main

    assert main(["train", "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "r")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_tensorboard_without_its_package_fails_before_training(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "tensorboard" else real(name, *args)
    )
    out = tmp_path / "run"
    data = ((grey_images(8), None), (grey_images(4, seed=1), None))
    cfg = VAEConfig(epochs=1, hidden_units=(4,))
    _raises(
        ConfigError,
        ["--tensorboard", 'pip install "tfp_vae[tensorboard]"'],
        tfp_vae.train,
        cfg,
        out,
        data=data,
        tensorboard=True,
        verbose=0,
    )
    assert not out.exists()
