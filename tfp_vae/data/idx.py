"""Fashion-MNIST and MNIST from their four IDX files, as uint8 arrays.

Where the files are looked for, in order:
  1. an explicit `data_dir` argument;
  2. the environment variable `TFP_VAE_DATA_DIR`;
  3. the Keras cache, `~/.keras/datasets/<folder>/`;
  4. else they are downloaded into that cache through `tf_keras.utils.get_file`.
In 1 and 2 the files may sit in the folder itself or in its subfolder `<folder>` (so one folder can
hold both data sets). Every file is checked against its known MD5 sum.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from tfp_vae.errors import DataError
from tfp_vae.registry import Registry

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

DATASETS: Registry[DatasetSpec] = Registry("dataset", "built-in data set")
DATASETS.register("fashion_mnist", FASHION_MNIST, help="Zalando's 70,000 28 x 28 grey clothing images")
DATASETS.register("mnist", MNIST, help="LeCun's 70,000 28 x 28 grey handwritten digits")
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
    import tf_keras  # its downloader, only when the files are missing: the data stay TensorFlow-free

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
