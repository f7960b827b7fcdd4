import gzip
import os
import shutil

import numpy as np
import pytest

import tfp_vae
from tfp_vae import DataError
from tfp_vae.data import idx as data


def test_real_fashion_mnist_is_the_official_data(data_dir):
    (x, y), (xt, yt) = tfp_vae.load_uint8("fashion_mnist", data_dir=data_dir)
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    # Sums published with the shared copy of the files.
    assert int(x.sum(dtype=np.int64)) == 3431114169 and int(xt.sum(dtype=np.int64)) == 573469082
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert len(tfp_vae.CLASS_NAMES) == 10 and tfp_vae.CLASS_NAMES[9] == "Ankle boot"


def test_scaling_follows_the_likelihood(data_dir):
    (x, _), (xt, _) = tfp_vae.load_fashion_mnist("bernoulli", data_dir=data_dir)
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    (xb, _), _ = tfp_vae.load_fashion_mnist("beta", data_dir=data_dir)
    assert xb.min() == pytest.approx(0.5 / 256) and xb.max() == pytest.approx(255.5 / 256)
    assert xb.min() > 0 and xb.max() < 1  # a Beta never sees 0 or 1


def test_binarization(data_dir):
    (xs, _), (xts, _) = tfp_vae.load_fashion_mnist(binarize="static", data_dir=data_dir)
    assert set(np.unique(xs)) == {0.0, 1.0} and set(np.unique(xts)) == {0.0, 1.0}
    (xs2, _), _ = tfp_vae.load_fashion_mnist(binarize="static", data_dir=data_dir)
    np.testing.assert_array_equal(xs, xs2)  # reproducible
    (x, _), _ = tfp_vae.load_fashion_mnist(data_dir=data_dir)
    # One draw per pixel with probability x: the mean matches the grey level.
    assert abs(xs.mean() - x.mean()) < 1e-3
    (xd, _), (xtd, _) = tfp_vae.load_fashion_mnist(binarize="dynamic", data_dir=data_dir)
    assert len(np.unique(xd)) > 2  # training images stay grey: the model re-draws them
    np.testing.assert_array_equal(xtd, xts)  # test images binarized once, the same way


def test_env_var_and_subfolder(data_dir, tmp_path, monkeypatch):
    sub = tmp_path / "fashion-mnist"
    sub.mkdir()
    for f in data.FILES:
        os.symlink(data_dir / f, sub / f)
    monkeypatch.setenv("TFP_VAE_DATA_DIR", str(tmp_path))
    assert data.find_data_dir(data.FASHION_MNIST) == sub
    (x, _), _ = tfp_vae.load_uint8()
    assert x.shape == (60000, 28, 28, 1)


def test_explicit_dir_wins_and_says_where_it_looked(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TFP_VAE_DATA_DIR", str(data_dir))
    with pytest.raises(DataError) as err:
        data.find_data_dir(data.FASHION_MNIST, tmp_path)
    assert str(tmp_path) in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)


def test_corrupt_file_is_named(data_dir, tmp_path):
    for f in data.FILES:
        shutil.copy(data_dir / f, tmp_path / f)
    with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(DataError) as err:
        tfp_vae.load_fashion_mnist(data_dir=tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "MD5" in msg and "corrupt" in msg


def test_mnist_loader_recognises_fashion_files(data_dir):
    with pytest.raises(DataError, match="fashion_mnist's file, not mnist's"):
        tfp_vae.load_mnist(data_dir=data_dir)


def test_keras_cache_then_download(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("TFP_VAE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / ".keras" / "datasets" / "fashion-mnist"

    import tf_keras

    calls = []

    def offline(fname, origin, **kwargs):
        calls.append(origin)
        raise OSError("network unreachable")

    monkeypatch.setattr(tf_keras.utils, "get_file", offline)
    with pytest.raises(DataError) as err:
        data.find_data_dir(data.FASHION_MNIST)
    assert str(cache) in str(err.value) and "TFP_VAE_DATA_DIR" in str(err.value)
    assert calls and calls[0].endswith("train-images-idx3-ubyte.gz")

    cache.mkdir(parents=True)
    for f in data.FILES:
        os.symlink(data_dir / f, cache / f)
    calls.clear()
    assert data.find_data_dir(data.FASHION_MNIST) == cache and not calls


def test_read_idx_round_trip_and_bad_header(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], ">u4").tobytes()
    with gzip.open(tmp_path / "ok.gz", "wb") as f:
        f.write(header + images.tobytes())
    np.testing.assert_array_equal(data.read_idx(tmp_path / "ok.gz"), images)
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(bytes([1, 2, 3, 4]))
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "bad.gz")


@pytest.mark.parametrize(
    "make, likelihood, words",
    [
        (lambda: np.zeros([4, 28, 28, 1], np.uint8), "bernoulli", "not scaled"),
        (lambda: np.zeros([4, 28, 28], np.float32), "bernoulli", "x[..., None]"),
        (lambda: np.zeros([4, 32, 32, 1], np.float32), "bernoulli", "expects [N, 28, 28, 1]"),
        (lambda: np.zeros([0, 28, 28, 1], np.float32), "bernoulli", "empty"),
        (lambda: np.full([4, 28, 28, 1], np.nan, np.float32), "bernoulli", "NaN"),
        (lambda: np.full([4, 28, 28, 1], 1.5, np.float32), "bernoulli", "[0, 1]"),
        (lambda: np.zeros([4, 28, 28, 1], np.float32), "beta", "never exactly 0 or 1"),
    ],
)
def test_check_images_names_the_problem(make, likelihood, words):
    with pytest.raises(DataError) as err:
        tfp_vae.check_images(make(), (28, 28, 1), likelihood)
    assert words in str(err.value)


def test_bernoulli_on_grey_data_warns():
    x = np.full([2, 28, 28, 1], 0.5, np.float32)
    with pytest.warns(UserWarning, match="not a normalised density"):
        tfp_vae.check_images(x, (28, 28, 1), "bernoulli")
