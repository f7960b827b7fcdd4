"""Shared fixtures. Real Fashion-MNIST comes from $TFP_VAE_DATA_DIR or ../shared/fashion-mnist."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "fashion-mnist"


def fashion_dir() -> Path | None:
    env = os.environ.get("TFP_VAE_DATA_DIR")
    if env:
        return Path(env)
    return SHARED if SHARED.is_dir() else None


@pytest.fixture(scope="session")
def data_dir():
    """The real Fashion-MNIST folder. Skips only where no copy exists at all (never here: the
    shared folder is beside the repo on every machine of this project, and CI sets the env var)."""
    found = fashion_dir()
    if found is None:
        pytest.skip("no Fashion-MNIST: set TFP_VAE_DATA_DIR to a folder with the four IDX files")
    return found


@pytest.fixture(scope="session")
def fashion_bernoulli(data_dir):
    import tfp_vae

    return tfp_vae.load_fashion_mnist("bernoulli", data_dir=data_dir)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def grey_images(n, shape=(28, 28, 1), seed=0, likelihood="bernoulli"):
    """n random images already in `likelihood`'s support (float32)."""
    import tfp_vae

    raw = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return tfp_vae.scale_images(raw, likelihood)


class FactorGrid:
    """A stand-in for `load_dsprites`: the full grid of `sizes` classes per factor, each 'image'
    [1, 1, len(sizes)] holding its factor classes (index row-major over the classes)."""

    def __init__(self, sizes):
        self.factor_sizes = tuple(sizes)

    def images(self, indices):
        classes = np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), axis=-1)
        return classes.astype(np.uint8)[:, None, None, :]


# The files that take longest run first: `pytest -n 2 --dist loadfile` (pyproject.toml) hands whole
# files to its two workers in collection order, so a long file started last would keep one worker
# busy after the other has finished.
SLOW_FILES = (
    "test_notebooks.py",
    "test_distribute.py",
    "test_resume.py",
    "test_sweep.py",
    "test_likelihood_families.py",
    "test_training.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(
        key=lambda item: rank.get(item.path.name, len(SLOW_FILES))
    )  # stable: the rest keep their order
