"""Fashion-MNIST and MNIST from their four IDX files, scaled for a likelihood family.

Where the files are looked for, in order:
  1. an explicit `data_dir` argument;
  2. the environment variable `TFP_VAE_DATA_DIR`;
  3. the Keras cache, `~/.keras/datasets/<folder>/`;
  4. else they are downloaded into that cache through `tf_keras.utils.get_file`.
In 1 and 2 the files may sit in the folder itself or in its subfolder `<folder>` (so one folder can
hold both data sets). Every file is checked against its known MD5 sum.

Needs the data set's files (tests/test_data.py makes the same calls):

>>> (x, y), (xt, yt) = load_fashion_mnist(likelihood="beta")    # doctest: +SKIP
>>> x.shape, x.dtype, float(x.min()) > 0                         # doctest: +SKIP
((60000, 28, 28, 1), dtype('float32'), True)

Scaling and binarizing any uint8 images:

>>> import numpy as np
>>> raw = np.array([[0, 128, 255]], np.uint8)
>>> scale_images(raw, "bernoulli").tolist(), scale_images(raw, "beta").tolist()
([[0.0, 0.501960813999176, 1.0]], [[0.001953125, 0.501953125, 0.998046875]])
>>> binarize_images(scale_images(raw, "bernoulli"), seed=0).tolist()[0][::2]   # P(1) = x
[0.0, 1.0]
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from tfp_vae import likelihoods
from tfp_vae.errors import DataError

# ((x_train, y_train), (x_test, y_test)): images [N, H, W, C], labels int [N] or None.
Splits = tuple[tuple[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray | None]]

ENV_VAR = "TFP_VAE_DATA_DIR"
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # subfolder name in the Keras cache and in a data dir
    md5: dict  # file name -> MD5 hex digest
    origin: str  # base URL the files are downloaded from
    class_names: tuple


FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    folder="fashion-mnist",
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    origin="https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

MNIST = DatasetSpec(
    name="mnist",
    folder="mnist",
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    origin="https://storage.googleapis.com/cvdf-datasets/mnist/",
    class_names=tuple(str(d) for d in range(10)),
)

DATASETS = {spec.name: spec for spec in (FASHION_MNIST, MNIST)}
CLASS_NAMES = FASHION_MNIST.class_names


def keras_cache_dir(spec: DatasetSpec) -> Path:
    return Path(os.path.expanduser("~")) / ".keras" / "datasets" / spec.folder


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified_folder(spec: DatasetSpec, root: Path, source: str) -> Path | None:
    """The folder under `root` (itself or `root/<folder>`) holding all four files, checked.

    None if neither holds all four; `DataError` if one does but a file's MD5 is wrong.
    """
    for folder in (root / spec.folder, root):
        if all((folder / f).is_file() for f in FILES):
            for f in FILES:
                got = _md5(folder / f)
                if got != spec.md5[f]:
                    other = [s.name for s in DATASETS.values() if s.md5[f] == got]
                    what = (
                        f"it is {other[0]}'s file, not {spec.name}'s"
                        if other
                        else "the file is corrupt or truncated"
                    )
                    raise DataError(
                        f"{folder / f} (from {source}) has MD5 {got}, expected {spec.md5[f]}: {what}. "
                        f"Replace it with the official {f}, or point {ENV_VAR} / data_dir at a "
                        f"folder holding the {spec.name} files."
                    )
            return folder
    return None


def find_data_dir(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path:
    """The verified folder holding `spec`'s four files; downloads into the Keras cache if allowed."""
    looked = []
    explicit = [(data_dir, "data_dir argument"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")]
    for root, source in explicit:
        if root:
            found = _verified_folder(spec, Path(root).expanduser(), source)
            if found is None:
                raise DataError(
                    f"{source} is {root!r}, but neither it nor its subfolder {spec.folder!r} holds "
                    f"the four {spec.name} files {list(FILES)}. Put them there or fix the path."
                )
            return found
    cache = keras_cache_dir(spec)
    looked.append(str(cache))
    found = _verified_folder(spec, cache, "the Keras cache")
    if found is not None:
        return found
    return _download(spec, cache, looked)


def _download(spec: DatasetSpec, cache: Path, looked: list) -> Path:
    import tf_keras

    try:
        for f in FILES:
            tf_keras.utils.get_file(
                f,
                origin=spec.origin + f,
                file_hash=spec.md5[f],
                hash_algorithm="md5",
                cache_dir=str(cache.parent.parent),
                cache_subdir=str(Path("datasets") / spec.folder),
            )
    except Exception as err:  # no network, refused, or a bad transfer
        raise DataError(
            f"could not find {spec.name}: no data_dir given, ${ENV_VAR} not set, nothing in "
            f"{', '.join(looked)}, and the download failed ({type(err).__name__}: {err}). "
            f"Set {ENV_VAR} to a folder holding {list(FILES)}, or copy them into {cache}."
        ) from err
    return cache


def read_idx(path) -> np.ndarray:
    """Decodes a gzipped IDX file (images [N, H, W] or labels [N]) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file; replace it with the official file.")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} holds {data.size} values, its header promises {dims.tolist()}.")
    return data.reshape(dims)


@functools.lru_cache(maxsize=4)
def _load_uint8(folder: Path):
    x, y, xt, yt = (read_idx(folder / f) for f in FILES)
    arrays = (x[..., None], y.astype(np.int64), xt[..., None], yt.astype(np.int64))
    for a in arrays:
        a.setflags(write=False)  # shared by every caller through the cache
    return arrays


def load_uint8(name: str = "fashion_mnist", data_dir: str | os.PathLike | None = None) -> Splits:
    """Raw data: ((x_train, y_train), (x_test, y_test)), images uint8 [N, 28, 28, 1], labels int64."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}.")
    x, y, xt, yt = _load_uint8(find_data_dir(DATASETS[name], data_dir))
    return (x, y), (xt, yt)


def scale_images(x: np.ndarray, likelihood: str = "bernoulli") -> np.ndarray:
    """uint8 images -> float32 in the support of `likelihood` (e.g. x/255, or (x+0.5)/256 for beta)."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise DataError(f"scale_images expects uint8 images in 0..255, got dtype {x.dtype}.")
    return likelihoods.get(likelihood).scale(x).astype(np.float32)


def binarize_images(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """One Bernoulli draw per pixel with probability x in [0, 1]: float32 {0, 1}, reproducible."""
    rng = np.random.default_rng(seed)
    return (rng.random(np.shape(x), dtype=np.float32) < x).astype(np.float32)


def load_dataset(
    name: str = "fashion_mnist",
    likelihood: str = "bernoulli",
    data_dir: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
    *,
    test_fraction: float = 0.1,
    input_shape: tuple[int, ...] | None = None,
    resize: bool = False,
    train_examples: int = 0,
) -> Splits:
    """((x_train, y_train), (x_test, y_test)): images float32 [N, H, W, C] scaled for `likelihood`.

    name: a built-in data set, "dsprites" / "dsprites_small", an .npz / .npy file or a folder of
      images (see `tfp_vae.sources`; test_fraction, input_shape, resize and train_examples are
      passed to it). Labels are None when the source has none.
    binarize (Bernoulli only): None keeps grey levels x/255; "static" binarizes train and test once
    with `seed`; "dynamic" keeps the training images grey (the model re-draws them every batch when
    its config says binarize="dynamic") and binarizes the test images once with `seed`.
    """
    from tfp_vae.sources import load_raw

    _check_binarize(binarize, likelihood)
    loaded = load_raw(
        name,
        data_dir=data_dir,
        test_fraction=test_fraction,
        input_shape=input_shape,
        resize=resize,
        train_examples=train_examples,
    )
    return prepare(loaded, likelihood, binarize, seed)


def _check_binarize(binarize, likelihood):
    if binarize not in (None, "static", "dynamic"):
        raise DataError(f"binarize={binarize!r}: choose None, 'static' or 'dynamic'.")
    if binarize is not None and likelihood != "bernoulli":
        raise DataError(f"binarize={binarize!r} needs likelihood='bernoulli', not {likelihood!r}.")


def prepare(loaded, likelihood: str = "bernoulli", binarize: str | None = None, seed: int = 0) -> Splits:
    """A source's raw images (`tfp_vae.sources.Loaded`) -> ((x, y), (x_test, y_test)) as in
    `load_dataset`: uint8 scaled for `likelihood`, floats in [0, 1] kept (the family's support is
    checked when training), then binarized as asked."""
    _check_binarize(binarize, likelihood)
    x, xt = (scale_images(a, likelihood) if a.dtype == np.uint8 else a for a in (loaded.x, loaded.x_test))
    if binarize == "static":
        x = binarize_images(x, seed)
    if binarize is not None:
        xt = binarize_images(xt, seed + 1)

    def copy(y):  # the IDX arrays are shared: copies
        return None if y is None else y.copy()

    return (x, copy(loaded.y)), (xt, copy(loaded.y_test))


def load_fashion_mnist(
    likelihood: str = "bernoulli",
    data_dir: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
) -> Splits:
    """Fashion-MNIST scaled for `likelihood`; see `load_dataset`. Class names: `CLASS_NAMES`."""
    return load_dataset("fashion_mnist", likelihood, data_dir, binarize, seed)


def load_mnist(
    likelihood: str = "bernoulli",
    data_dir: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
) -> Splits:
    """MNIST scaled for `likelihood`; see `load_dataset`."""
    return load_dataset("mnist", likelihood, data_dir, binarize, seed)


def check_images(x: np.ndarray, input_shape: tuple[int, ...], likelihood: str) -> None:
    """Raises `DataError` naming the problem if `x` cannot be fed to a model with this config.

    Checks: array of floats (not raw uint8), shape [N, *input_shape] with N >= 1, finite values,
    values in the likelihood's support.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype == np.uint8:
        raise DataError(
            "images are uint8 (0..255) and were not scaled; use "
            f"tfp_vae.scale_images(x, {likelihood!r}) first."
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"images must be floats, got dtype {x.dtype}; scale them with tfp_vae.scale_images.")
    expected = tuple(input_shape)
    if x.ndim == len(expected) and x.shape[1:] == expected[:-1]:
        raise DataError(
            f"images have shape {x.shape}, without a channel axis; the model expects "
            f"[N, {', '.join(map(str, expected))}]. Add it with x[..., None]."
        )
    if x.ndim == len(expected) + 2 and x.shape[1:-1] == expected and x.shape[-1] == 1:
        raise DataError(
            f"images have shape {x.shape}, with an extra trailing axis; the model expects "
            f"[N, {', '.join(map(str, expected))}]. Drop it with x[..., 0]."
        )
    if x.ndim == len(expected) + 1 and x.shape[1:-1] == expected[:-1] and x.shape[-1] != expected[-1]:
        raise DataError(
            f"images have {x.shape[-1]} channel(s) (shape {x.shape}); the model expects "
            f"{expected[-1]}. Set VAEConfig.input_shape=({', '.join(map(str, x.shape[1:]))}) "
            "to match the data, or convert the images."
        )
    if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
        raise DataError(
            f"images have shape {x.shape}; the model expects [N, {', '.join(map(str, expected))}] "
            "(set VAEConfig.input_shape to match the data, or reshape the images)."
        )
    if x.shape[0] == 0:
        raise DataError("the data set is empty (0 images); pass at least one image.")
    likelihoods.get(likelihood).check(x)


def check_labels(labels: np.ndarray | None, images: np.ndarray, name: str = "labels") -> None:
    """Raises `DataError` unless `labels` is one label per image of `images` (a 1-D sequence of
    the same length). `labels=None` is accepted: labels are optional wherever they are taken."""
    if labels is None:
        return
    labels, n = np.asarray(labels), len(images)
    if labels.ndim != 1:
        raise DataError(
            f"{name} must be one label per image (1-D), got shape {labels.shape}; "
            "flatten them, e.g. labels.reshape(-1)."
        )
    if len(labels) != n:
        raise DataError(
            f"{name} has {len(labels)} entries but there are {n} images; pass the labels that "
            "belong to these images (same order, same length)."
        )
