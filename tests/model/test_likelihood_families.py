"""Every likelihood family: its support rules, and training + evaluation through one code path
(a sweep over `likelihood`) on real Fashion-MNIST."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_vae
from tfp_vae.studies import grid as sw

tfd = tfp.distributions
FAMILIES = sorted(tfp_vae.LIKELIHOODS)


def _images(values):
    return np.asarray(values, np.float32).reshape(-1, 1, 1, 1) * np.ones([1, 2, 2, 1], np.float32)


def _check(family, values):
    tfp_vae.check_images(_images(values), (2, 2, 1), family)


@pytest.mark.parametrize(
    "family, values, error",
    [
        ("beta", [0.0, 0.5], r"open interval \(0, 1\), never exactly 0 or 1"),
        ("beta", [0.5, 1.0], "scale_images"),
        ("bernoulli", [-0.1, 0.5], r"values in \[0, 1\]"),
        (
            "continuous_bernoulli",
            [0.5, 1.2],
            r"'continuous_bernoulli' likelihood needs pixel values in \[0, 1\]",
        ),
        ("continuous_bernoulli", [-0.01], "divide by 255"),
        ("continuous_bernoulli", [np.nan], "NaN or inf"),
    ],
)
def test_data_outside_the_support_is_an_error_that_says_what_to_do(family, values, error):
    with pytest.raises(tfp_vae.DataError, match=error):
        _check(family, values)


def test_bernoulli_warns_on_grey_levels_only():
    with pytest.warns(
        tfp_vae.NonBinaryBernoulliWarning, match="not a normalised density.*continuous_bernoulli"
    ):
        _check("bernoulli", [0.0, 0.3, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check("bernoulli", [0.0, 1.0])  # binary: a proper density, no warning
        _check("continuous_bernoulli", [0.0, 0.3, 1.0])  # exact 0 and 1 are in its support


def test_dynamic_binarization_trains_on_grey_images_without_the_warning():
    """With binarize="dynamic" the grey training images are pixel probabilities: the likelihood
    sees binary draws, so fit does not warn; plain grey-level Bernoulli training does."""
    x = np.random.default_rng(0).random([32, 28, 28, 1]).astype(np.float32)
    for binarize, expect_warning in (("dynamic", False), (None, True)):
        model = tfp_vae.build_vae(latent_dim=2, hidden_units=(8,), binarize=binarize)
        model.compile()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, epochs=1, batch_size=32, verbose=0)
        warned = any(issubclass(w.category, tfp_vae.NonBinaryBernoulliWarning) for w in caught)
        assert warned == expect_warning, binarize


def test_continuous_bernoulli_is_normalised_where_the_bernoulli_is_not():
    """Integrate exp(log p(x)) over x in [0, 1] for several logits (midpoint rule)."""
    x = (np.arange(20000, dtype=np.float64) + 0.5) / 20000
    logits = np.array([-6.0, -1.0, 0.01, 0.3, 4.0])[:, None]
    cb = tfp_vae.LIKELIHOODS["continuous_bernoulli"].make(tf.constant(logits[..., None]))
    np.testing.assert_allclose(np.exp(cb.log_prob(x).numpy()).mean(axis=1), 1.0, rtol=1e-3)
    # The Bernoulli's p^x (1-p)^(1-x) on grey levels x is below max(p, 1 - p) < 1 everywhere.
    bernoulli = tfp_vae.LIKELIHOODS["bernoulli"].make(tf.constant(logits[..., None], tf.float32))
    assert np.all(np.exp(bernoulli.log_prob(x.astype(np.float32)).numpy()).mean(axis=1) < 0.999)


def test_continuous_bernoulli_scaling_and_decoder_shapes():
    family = tfp_vae.LIKELIHOODS["continuous_bernoulli"]
    scaled = tfp_vae.scale_images(np.array([[0, 51, 255]], np.uint8), "continuous_bernoulli")
    np.testing.assert_allclose(scaled, [[0.0, 0.2, 1.0]])
    p = family.distribution(tf.zeros([3, 784]), (28, 28, 1))
    assert p.batch_shape.as_list() == [3] and p.event_shape.as_list() == [28, 28, 1]
    # logits 0 is the uniform density on [0, 1]: log p = 0 for any image, mean 0.5.
    np.testing.assert_allclose(p.log_prob(tf.fill([3, 28, 28, 1], 0.7)), 0.0, atol=1e-4)
    np.testing.assert_allclose(p.mean(), 0.5, atol=1e-6)


def test_every_family_trains_and_evaluates_through_one_sweep(tmp_path, data_dir):
    """One sweep over `likelihood`: each family loads its own scaling of the same images, trains,
    is evaluated on the same test images, and its run directory reloads to the same model."""
    base = tfp_vae.VAEConfig(latent_dim=2, hidden_units=(32,), epochs=1, batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the Bernoulli on grey levels warns, by design
        table = sw.sweep(
            base,
            {"likelihood": FAMILIES},
            tmp_path,
            num_samples=4,
            train_examples=256,
            test_examples=48,
            data_dir=data_dir,
            verbose=0,
        )
    assert sorted(table["likelihood"]) == FAMILIES
    for column in ("elbo", "nll", "kl", "iwae", "active_units"):
        assert np.all(np.isfinite(table[column])), column
    # bits per dimension of the 8-bit images for every family but the Bernoulli on grey levels.
    eight_bit = table.set_index("likelihood")["bits_per_dim"].drop("bernoulli")
    assert np.all(np.isfinite(eight_bit)) and np.all(eight_bit > 0)
    assert np.isnan(table.set_index("likelihood").loc["bernoulli", "bits_per_dim"])
    np.testing.assert_allclose(table["elbo"], -(table["nll"] + table["kl"]), rtol=1e-5)
    assert (table["kl"] > 0).all() and (table["iwae"] >= table["elbo"] - 1e-3).all()
    # The continuous Bernoulli adds its normaliser to the Bernoulli's nll on the same grey images:
    # with ~untrained decoders both sit near 784 log 2 = 543 nats, CB strictly lower.
    by_family = table.set_index("likelihood")
    assert by_family.loc["continuous_bernoulli", "nll"] < by_family.loc["bernoulli", "nll"]
    for family in FAMILIES:
        run = tmp_path / f"likelihood={family}"
        model = tfp_vae.load(run)
        assert model.config.likelihood == family
        (_, _), (xt, _) = tfp_vae.load_fashion_mnist(family, data_dir=data_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            again = tfp_vae.evaluate(model, xt[:48], num_samples=4)
        np.testing.assert_allclose(again["kl"], by_family.loc[family, "kl"], rtol=1e-4)
