"""Study pictures: what they plot (points, error bars, labels, panels), from a results table."""

import numpy as np
import pandas as pd
import pytest

import tfp_vae
from conftest import grey_images
from tfp_vae.plots.studies import active_units_vs_beta, rate_distortion, traversal_mosaic, traversals_by_beta

TABLE = pd.DataFrame(
    {
        "beta": [0.5, 0.5, 1.0, 1.0, 4.0, 4.0],
        "seed": [0, 1, 0, 1, 0, 1],
        "latent_dim": [8] * 6,
        "nll": [200.0, 202.0, 210.0, 212.0, 240.0, 244.0],
        "kl": [30.0, 32.0, 20.0, 22.0, 8.0, 8.0],
        "active_units": [8, 7, 6, 6, 3, 2],
    }
)


def test_rate_distortion_plots_seed_means_with_sd_bars():
    fig = rate_distortion(TABLE)
    ax = fig.axes[0]
    line = ax.lines[0]
    # mean nll and mean kl per beta
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), [201.0, 211.0, 242.0])
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [31.0, 21.0, 8.0])
    assert "rate" in ax.get_ylabel() and "nats" in ax.get_ylabel()
    assert "distortion" in ax.get_xlabel()
    assert [t.get_text() for t in ax.texts] == ["beta=0.5", "beta=1", "beta=4"]
    assert "2 seed" in ax.get_title()
    # x and y error bars: +- sd over seeds, e.g. nll 240, 244 at beta 4 -> the bar spans 240..244.
    xbars, ybars = [c.get_segments() for c in ax.collections]
    np.testing.assert_allclose([s[1][0] - s[0][0] for s in xbars], [2.0, 2.0, 4.0])
    np.testing.assert_allclose([s[1][1] - s[0][1] for s in ybars], [2.0, 2.0, 0.0])


def test_active_units_against_log_beta():
    fig = active_units_vs_beta(TABLE)
    ax = fig.axes[0]
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), float), [7.5, 6.0, 2.5])
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "active units"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["latent_dim = 8", "coordinates (active_units)"]
    both = active_units_vs_beta(TABLE.assign(active_directions=[4, 4, 3, 3, 1, 1])).axes[0]
    np.testing.assert_allclose(np.asarray(both.containers[1].lines[0].get_ydata(), float), [4.0, 3.0, 1.0])
    with_zero = TABLE.assign(beta=[0.0, 0.0, 1.0, 1.0, 4.0, 4.0])
    assert active_units_vs_beta(with_zero).axes[0].get_xscale() == "symlog"


def test_missing_columns_and_empty_tables_are_named():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['kl'\]"):
        rate_distortion(TABLE.drop(columns="kl"))
    with pytest.raises(ValueError, match="empty"):
        rate_distortion(TABLE.iloc[:0])


def test_traversals_one_panel_per_beta_rows_are_most_active_dims():
    models = {
        beta: tfp_vae.build_vae(latent_dim=5, hidden_units=(16,), beta=beta, seed=i)
        for i, beta in enumerate((4.0, 0.5))
    }
    x = grey_images(20, seed=1)
    mosaic, ranked = traversal_mosaic(models[0.5], x, dims=3, steps=5)
    assert mosaic.shape == (3 * 28, 5 * 28)
    variances = [v for _, v in ranked]
    assert variances == sorted(variances, reverse=True) and len({d for d, _ in ranked}) == 3
    fig = traversals_by_beta(models, x, dims=3, steps=5)
    assert [ax.get_title() for ax in fig.axes] == ["beta = 0.5", "beta = 4"]
    assert all(len(ax.get_yticklabels()) == 3 for ax in fig.axes)
    assert fig.axes[0].images[0].get_array().shape == (84, 140)


def test_family_comparisons_have_one_row_per_model_and_draw():
    from tfp_vae.plots.studies import compare_reconstructions, compare_samples

    models = {
        family: tfp_vae.build_vae(latent_dim=3, hidden_units=(16,), likelihood=family)
        for family in ("continuous_bernoulli", "beta")
    }
    raw = np.random.default_rng(0).integers(0, 256, size=(10, 28, 28, 1), dtype=np.uint8)
    fig = compare_reconstructions(models, raw, n=5)
    assert len(fig.axes) == 3 * 5  # originals + one row per model
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["original", "continuous_bernoulli\nmean p(x|z)", "beta\nmean p(x|z)"]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), raw[0, ..., 0] / 255.0)
    assert "same test images" in fig.get_suptitle()
    fig = compare_reconstructions(models, raw, n=2, images="dSprites grid images")
    assert fig.get_suptitle().startswith("Reconstructions of the same dSprites grid images")
    fig = compare_samples(models, n=4)
    assert len(fig.axes) == 4 * 4  # mean and draw per model
    draw = fig.axes[4].images[0].get_array()  # continuous_bernoulli draw: grey levels in [0, 1]
    assert draw.shape == (28, 28) and 0 <= draw.min() and draw.max() <= 1 and len(np.unique(draw)) > 2


def test_compared_samples_come_from_each_models_own_prior():
    from tfp_vae.plots.studies import compare_samples

    model = tfp_vae.build_vae(latent_dim=3, hidden_units=(16,), prior="mixture", kl="sampled")
    model.prior_layer.means.assign(model.prior_layer.means + 5.0)  # far from N(0, I)
    fig = compare_samples({"mixture": model}, n=4, seed=3)
    z = model.prior.sample(4, seed=(3, 0))
    assert float(np.abs(z).min()) > 1.0  # draws of the mixture, not of N(0, I)
    np.testing.assert_allclose(
        fig.axes[1].images[0].get_array(), model.decoder(z).mean()[1, ..., 0], atol=1e-6
    )


def test_active_directions_count_a_rotated_code_once():
    """A 2-D code rotated across 6 coordinates: every coordinate varies, two directions do."""
    from tfp_vae.evaluation.elbo import ACTIVE_THRESHOLD, active_directions

    rng = np.random.default_rng(0)
    code = np.concatenate([rng.normal(size=(4000, 2)), 0.01 * rng.normal(size=(4000, 4))], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    means = code @ rotation.T
    assert np.sum(means.var(axis=0) > ACTIVE_THRESHOLD) == 6
    assert active_directions(means) == 2 and active_directions(code) == 2
    with pytest.raises(tfp_vae.TfpVaeError, match="posterior means"):
        active_directions(means[:1])
