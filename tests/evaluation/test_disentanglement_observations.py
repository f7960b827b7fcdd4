"""How the image-based scores encode: each distinct grid image once, codes in the order asked for,
a progress count over the images asked for, and a VAE's encoder in float32 whatever it trains in."""

import numpy as np

from conftest import FactorGrid
from tfp_vae.evaluation import disentanglement as dis
from tfp_vae.evaluation.disentanglement import observations
from tfp_vae.evaluation.disentanglement.factor_vae import factor_vae_images

SIZES = (2, 3, 4)


class CountingGrid(FactorGrid):
    """FactorGrid of SIZES counting the images it renders."""

    rendered = 0

    def __init__(self):
        super().__init__(SIZES)

    def __len__(self):
        return int(np.prod(SIZES))

    def images(self, indices):
        self.rendered += len(indices)
        return super().images(indices)


class Counting:
    """A deterministic representation that counts the images it is given."""

    def __init__(self, weights):
        self.weights, self.images = weights, 0

    def __call__(self, images):
        self.images += len(images)
        return np.tanh(images.reshape(len(images), -1).astype(np.float64) @ self.weights / 20.0)


def test_encode_indices_encodes_each_distinct_image_once_in_the_order_asked():
    ds, encode = FactorGrid(SIZES), Counting(np.arange(6.0).reshape(3, 2) - 2.0)
    indices = np.random.default_rng(0).integers(np.prod(SIZES), size=(3, 50))  # 150 draws of 24 images
    told = []
    codes = observations.encode_indices(encode, ds, indices, told.append)
    assert codes.shape == (3, 50, 2) and codes.dtype == np.float64
    assert encode.images == len(np.unique(indices)) <= 24
    np.testing.assert_array_equal(codes.reshape(-1, 2), Counting(encode.weights)(ds.images(indices.ravel())))
    assert sum(told) == indices.size  # a bar over the images asked for ends full


def test_the_image_scores_on_dsprites_small_encode_no_grid_image_twice():
    ds = dis.factor_data("dsprites_small")  # 11,520 images
    encode = Counting(np.random.default_rng(3).normal(size=(64 * 64, 6)))
    told = []
    score = dis.factor_vae_score(encode, ds, 300, 150, num_variance_points=300, seed=5, progress=told.append)
    drawn = factor_vae_images(300, 150)  # 29,100 draws from the grid
    assert 0.0 <= score <= 1.0 and sum(told) == drawn > len(ds)
    assert encode.images <= 300 + len(ds)  # the variance points, then each vote image once
    encode.images = 0
    assert 0.0 <= dis.beta_vae_score(encode, ds, 300, 150, seed=7) <= 1.0
    assert encode.images <= len(ds) < 450 * 2 * 64


def test_compiled_means_of_a_bfloat16_model_run_in_float32():
    import tfp_vae

    config = tfp_vae.VAEConfig(
        latent_dim=2, input_shape=(4, 4, 1), hidden_units=(32,), precision="mixed_bfloat16"
    )
    model = tfp_vae.build_vae(config)
    images = np.random.default_rng(0).integers(0, 256, size=(64, 4, 4, 1)).astype(np.uint8)
    x = tfp_vae.scale_images(images, config.likelihood)
    codes = observations.compiled_means(model)(images)
    float32 = tfp_vae.posterior_means(model, x)
    bfloat16 = model.encoder(x, training=False).mean().numpy()
    np.testing.assert_allclose(codes, float32, rtol=1e-6, atol=1e-6)
    assert np.abs(codes - bfloat16).max() > 1e-4  # the training arithmetic is visibly coarser


def test_a_compiled_encoder_remembers_the_codes_of_the_grid_images_it_has_made():
    import tfp_vae

    model = tfp_vae.build_vae(tfp_vae.VAEConfig(latent_dim=2, input_shape=(1, 1, 3), hidden_units=(4,)))
    ds, encode = CountingGrid(), dis.representation(model)  # suite.model_metrics shares one per evaluation
    first = observations.encode_indices(encode, ds, [0, 1, 2, 2])
    assert ds.rendered == 3
    second = observations.encode_indices(encode, ds, [2, 3, 0, 5])
    assert ds.rendered == 5  # only 3 and 5 were new
    np.testing.assert_array_equal(second[[0, 2]], first[[2, 0]])
    fresh = observations.encode_indices(dis.representation(model), CountingGrid(), [2, 3, 0, 5])
    # remembered codes are the codes: equal but for the last bit, which the batch's shape (2 new
    # images, against 4) can change in oneDNN's kernels on some CPUs
    np.testing.assert_allclose(second, fresh, rtol=1e-6, atol=1e-9)
    told = []
    observations.encode_indices(encode, ds, [5, 5, 3], told.append)
    assert ds.rendered == 5 and told == [3]
