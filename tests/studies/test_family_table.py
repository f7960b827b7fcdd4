"""The ranking of likelihood families in bits per dimension (`family_table`) and its figure
(`bits_per_dim_ranking`), on synthetic run directories: config.json, metrics.json as
`tfp-vae evaluate` writes it, history and status.json. Nothing is trained."""

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

import tfp_vae
from tfp_vae import RunDirError, VAEConfig, plots
from tfp_vae.plots import bits_per_dim_ranking
from tfp_vae.runs.files import save_config, save_history
from tfp_vae.studies import family_table

BINARIZED = "binarized images (another data set: not in the 8-bit ranking)"
# family: (bits_per_dim, its standard error, metrics.json's kind, data)
FIGURES = {
    "beta": (4.21, 0.012, "dequantization bound", "8-bit images"),
    "discretized_logistic": (3.87, 0.010, "exact", "8-bit images"),
    "normal": (4.02, 0.011, "dequantization bound", "8-bit images"),
    "bernoulli": (0.41, 0.003, "exact", BINARIZED),
}


def _run(root, family, *, epochs=3, seconds=None, test_images=10000, best_epoch=None, **metrics):
    bits, se, kind, data = FIGURES[family]
    run = root / family
    save_config(VAEConfig(likelihood=family), run)
    record = {
        "elbo": -700.0 - bits,
        "iwae": -690.0 - bits,
        "iwae_standard_error": 1.5,
        "bits_per_dim": bits,
        "bits_per_dim_standard_error": se,
        "bits_per_dim_kind": kind,
        "bits_per_dim_data": data,
        "num_samples": 1000,
        "test_images": test_images,
        **metrics,
    }
    (run / "metrics.json").write_text(json.dumps(record))
    save_history({"loss": [float(e) for e in range(epochs)], "val_loss": [1.0] * epochs}, run)
    status = {"state": "complete", "epochs_done": epochs}
    if seconds is not None:
        status["epoch_seconds"] = seconds
    if best_epoch is not None:
        status["best_epoch"] = best_epoch
    (run / "status.json").write_text(json.dumps(status))
    return run


@pytest.fixture
def four(tmp_path):
    return [
        _run(tmp_path, "beta", epochs=3, seconds=[30.0, 11.0, 12.0], best_epoch=2),
        _run(tmp_path, "bernoulli", epochs=2, seconds=[8.0, 5.0]),
        _run(tmp_path, "discretized_logistic", epochs=4, seconds=[40.0, 21.0, 20.0, 22.0]),
        _run(tmp_path, "normal", epochs=1, seconds=[13.0]),
    ]


def test_the_8bit_families_are_ranked_and_the_bernoulli_is_kept_apart(four):
    ranked, apart = family_table(four)
    assert ranked.index.tolist() == ["discretized_logistic", "normal", "beta"]  # fewest bits first
    assert ranked["rank"].tolist() == [1, 2, 3]
    assert ranked["bits_per_dim"].tolist() == [3.87, 4.02, 4.21]
    assert ranked["bits_per_dim_se"].tolist() == [0.010, 0.011, 0.012]
    assert ranked["kind"].tolist() == ["exact", "bound", "bound"]
    assert set(ranked["data"]) == {"8-bit images"}
    assert apart.index.tolist() == ["bernoulli"]
    assert apart.loc["bernoulli", "data"] == BINARIZED and apart.loc["bernoulli", "rank"] is None
    assert apart.loc["bernoulli", "kind"] == "exact"


def test_epochs_and_seconds_come_from_the_runs_history_and_status(four):
    ranked, apart = family_table(four)
    # the median epoch: the first one's tracing and compiling does not count
    assert ranked.loc["discretized_logistic", "seconds_per_epoch"] == 21.5
    assert ranked.loc["discretized_logistic", "train_seconds"] == 103.0
    assert ranked.loc["beta", "seconds_per_epoch"] == 12.0 and ranked.loc["beta", "train_seconds"] == 53.0
    assert ranked["epochs"].tolist() == [4, 1, 3]
    # status.json's best epoch (early stopping), else the last epoch
    assert ranked["best_epoch"].tolist() == [4, 1, 2]
    assert apart.loc["bernoulli", "seconds_per_epoch"] == 6.5
    assert ranked.loc["beta", "elbo"] == pytest.approx(-704.21)
    assert ranked.loc["beta", "iwae"] == pytest.approx(-694.21)
    assert set(ranked["num_samples"]) == {1000} and set(ranked["test_images"]) == {10000}


def test_a_shipped_run_with_history_csv_alone_and_a_sweep_run_with_train_seconds(tmp_path):
    shipped = _run(tmp_path, "beta", epochs=5)
    (shipped / "history.json").unlink()  # experiments/results/ keeps history.csv only
    (shipped / "status.json").unlink()
    swept = _run(tmp_path, "normal", epochs=4, train_seconds=100.0)  # a sweep's metrics.json
    ranked, _ = family_table([shipped, swept])
    assert ranked.loc["beta", "epochs"] == 5 and ranked.loc["beta", "best_epoch"] == 5
    assert ranked.loc["beta", "seconds_per_epoch"] is None or np.isnan(
        ranked.loc["beta", "seconds_per_epoch"]
    )
    assert (
        ranked.loc["normal", "seconds_per_epoch"] == 25.0 and ranked.loc["normal", "train_seconds"] == 100.0
    )


def test_runs_that_cannot_be_ranked_are_errors_naming_the_fix(tmp_path):
    beta = _run(tmp_path, "beta")
    with pytest.raises(RunDirError, match="at least one"):
        family_table([])
    with pytest.raises(RunDirError, match="not a tfp_vae run directory"):
        family_table([tmp_path / "nothing"])
    (beta / "metrics.json").unlink()
    with pytest.raises(RunDirError, match=r"no metrics.json: evaluate it first \(tfp-vae evaluate .*beta"):
        family_table([beta])
    (beta / "metrics.json").write_text(json.dumps({"bits_per_dim": None, "iwae": -1.0}))
    with pytest.raises(RunDirError, match="has no bits_per_dim"):
        family_table([beta])
    beta = _run(tmp_path, "beta", test_images=10000)
    normal = _run(tmp_path, "normal", test_images=2000)  # evaluated with --limit 2000
    with pytest.raises(RunDirError, match="different numbers of test images"):
        family_table([beta, normal])
    with pytest.raises(RunDirError, match=r"more than one run of \['beta'\]"):
        family_table([beta, beta])
    save_config(VAEConfig(likelihood="normal", dataset="mnist"), normal)
    (normal / "metrics.json").write_text((beta / "metrics.json").read_text())
    with pytest.raises(RunDirError, match="different data sets"):
        family_table([beta, normal])


def test_the_figure_ranks_the_families_and_shows_the_bernoulli_on_its_own_axis(four):
    ranked, apart = family_table(four)
    fig = bits_per_dim_ranking(ranked, apart)
    assert isinstance(fig, Figure)
    left, right = fig.axes[:2]
    # rank 1 at the top
    heights = dict(zip((t.get_text() for t in left.get_yticklabels()), left.get_yticks()))
    assert heights == {"discretized_logistic": 2, "normal": 1, "beta": 0}
    # one error bar per family: its point at (mean, height), its bar mean +- standard error
    drawn = {}
    for bar in left.containers:
        point, _, (segments,) = bar.lines
        (x,), (y,) = point.get_xdata(), point.get_ydata()
        drawn[int(y)] = (x, tuple(np.round(segments.get_segments()[0][:, 0], 6)))
    assert drawn == {2: (3.87, (3.86, 3.88)), 1: (4.02, (4.009, 4.031)), 0: (4.21, (4.198, 4.222))}
    assert [t.get_text() for t in right.get_yticklabels()] == ["bernoulli"]
    assert "binarized images" in right.get_xlabel() and "not ranked" in right.get_title()
    assert "8-bit" in left.get_xlabel()
    labels = {t.get_text() for ax in (left, right) for t in ax.texts}
    assert "3.870 ± 0.010" in labels and "0.410 ± 0.003" in labels


def test_the_figure_without_a_table_apart_has_one_panel_and_bad_tables_are_refused(four):
    ranked, _ = family_table(four[2:])
    fig = bits_per_dim_ranking(ranked)
    assert len(fig.axes) == 1
    assert tfp_vae.bits_per_dim_ranking is bits_per_dim_ranking and tfp_vae.family_table is family_table
    with pytest.raises(ValueError, match="ranked is empty"):
        bits_per_dim_ranking(ranked.iloc[:0])
    with pytest.raises(ValueError, match="lacks the column bits_per_dim"):
        bits_per_dim_ranking(ranked.drop(columns="bits_per_dim"))


def test_samples_and_reconstructions_show_every_family_as_grey_level_over_255():
    # An untrained discretized logistic's decoder means are grey levels near 127.5: drawn as they
    # are they would clip to white; shown as level / 255 they are mid-grey, as the unit families'.
    models = {
        family: tfp_vae.build_vae(likelihood=family, input_shape=(8, 8, 1), hidden_units=(16,), latent_dim=2)
        for family in ("discretized_logistic", "continuous_bernoulli")
    }
    raw = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 1), dtype=np.uint8)
    for fig in (tfp_vae.compare_reconstructions(models, raw, n=4), tfp_vae.compare_samples(models, n=4)):
        means = [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]
        assert all(0.05 < m.mean() < 0.95 for m in means), [m.mean() for m in means]
    original = np.asarray(tfp_vae.compare_reconstructions(models, raw, n=4).axes[0].images[0].get_array())
    np.testing.assert_allclose(original, raw[0, ..., 0] / 255.0, rtol=1e-6)
    # and a run's own pictures (`tfp-vae plot`): data, reconstructions, samples
    levels = tfp_vae.scale_images(raw, "discretized_logistic")
    fig = plots.reconstructions(models["discretized_logistic"], levels)
    data, mean = (np.asarray(fig.axes[i].images[0].get_array()) for i in (0, 4))
    np.testing.assert_allclose(data, raw[0, ..., 0] / 255.0, rtol=1e-6)
    assert 0.05 < mean.mean() < 0.95
    fig = plots.prior_samples(models["discretized_logistic"], n=4)
    assert all(0.05 < np.asarray(ax.images[0].get_array()).mean() < 0.95 for ax in fig.axes if ax.images)
