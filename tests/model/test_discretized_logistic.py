"""The discretized logistic mixture: a normalised probability of the 256 grey levels, whose
log_prob, samples and mean agree with independent computations from logistic CDFs (scipy)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import tfp_vae
from tfp_vae.model.likelihoods import DiscretizedLogisticMixture

K = 3


def _params(seed=0, shape=(4, 5)):
    """(logits, loc, scale) [*shape, K] on the [-1, 1] scale, float32, some components far in a tail
    or narrower than a bin."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(*shape, K)) * 2
    loc = rng.uniform(-1.6, 1.6, size=(*shape, K))
    scale = np.exp(rng.uniform(np.log(1e-3), np.log(2.0), size=(*shape, K)))
    return [a.astype(np.float32) for a in (logits, loc, scale)]


def _reference_probabilities(logits, loc, scale):
    """P(level v) [256, ...] from logistic CDFs in float64: bins [v - 1/2, v + 1/2] of the levels
    mapped to [-1, 1], the first and last bins open to -inf and +inf."""
    edges = (np.arange(257) - 0.5) * (2 / 255) - 1  # 257 bin edges
    edges[0], edges[-1] = -np.inf, np.inf
    cdf = stats.logistic.cdf(edges.reshape(-1, *([1] * loc.ndim)), loc=loc, scale=scale)  # [257, ..., K]
    mass = np.diff(cdf, axis=0)  # [256, ..., K]
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.sum(weights * mass, axis=-1)


def test_each_pixels_256_bin_probabilities_sum_to_one():
    dist = DiscretizedLogisticMixture(*_params())
    levels = tf.reshape(tf.range(256, dtype=tf.float32), [256, 1, 1])
    total = np.exp(dist.log_prob(levels).numpy().astype(np.float64)).sum(axis=0)
    np.testing.assert_allclose(total, 1.0, atol=2e-6)


def test_log_prob_equals_an_independent_computation_from_cdfs():
    params = _params(seed=1)
    reference = _reference_probabilities(*[p.astype(np.float64) for p in params])  # [256, 4, 5]
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(6, 4, 5)).astype(np.float32)  # 6 integer images of 4 x 5
    images[0], images[1] = 0, 255  # the edge levels, which take the tails
    got = DiscretizedLogisticMixture(*params).log_prob(images).numpy()
    want = np.log(np.take_along_axis(reference, images.astype(int).reshape(6, 4, 5), axis=0))
    finite = want > -80  # far-tail bins below float64's reach of the CDF difference are skipped
    assert finite.mean() > 0.9
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=2e-4)
    # Where the CDF difference underflows, the closed form stays finite: no -inf nats.
    assert np.all(np.isfinite(got))


def test_samples_and_mean_follow_the_bin_probabilities():
    params = _params(seed=3, shape=(2,))
    dist = DiscretizedLogisticMixture(*params)
    reference = _reference_probabilities(*[p.astype(np.float64) for p in params])  # [256, 2]
    np.testing.assert_allclose(dist.mean().numpy(), (np.arange(256)[:, None] * reference).sum(0), rtol=1e-4)
    draws = dist.sample(40_000, seed=(4, 5)).numpy()  # [n, 2]
    assert np.all(draws == np.round(draws)) and draws.min() >= 0 and draws.max() <= 255
    for pixel in range(2):
        frequency = np.bincount(draws[:, pixel].astype(int), minlength=256) / len(draws)
        # Each level's frequency within 5 binomial standard errors (and 0.002) of its probability.
        tolerance = 5 * np.sqrt(reference[:, pixel] * (1 - reference[:, pixel]) / len(draws)) + 2e-3
        assert np.all(np.abs(frequency - reference[:, pixel]) < tolerance)


def test_family_shapes_components_and_support():
    family = tfp_vae.LIKELIHOODS["discretized_logistic"]
    assert family.params_size((28, 28, 1), likelihood_components=5) == 784 * 15
    p = family.distribution(tf.zeros([3, 4 * 4 * 6]), (4, 4, 1), likelihood_components=2)
    assert p.batch_shape.as_list() == [3] and p.event_shape.as_list() == [4, 4, 1]
    assert p.sample(seed=(0, 1)).shape == (3, 4, 4, 1) and p.mean().shape == (3, 4, 4, 1)
    # Raw outputs 0: mid grey, so the mean is 127.5 by symmetry.
    np.testing.assert_allclose(p.mean(), 127.5, atol=1e-3)
    raw = np.array([[0, 7, 255]], np.uint8)
    np.testing.assert_array_equal(tfp_vae.scale_images(raw, "discretized_logistic"), [[0.0, 7.0, 255.0]])
    with pytest.raises(tfp_vae.DataError, match=r"grey levels of 8-bit images, integers 0\.\.255"):
        tfp_vae.check_images(np.full([1, 2, 2, 1], 0.5, np.float32), (2, 2, 1), "discretized_logistic")
    model = tfp_vae.build_vae(
        likelihood="discretized_logistic", likelihood_components=2, input_shape=(4, 4, 1)
    )
    assert model.decoder.get_layer("likelihood_params").units == 16 * 6


@pytest.mark.parametrize(
    "fields, field, match",
    [
        ({"dequantize": "uniform"}, "dequantize", "not 'bernoulli', a model of binarized images"),
        ({"likelihood": "discretized_logistic", "dequantize": "uniform"}, "dequantize", "grey levels"),
        ({"likelihood": "normal", "dequantize": "gaussian"}, "dequantize", "None or 'uniform'"),
        ({"likelihood": "discretized_logistic", "likelihood_components": 0}, "likelihood_components", ">= 1"),
        ({"binarize": "static", "likelihood": "beta", "dequantize": "uniform"}, "binarize", "bernoulli"),
    ],
)
def test_config_validation_names_the_field(fields, field, match):
    with pytest.raises(tfp_vae.ConfigError, match=match) as caught:
        tfp_vae.VAEConfig(**fields)
    assert caught.value.field == field


def test_dequantize_round_trips_and_is_validated_for_each_density_family():
    for family in ("beta", "normal", "normal_fixed", "continuous_bernoulli"):
        config = tfp_vae.VAEConfig(likelihood=family, dequantize="uniform", likelihood_components=3)
        assert tfp_vae.VAEConfig.from_json(config.to_json()) == config
