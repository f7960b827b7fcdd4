"""dSprites, re-rendered here, against its published definition (Matthey et al. 2017)."""

import numpy as np
import pytest

import tfp_vae
from tfp_vae.data import dsprites, streamed
from tfp_vae.errors import DataError


@pytest.fixture(scope="module")
def full():
    return tfp_vae.load_dsprites("full")


@pytest.fixture(scope="module")
def small():
    return tfp_vae.load_dsprites("small")


def _centroid(image):
    rows, cols = np.nonzero(image[..., 0])
    return rows.mean(), cols.mean()


def test_full_grid_matches_the_published_definition(full):
    assert len(full) == 737_280 == 3 * 6 * 40 * 32 * 32
    assert full.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert full.factor_sizes == (3, 6, 40, 32, 32)
    values = full.factor_values
    np.testing.assert_allclose(values[1], np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(values[2], np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_allclose(values[3], np.linspace(0, 1, 32))
    np.testing.assert_allclose(values[4], np.linspace(0, 1, 32))


def test_index_is_row_major_with_y_fastest_and_round_trips(full):
    assert full.index([[0, 0, 0, 0, 1]]).tolist() == [1]
    assert full.index([[0, 0, 0, 1, 0]]).tolist() == [32]
    assert full.index([[0, 0, 1, 0, 0]]).tolist() == [32 * 32]
    assert full.index([[1, 0, 0, 0, 0]]).tolist() == [6 * 40 * 32 * 32]
    assert full.index([[2, 5, 39, 31, 31]]).tolist() == [len(full) - 1]
    idx = np.random.default_rng(0).integers(0, len(full), 500)
    np.testing.assert_array_equal(full.index(full.factors(idx)), idx)
    np.testing.assert_allclose(full.values([1])[0], [0, 0.5, 0, 0, 1 / 31])


def test_sampling_with_a_factor_fixed(full):
    classes = full.sample_factors(200, np.random.default_rng(1))
    assert classes.shape == (200, 5) and (classes < np.array(full.factor_sizes)).all()
    classes[:, 2] = 7  # "images sharing factor k": fix the orientation
    assert (full.factors(full.index(classes))[:, 2] == 7).all()
    with pytest.raises(DataError, match="indices must lie in"):
        full.images([len(full)])
    with pytest.raises(DataError, match="factor classes"):
        full.index([[3, 0, 0, 0, 0]])


def test_images_are_binary_uint8_inside_the_frame(full):
    idx = np.random.default_rng(2).integers(0, len(full), 300)
    x = full.images(idx)
    assert x.shape == (300, 64, 64, 1) and x.dtype == np.uint8
    assert set(np.unique(x)) == {0, 255}
    assert (x[:, [0, -1]] == 0).all() and (x[:, :, [0, -1]] == 0).all()  # never touches the border
    assert set(np.unique(tfp_vae.scale_images(x, "bernoulli"))) == {0.0, 1.0}


def test_pixel_counts_grow_with_scale_and_differ_by_shape(full):
    centre = [[s, k, 0, 16, 16] for s in range(3) for k in range(6)]
    counts = (full.images(full.index(centre)) > 0).sum(axis=(1, 2, 3)).reshape(3, 6)
    # The square at orientation 0 is (2 * floor(9.5 * scale) + 1) pixels wide.
    assert counts[0].tolist() == [81, 121, 169, 225, 289, 361]
    assert (np.diff(counts, axis=1) > 0).all()
    assert counts[1, -1] < counts[2, -1] < counts[0, -1]  # ellipse < heart < square
    shapes = full.images(full.index([[s, 5, 0, 16, 16] for s in range(3)]))
    assert all((shapes[a] != shapes[b]).sum() > 30 for a, b in ((0, 1), (0, 2), (1, 2)))


def test_translation_moves_the_centroid_by_one_pixel_per_step(full):
    base = np.array([2, 3, 11, 5, 9])
    steps = [base, base + [0, 0, 0, 1, 0], base + [0, 0, 0, 0, 1], base + [0, 0, 0, 7, 0]]
    images = full.images(full.index(steps))
    (r0, c0), (r1, c1), (r2, c2), (r3, c3) = map(_centroid, images)
    assert (c1 - c0, r1 - r0) == pytest.approx((1.0, 0.0))  # pos_x: one column to the right
    assert (c2 - c0, r2 - r0) == pytest.approx((0.0, 1.0))  # pos_y: one row down
    assert (c3 - c0, r3 - r0) == pytest.approx((7.0, 0.0))
    np.testing.assert_array_equal(np.roll(images[0], 7, axis=1), images[3])


def test_orientation_rotates_the_shape(full):
    square_0 = dsprites.render_mask("square", 1.0, 0.0)
    np.testing.assert_array_equal(dsprites.render_mask("square", 1.0, np.pi / 2), square_0)
    heart_0 = dsprites.render_mask("heart", 1.0, 0.0)
    np.testing.assert_array_equal(dsprites.render_mask("heart", 1.0, np.pi / 2), np.rot90(heart_0))
    assert not (np.rot90(heart_0) == heart_0).all()
    ends = full.images(full.index([[2, 4, 0, 3, 3], [2, 4, 39, 3, 3], [2, 4, 10, 3, 3]]))
    np.testing.assert_array_equal(ends[0], ends[1])  # 0 and 2 pi, both on the published grid
    assert (ends[0] != ends[2]).any() and (ends[0] > 0).sum() == pytest.approx((ends[2] > 0).sum(), rel=0.1)


def test_small_variant_is_a_sub_grid_of_the_full_one(full, small):
    assert len(small) == 11_520 and small.factor_sizes == (3, 6, 10, 8, 8)
    idx = np.random.default_rng(3).integers(0, len(small), 200)
    full_idx = full.index(np.stack([g[c] for g, c in zip(small.grid, small.factors(idx).T)], axis=1))
    np.testing.assert_array_equal(small.images(idx), full.images(full_idx))
    np.testing.assert_allclose(small.values(idx), full.values(full_idx))
    assert dsprites.base_masks().nbytes < 1 << 20  # the whole cache: 720 masks, 0.6 MB


def test_dsprites_as_a_training_data_set():
    (x, y), (xt, yt) = tfp_vae.load_dataset("dsprites_small", "bernoulli", test_fraction=0.1)
    assert x.shape == (10_368, 64, 64, 1) and xt.shape == (1_152, 64, 64, 1)
    assert x.dtype == np.float32 and set(np.unique(xt)) == {0.0, 1.0}
    assert set(np.unique(y)) == {0, 1, 2} and len(yt) == len(xt)  # labels: the shape class
    (x, _), (xt, _) = tfp_vae.load_dataset("dsprites", test_fraction=0.001, train_examples=50)
    assert x.shape == (50, 64, 64, 1) and len(xt) == 737


def test_a_training_split_too_large_for_floats_is_scaled_on_access(monkeypatch):
    """Full dSprites (12 GB as float32) stays uint8; here a small grid under a lowered bound."""
    eager = tfp_vae.load_dataset("dsprites_small", "beta", test_fraction=0.1)
    monkeypatch.setattr(streamed, "MAX_FLOAT_BYTES", 1 << 20)
    (x, y), (xt, _) = tfp_vae.load_dataset("dsprites_small", "beta", test_fraction=0.1)
    assert isinstance(x, streamed.ScaledImages) and x.raw.dtype == np.uint8 and isinstance(xt, np.ndarray)
    assert x.shape == eager[0][0].shape and len(x) == len(y)
    pick = np.array([5, 0, 10_000])
    np.testing.assert_array_equal(x[pick], eager[0][0][pick])  # the same floats, bit for bit
    np.testing.assert_array_equal(np.asarray(x[-3:]), eager[0][0][-3:])
    assert isinstance(x[:100], streamed.ScaledImages) and len(x[:100]) == 100
    with pytest.raises(DataError, match="binarize='static'"):
        tfp_vae.load_dataset("dsprites_small", "bernoulli", binarize="static", test_fraction=0.1)
