"""Where images come from: a registry of data sources, each claiming some `VAEConfig.dataset` values.

    builtin       "fashion_mnist", "mnist": the official IDX files (see tfp_vae.data.idx), official split
    dsprites      "dsprites", "dsprites_small": rendered here (tfp_vae.data.dsprites); label = shape class
    array_file    a path ending in .npz (arrays x [+ y], or x_train [+ y_train] and x_test
                  [+ y_test]) or .npy (images only): images [N, H, W] or [N, H, W, C], uint8 or
                  float in [0, 1]
    image_folder  any other path: a folder of PNG/JPEG/BMP/GIF files, read with Pillow; class
                  subfolders give labels (class i = i-th subfolder name in sorted order, as
                  `tf_keras.utils.image_dataset_from_directory` numbers them), images directly in
                  the folder give none. Grey images give 1 channel, else RGB (alpha dropped).

Relative paths are resolved against the current working directory. Without a given test split, a
held-out `test_fraction` of the images (drawn with the fixed seed `SPLIT_SEED`, whatever the run's
seed, so every run on a data set shares its split) is the test split; both splits come in that
fixed random order, so "the first N images" is a random subset. With `resize`, folder images are
converted to the config's channels and resized bilinearly, whole, to H x W (the aspect ratio is
not kept; nothing is ever cropped); without it, a folder whose images differ in size, or any data
whose shape differs from `input_shape`, is a `DataError` naming the shapes and the fix.

Each load returns a `record` (source, resolved path, content hash, counts, shape, class names)
that `tfp_vae.runs.fingerprint` stores in a run directory to refuse changed data later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfp_vae.data import idx
from tfp_vae.data.dsprites import base_masks, load_dsprites
from tfp_vae.errors import DataError
from tfp_vae.registry import Registry

SPLIT_SEED = 0
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ARRAY_EXTENSIONS = (".npz", ".npy")
DSPRITES_NAMES = {"dsprites": "full", "dsprites_small": "small"}


@dataclasses.dataclass
class Loaded:
    """Raw images (uint8 0..255, or float32 in [0, 1] for float arrays) of both splits."""

    x: np.ndarray  # [N, H, W, C]
    y: np.ndarray | None  # int64 [N], or None without labels
    x_test: np.ndarray
    y_test: np.ndarray | None
    class_names: tuple | None  # class_names[label]; None without labels
    record: dict  # what was loaded, for the run directory's data.json


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    claims: Callable[[str], bool]  # does this source read VAEConfig.dataset = this string?
    # load(dataset, *, data_dir, test_fraction, input_shape, resize, train_examples)
    load: Callable[..., Loaded]
    describe: str  # for error messages: what a `dataset` value for this source looks like


# ---------------------------------------------------------------------------- shared helpers
def held_out(n: int, test_fraction: float, what: str):
    """(train indices, test indices) of n items: a fixed-seed random `test_fraction` held out."""
    n_test = round(test_fraction * n)
    if n_test < 1 or n - n_test < 1:
        raise DataError(
            f"{what} holds {n} image(s): too few to hold out test_fraction={test_fraction} "
            "and keep both splits non-empty; add images or change --test-fraction."
        )
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    return order[n_test:], order[:n_test]


def _take(a, index):
    return None if a is None else a[index]


def _check_shape(x, input_shape, what: str, resizable: bool) -> None:
    if input_shape is None or tuple(x.shape[1:]) == tuple(input_shape):
        return
    got, want = tuple(x.shape[1:]), tuple(input_shape)
    fix = f"train with --input-shape {' '.join(map(str, got))} (input_shape={got})"
    if resizable:
        fix += f", or with --resize true to resize them to {want}"
    raise DataError(f"the images of {what} have shape {got} but VAEConfig.input_shape is {want}; {fix}.")


def _labels(y, n: int, what: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(
            f"{what}: labels must be non-negative integers, one per image (1-D), got "
            f"dtype {y.dtype} and shape {y.shape}."
        )
    if len(y) != n:
        raise DataError(f"{what}: {len(y)} labels for {n} images; give exactly one label per image.")
    return y.astype(np.int64)


def _images(x, what: str) -> np.ndarray:
    """[N, H, W] or [N, H, W, C] uint8, or float in [0, 1] -> [N, H, W, C] uint8 / float32."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise DataError(
            f"{what}: images must be a non-empty array [N, H, W] or [N, H, W, C], got shape {x.shape}."
        )
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what}: images have dtype {x.dtype}; give uint8 (0..255) or floats in [0, 1].")
    x = x.astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataError(
            f"{what}: float images must be finite and in [0, 1], got values in "
            f"[{np.nanmin(x)}, {np.nanmax(x)}]; divide by 255 or clip them."
        )
    return x


def _class_names_for(*labels) -> tuple | None:
    given = [y for y in labels if y is not None]
    if not given:
        return None
    return tuple(str(i) for i in range(int(max(y.max() for y in given)) + 1))


# ---------------------------------------------------------------------------- builtin IDX data sets
def _load_builtin(dataset, *, data_dir, input_shape, **_):
    (x, y), (xt, yt) = idx.load_uint8(dataset, data_dir)
    _check_shape(x, input_shape, dataset, resizable=False)
    spec = idx.DATASETS[dataset]
    record = {"md5": spec.md5}
    return Loaded(x, y, xt, yt, spec.class_names, record)


# ---------------------------------------------------------------------------- dSprites
def _load_dsprites(dataset, *, test_fraction, input_shape, train_examples, **_):
    ds = load_dsprites(DSPRITES_NAMES[dataset])
    train, test = held_out(len(ds), test_fraction, dataset)
    train = train[:train_examples] if train_examples else train
    x, xt = ds.images(train), ds.images(test)
    _check_shape(x, input_shape, dataset, resizable=False)
    record = {"variant": ds.variant, "sha256": hashlib.sha256(base_masks().tobytes()).hexdigest()}
    return Loaded(x, ds.factors(train)[:, 0], xt, ds.factors(test)[:, 0], ds.shape_names, record)


# ---------------------------------------------------------------------------- .npz / .npy files
def _load_array_file(dataset, *, test_fraction, input_shape, **_):
    path = Path(dataset).expanduser()
    if not path.is_file():
        raise DataError(
            f"dataset={dataset!r}: no such file ({path.resolve()}); fix the path "
            "(relative paths are resolved against the current directory)."
        )
    raw = path.read_bytes()
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        arrays = dict(loaded) if path.suffix == ".npz" else {"x": loaded}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path} cannot be read as a {path.suffix} file ({type(err).__name__}: {err}); "
            "it is truncated, corrupt, or holds pickled objects. Save it again with "
            "numpy.savez / numpy.save."
        ) from err
    keys = sorted(arrays)
    if "x" in arrays and not {"x_train", "x_test"} & set(arrays):
        x = _images(arrays["x"], f"{path}['x']")
        y = _labels(arrays.get("y"), len(x), f"{path}['y']")
        train, test = held_out(len(x), test_fraction, str(path))
        x, y, xt, yt = x[train], _take(y, train), x[test], _take(y, test)
    elif {"x_train", "x_test"} <= set(arrays) and "x" not in arrays:
        if ("y_train" in arrays) != ("y_test" in arrays):
            raise DataError(f"{path} has only one of y_train / y_test (arrays {keys}); give both or neither.")
        x = _images(arrays["x_train"], f"{path}['x_train']")
        xt = _images(arrays["x_test"], f"{path}['x_test']")
        if x.shape[1:] != xt.shape[1:] or x.dtype != xt.dtype:
            raise DataError(
                f"{path}: x_train is {x.dtype} {x.shape[1:]} but x_test is "
                f"{xt.dtype} {xt.shape[1:]}; give both splits the same image shape and dtype."
            )
        y = _labels(arrays.get("y_train"), len(x), f"{path}['y_train']")
        yt = _labels(arrays.get("y_test"), len(xt), f"{path}['y_test']")
    else:
        raise DataError(
            f"{path} holds arrays {keys}; expected 'x' (and optionally 'y'), or "
            "'x_train' and 'x_test' (and optionally 'y_train' and 'y_test')."
        )
    _check_shape(x, input_shape, str(path), resizable=False)
    record = {"path": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    return Loaded(x, y, xt, yt, _class_names_for(y, yt), record)


# ---------------------------------------------------------------------------- folders of images
def folder_files(root: Path):
    """([(file, label or None)] sorted, class names or None) of an image folder; see the module."""
    if not root.is_dir():
        raise DataError(
            f"dataset={str(root)!r}: no such folder ({root.resolve()}); fix the path "
            "(relative paths are resolved against the current directory)."
        )

    def is_image(p):
        return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS

    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    loose = sorted(p for p in root.iterdir() if is_image(p))
    if classes and loose:
        raise DataError(
            f"{root} holds class subfolders {classes} and also images directly in it "
            f"(e.g. {loose[0].name}); move those into a class subfolder."
        )
    files: list[tuple[Path, int | None]] = []
    if not classes:
        files = [(p, None) for p in loose]
    else:
        for label, name in enumerate(classes):
            found = sorted(p for p in (root / name).rglob("*") if is_image(p))
            if not found:
                raise DataError(
                    f"class folder {root / name} holds no images "
                    f"({', '.join(IMAGE_EXTENSIONS)}); add some or remove the folder."
                )
            files += [(p, label) for p in found]
    if not files:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}); put image files in it "
            "or in one subfolder per class."
        )
    return files, (tuple(classes) if classes else None)


def _read_image(path: Path, raw: bytes):
    from PIL import Image, UnidentifiedImageError  # Pillow loads only for folders of images

    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            grey = image.mode in ("1", "L", "LA", "I", "I;16", "F")
            return image.convert("L" if grey else "RGB"), grey
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(
            f"cannot read image {path} ({type(err).__name__}: {err}); the file is "
            "truncated or not an image: replace or remove it."
        ) from err


def _load_image_folder(dataset, *, test_fraction, input_shape, resize, **_):
    from PIL import Image  # Pillow loads only for folders of images

    root = Path(dataset).expanduser()
    files, class_names = folder_files(root)
    digest = hashlib.sha256()
    images, greys = [], []
    for path, _label in files:
        raw = path.read_bytes()
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(raw)}\0".encode())
        digest.update(raw)
        image, grey = _read_image(path, raw)
        images.append(image)
        greys.append(grey)
    if resize:
        h, w, c = input_shape
        images = [
            im.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR) for im in images
        ]
    else:
        sizes: dict[tuple[int, int], Path] = {}
        for (path, _), image in zip(files, images):
            sizes.setdefault(image.size, path)
        if len(sizes) > 1:
            (s1, p1), (s2, p2) = list(sizes.items())[:2]
            raise DataError(
                f"the images in {root} differ in size ({p1.name}: {s1[0]}x{s1[1]}, "
                f"{p2.name}: {s2[0]}x{s2[1]}, width x height); train with --resize true "
                "to resize them all to --input-shape, or resize them yourself."
            )
        if not all(greys):  # a mix of grey and colour images: all as RGB
            images = [im.convert("RGB") for im in images]
    x = _images(np.stack([np.asarray(im, np.uint8) for im in images]), str(root))
    _check_shape(x, input_shape, str(root), resizable=True)
    labels = None if class_names is None else np.array([label for _, label in files], np.int64)
    train, test = held_out(len(x), test_fraction, str(root))
    record = {"path": str(root.resolve()), "sha256": digest.hexdigest(), "files": len(files)}
    return Loaded(x[train], _take(labels, train), x[test], _take(labels, test), class_names, record)


# ---------------------------------------------------------------------------- the registry
def _is_builtin(dataset: str) -> bool:
    return dataset in idx.DATASETS


def _is_path(dataset: str) -> bool:
    # By its spelling only: a config must validate the same wherever it is loaded (evaluate, plot
    # and show may run from another directory than train), so a bare name is never a folder. An
    # array file's path is the array_file source's: no two sources claim one value.
    if dataset.lower().endswith(ARRAY_EXTENSIONS):
        return False
    return "/" in dataset or "\\" in dataset or dataset.startswith((".", "~"))


SOURCES: Registry[Source] = Registry("source", "data source")
for _source in (
    Source("builtin", _is_builtin, _load_builtin, "'fashion_mnist' or 'mnist'"),
    Source("dsprites", lambda d: d in DSPRITES_NAMES, _load_dsprites, "'dsprites' or 'dsprites_small'"),
    Source(
        "array_file",
        lambda d: d.lower().endswith(ARRAY_EXTENSIONS),
        _load_array_file,
        "a path to an .npz or .npy file",
    ),
    Source("image_folder", _is_path, _load_image_folder, "a path to a folder of images (e.g. ./my_images)"),
):
    SOURCES.register(_source.name, _source, help=_source.describe)


def source_for(dataset) -> Source | None:
    """The source claiming `dataset` (at most one does), or None."""
    if not isinstance(dataset, str) or not dataset:
        return None
    return next((s for s in SOURCES.values() if s.claims(dataset)), None)


def describe_sources() -> str:
    return "; ".join(s.describe for s in SOURCES.values())


def load_raw(
    dataset: str,
    *,
    data_dir=None,
    test_fraction: float = 0.1,
    input_shape=None,
    resize: bool = False,
    train_examples: int = 0,
) -> Loaded:
    """The raw images of `dataset` through its source; `record["source"]` names that source."""
    source = source_for(dataset)
    if source is None:
        raise DataError(f"unknown data set {dataset!r}; give {describe_sources()}.")
    loaded = source.load(
        dataset,
        data_dir=data_dir,
        test_fraction=test_fraction,
        input_shape=input_shape,
        resize=resize,
        train_examples=train_examples,
    )
    loaded.record = {
        "dataset": dataset,
        "source": source.name,
        **loaded.record,
        "train_images": len(loaded.x),
        "test_images": len(loaded.x_test),
        "shape": list(loaded.x.shape[1:]),
        "class_names": None if loaded.class_names is None else list(loaded.class_names),
    }
    return loaded
