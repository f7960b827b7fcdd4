"""Your own images: image folders and .npz/.npy files through the CLI, their fingerprints, bad input."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tfp_vae
from tfp_vae import cli
from tfp_vae.data import sources
from tfp_vae.errors import ConfigError, DataError
from tfp_vae.runs import fingerprint

SIZE = 12


def _blob_images(n, seed):
    """n grey uint8 images [n, SIZE, SIZE]: a bright square of random size and place."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, SIZE, SIZE), np.uint8)
    for img in x:
        side, (r, c) = rng.integers(3, 7), rng.integers(0, SIZE - 6, size=2)
        img[r : r + side, c : c + side] = 255
    return x


def _write_folder(root: Path, classes=("bars", "blobs"), per_class=12, seed=0) -> Path:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(_blob_images(per_class, seed + k)):
            if k == 1:
                img = img.T.copy()
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


def _run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


TINY = [
    "--input-shape",
    str(SIZE),
    str(SIZE),
    "1",
    "--hidden-units",
    "8",
    "--latent-dim",
    "2",
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--verbose",
    "0",
]


def test_folder_trains_evaluates_plots_and_refuses_changed_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_folder(tmp_path / "shapes")
    code, out = _run(["train", "--out", "run", "--dataset", "./shapes", *TINY], capsys)
    assert code == 0, out
    record = json.loads((tmp_path / "run" / fingerprint.DATA_FILE).read_text())
    assert record["source"] == "image_folder" and record["path"] == str((tmp_path / "shapes").resolve())
    assert (record["train_images"], record["test_images"]) == (22, 2)  # 10% of 24 held out
    assert record["class_names"] == ["bars", "blobs"] and record["shape"] == [SIZE, SIZE, 1]

    code, out = _run(["evaluate", "run", "--num-samples", "4"], capsys)
    assert code == 0, out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_images"] == 2 and np.isfinite(metrics["iwae"]) and metrics["nll"] > 0
    code, out = _run(["plot", "run"], capsys)
    assert code == 0, out
    assert {"examples.png", "latent_space.png", "reconstructions.png"} <= set(os.listdir("run/plots"))

    # From another directory the relative path finds nothing, so the recorded one is used.
    monkeypatch.chdir(tmp_path / "run")
    assert fingerprint.dataset_location("./shapes", record) == record["path"]
    monkeypatch.chdir(tmp_path)
    assert fingerprint.dataset_location("./shapes", record) == "./shapes"

    Image.fromarray(np.full((SIZE, SIZE), 255, np.uint8)).save(tmp_path / "shapes" / "blobs" / "003.png")
    for argv in (
        ["evaluate", "run", "--num-samples", "4"],
        ["plot", "run"],
        ["train", "--out", "run", "--dataset", "./shapes", *TINY],
    ):
        code, out = _run(argv, capsys)
        assert code == 2 and "not the data the run" in out and "sha256" in out, out
        assert "train_images" not in out  # only what changed is named


def test_without_input_shape_a_run_takes_the_images_shape_and_says_so(tmp_path, capsys):
    x = np.repeat(_blob_images(20, 3)[..., None], 3, axis=-1)  # RGB [20, SIZE, SIZE, 3]
    np.save(tmp_path / "rgb.npy", x)
    data = str(tmp_path / "rgb.npy")
    code, out = _run(["train", "--out", str(tmp_path / "run"), "--dataset", data, *TINY[4:]], capsys)
    assert code == 0, out
    assert (
        out.splitlines()[0]
        == f"--input-shape not given: using the images' shape, --input-shape {SIZE} {SIZE} 3"
    )
    assert tfp_vae.load_config(tmp_path / "run").input_shape == (SIZE, SIZE, 3)
    # the same command again resumes the same run (nothing to do), saying the shape again
    code, out = _run(["train", "--out", str(tmp_path / "run"), "--dataset", data, *TINY[4:]], capsys)
    assert code == 0 and "Trained 1 of 1 epochs" in out, out
    # an explicit shape that disagrees stays an error naming the fix, before anything is written
    wrong = ["--input-shape", "28", "28", "1", *TINY[4:]]
    code, out = _run(["train", "--out", str(tmp_path / "other"), "--dataset", data, *wrong], capsys)
    assert code == 2 and f"have shape ({SIZE}, {SIZE}, 3)" in out and f"--input-shape {SIZE} {SIZE} 3" in out
    assert not (tmp_path / "other" / "config.json").exists()
    # the built-in data sets keep their own shape without a word
    assert cli.with_images_shape(tfp_vae.VAEConfig()) == tfp_vae.VAEConfig()


def test_folder_without_labels_has_no_class_names(tmp_path):
    for i, img in enumerate(_blob_images(10, 5)):
        Image.fromarray(img).convert("RGB").save(tmp_path / f"{i}.jpg", quality=95)
    loaded = sources.load_raw(str(tmp_path), test_fraction=0.2)
    assert loaded.y is None and loaded.class_names is None
    assert loaded.x.shape == (8, SIZE, SIZE, 3) and loaded.x_test.shape == (2, SIZE, SIZE, 3)
    codes = np.random.default_rng(0).normal(size=(20, 2))
    fig = tfp_vae.plots.model.latent_scatter(codes, None, None)
    assert fig.axes[0].get_legend() is None
    assert tfp_vae.plots.model.image_grid(loaded.x_test / 255.0, None, None).axes


def test_resize_converts_mixed_sizes_and_channels(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match="differ in size.*--resize true"):
        sources.load_raw(str(tmp_path), input_shape=(16, 16, 1), test_fraction=0.5)
    loaded = sources.load_raw(str(tmp_path), input_shape=(16, 8, 1), resize=True, test_fraction=0.5)
    both = np.concatenate([loaded.x, loaded.x_test])
    assert both.shape == (2, 16, 8, 1)
    assert sorted(both.reshape(2, -1).mean(axis=1).tolist()) == [0.0, 255.0]  # whole image, no crop


def test_held_out_split_is_fixed_and_disjoint(tmp_path):
    x = _blob_images(50, 1)
    x[:, -1, -1] = np.arange(50)  # every image unique, its index readable
    y = np.arange(50) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y)
    a = sources.load_raw(str(tmp_path / "d.npz"), test_fraction=0.2)
    b = sources.load_raw(str(tmp_path / "d.npz"), test_fraction=0.2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert len(a.x) == 40 and len(a.x_test) == 10 and a.class_names == ("0", "1", "2")
    together = np.concatenate([a.x, a.x_test])[:, :, :, 0]
    assert sorted(map(bytes, together)) == sorted(map(bytes, x))  # every image exactly once
    # Labels travel with their images.
    for images, labels in ((a.x, a.y), (a.x_test, a.y_test)):
        for img, label in zip(images[:, :, :, 0], labels):
            assert label == y[img[-1, -1]]


def test_npz_with_given_split_and_npy_of_floats(tmp_path):
    x, xt = _blob_images(20, 2), _blob_images(6, 3)
    np.savez(tmp_path / "split.npz", x_train=x, y_train=np.zeros(20, int), x_test=xt, y_test=np.ones(6, int))
    (tx, ty), (vx, vy) = tfp_vae.load_dataset(
        str(tmp_path / "split.npz"), "bernoulli", input_shape=(SIZE, SIZE, 1)
    )
    np.testing.assert_array_equal(vx[..., 0], xt / 255.0)  # the given test split, in order
    assert tx.shape == (20, SIZE, SIZE, 1) and ty.tolist() == [0] * 20 and vy.tolist() == [1] * 6
    np.save(tmp_path / "floats.npy", x[..., None] / 255.0 * 0.5 + 0.25)
    (fx, fy), _ = tfp_vae.load_dataset(str(tmp_path / "floats.npy"), "beta", test_fraction=0.25)
    assert fy is None and fx.dtype == np.float32 and fx.min() == 0.25 and fx.max() == 0.75


def test_bad_input_is_a_clear_data_error(tmp_path):
    bad = tmp_path / "bad"
    _write_folder(bad, per_class=3)
    data = (bad / "bars" / "001.png").read_bytes()
    (bad / "bars" / "001.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read image .*001.png"):
        sources.load_raw(str(bad))

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        sources.load_raw(str(tmp_path / "empty"))
    (tmp_path / "empty" / "cats").mkdir()
    with pytest.raises(DataError, match="class folder .*cats holds no images"):
        sources.load_raw(str(tmp_path / "empty"))

    np.savez(tmp_path / "wrong.npz", images=_blob_images(4, 0))
    with pytest.raises(DataError, match=r"holds arrays \['images'\]; expected 'x'"):
        sources.load_raw(str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "labels.npz", x=_blob_images(10, 0), y=np.zeros(9, int))
    with pytest.raises(DataError, match="9 labels for 10 images"):
        sources.load_raw(str(tmp_path / "labels.npz"))
    np.save(tmp_path / "range.npy", np.full((4, SIZE, SIZE), 2.0))
    with pytest.raises(DataError, match=r"in \[0, 1\]"):
        sources.load_raw(str(tmp_path / "range.npy"))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "labels.npz").read_bytes()[:100])
    with pytest.raises(DataError, match="cut.npz cannot be read"):
        sources.load_raw(str(tmp_path / "cut.npz"))
    np.save(tmp_path / "ok.npy", _blob_images(10, 0))
    with pytest.raises(DataError, match=f"--input-shape {SIZE} {SIZE} 1"):
        sources.load_raw(str(tmp_path / "ok.npy"), input_shape=(28, 28, 1))

    # Values outside the family's support: binary floats for the Beta likelihood, before training.
    np.save(tmp_path / "binary.npy", (_blob_images(10, 0) / 255.0).astype(np.float32))
    config = tfp_vae.VAEConfig(
        dataset=str(tmp_path / "binary.npy"),
        likelihood="beta",
        input_shape=(SIZE, SIZE, 1),
        hidden_units=(8,),
        epochs=1,
    )
    with pytest.raises(DataError, match="beta"):
        tfp_vae.train(config, out_dir=tmp_path / "never", verbose=0)
    assert not (tmp_path / "never").exists()


def test_config_accepts_paths_and_validates_the_data_fields(tmp_path):
    assert tfp_vae.VAEConfig(dataset="data/x.npz").dataset == "data/x.npz"
    assert tfp_vae.VAEConfig(dataset="./my_images", resize=True).resize is True
    assert tfp_vae.VAEConfig(dataset="dsprites_small", input_shape=(64, 64, 1)).test_fraction == 0.1
    with pytest.raises(ConfigError, match="dataset.*a path to a folder"):
        tfp_vae.VAEConfig(dataset="cifar10")
    # A bare name is never a folder, wherever the config is loaded; the error says how to name one.
    (tmp_path / "pictures").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        with pytest.raises(ConfigError, match="write './pictures'"):
            tfp_vae.VAEConfig(dataset="pictures")
        assert tfp_vae.VAEConfig(dataset="./pictures").dataset == "./pictures"
    for bad in (0, 1, 1.5):
        with pytest.raises(ConfigError, match="test_fraction"):
            tfp_vae.VAEConfig(test_fraction=bad)
    with pytest.raises(ConfigError, match="resize"):
        tfp_vae.VAEConfig(resize="yes")
