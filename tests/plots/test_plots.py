"""Every picture: a Figure with the right panels, labels and image contents; the run-level CLI."""

import json

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot (seaborn does)

import numpy as np
import pytest
from matplotlib.figure import Figure

import tfp_vae
from conftest import grey_images
from tfp_vae.cli import main
from tfp_vae.plots import model as plots
from tfp_vae.plots.run import run_figures


@pytest.fixture(scope="module")
def model2():
    return tfp_vae.build_vae(latent_dim=2, hidden_units=(32,), seed=0)


@pytest.fixture(scope="module")
def model5():
    return tfp_vae.build_vae(latent_dim=5, hidden_units=(32,), seed=0)


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_image_grid_titles_each_image_with_its_class():
    x = grey_images(10)
    labels = np.arange(10)[::-1]
    fig = plots.image_grid(x, labels, ncols=4)
    assert isinstance(fig, Figure)
    shown = _image_axes(fig)
    assert len(shown) == 10 and len(fig.axes) == 12  # 3 rows x 4, two blank cells
    assert [ax.get_title() for ax in shown] == [tfp_vae.CLASS_NAMES[i] for i in labels]
    np.testing.assert_allclose(shown[3].images[0].get_array(), x[3, ..., 0])


def test_latent_scatter_two_dims_uses_the_codes_themselves():
    codes = np.random.default_rng(0).normal(size=(300, 2))
    labels = np.arange(300) % 10
    fig = plots.latent_scatter(codes, labels)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z[0]", "z[1]")
    points = ax.collections[0].get_offsets()
    assert len(points) == 300
    np.testing.assert_allclose(np.sort(points[:, 0]), np.sort(codes[:, 0]))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(tfp_vae.CLASS_NAMES)


def test_latent_scatter_projects_larger_spaces_on_principal_components():
    rng = np.random.default_rng(1)
    # Variance concentrated on dims 3 and 1: PCA must find them, in that order.
    codes = rng.normal(size=(500, 6)) * np.array([0.1, 3.0, 0.1, 10.0, 0.1, 0.1])
    points, labels = plots.project_2d(codes)
    assert labels[0].startswith("PC 1") and labels[1].startswith("PC 2")
    assert abs(np.corrcoef(points[:, 0], codes[:, 3])[0, 1]) > 0.99
    assert abs(np.corrcoef(points[:, 1], codes[:, 1])[0, 1]) > 0.99
    fig = plots.latent_before_after(codes * 0.01, codes, np.arange(500) % 10)
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("before training", "after training")
    assert "PC 1" in right.get_xlabel() and "variance" in right.get_xlabel()


def test_reconstructions_rows_are_named_data_mean_and_sample(model2):
    x = tfp_vae.binarize_images(grey_images(6, seed=3), seed=0)
    fig = plots.reconstructions(model2, x)
    assert len(fig.axes) == 18
    first = [fig.axes[i].get_ylabel() for i in (0, 6, 12)]
    assert first == ["data", "reconstruction\n(decoder mean)", "sample of\np(x | z = mean)"]
    assert fig.get_suptitle() == "images and their reconstructions"
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), x[2, ..., 0])
    expected_mean = model2.decoder(model2.encoder(x[:1]).mean()).mean().numpy()[0, ..., 0]
    np.testing.assert_allclose(fig.axes[6].images[0].get_array(), expected_mean, rtol=1e-5)
    sample = np.asarray(fig.axes[12].images[0].get_array())
    assert set(np.unique(sample)) <= {0.0, 1.0}  # a Bernoulli draw, not a mean


def test_prior_samples_grid(model5):
    fig = plots.prior_samples(model5, n=12, ncols=6)
    assert len(_image_axes(fig)) == 12 and "p(z)" in fig.get_suptitle()
    img = np.asarray(_image_axes(fig)[0].images[0].get_array())
    assert img.shape == (28, 28) and 0 < img.min() and img.max() < 1  # Bernoulli means


def test_latent_manifold_decodes_prior_quantiles(model2):
    fig = plots.latent_manifold(model2, n=5)
    (ax,) = fig.axes
    canvas = np.asarray(ax.images[0].get_array())
    assert canvas.shape == (5 * 28, 5 * 28)
    ticks = [float(t.get_text()) for t in ax.get_xticklabels()]
    assert ticks[0] == pytest.approx(-1.6, abs=0.05) and ticks[-1] == pytest.approx(1.6, abs=0.05)
    # Top-left tile is z = (lowest quantile, highest quantile).
    z = np.array([[ticks[0], -ticks[0]]], np.float32)
    tile = model2.decoder(z).mean().numpy()[0, ..., 0]
    np.testing.assert_allclose(canvas[:28, :28], tile, atol=0.06)  # ticks are rounded to 0.1
    assert "z[0]" in ax.get_xlabel() and "z[1]" in ax.get_ylabel()


def test_latent_manifold_refuses_other_latent_sizes(model5):
    with pytest.raises(tfp_vae.ConfigError, match="latent_dim=2"):
        plots.latent_manifold(model5)


def test_latent_traversals_move_one_dimension_per_row(model5):
    x = grey_images(1, seed=4)[0]
    fig = plots.latent_traversals(model5, x, dims=[0, 3], steps=5, span=2.0)
    assert len(fig.axes) == 2 * 6
    assert [fig.axes[i].get_ylabel() for i in (0, 6)] == ["z[0]", "z[3]"]
    assert [fig.axes[i].get_title() for i in range(1, 6)] == ["-2.0", "-1.0", "+0.0", "+1.0", "+2.0"]
    mean = model5.encoder(x[None]).mean().numpy()
    z = mean.copy()
    z[0, 3] += 1.0
    expected = model5.decoder(z).mean().numpy()[0, ..., 0]
    np.testing.assert_allclose(fig.axes[6 + 4].images[0].get_array(), expected, rtol=1e-5)
    with pytest.raises(tfp_vae.TfpVaeError, match="out of range"):
        plots.latent_traversals(model5, x, dims=[5])


def test_validation_curves_draw_each_runs_criterion_and_mark_its_best_epoch():
    runs = {
        "a": {"val_nll": [9.0, 5.0, 4.0, 4.5], "val_kl": [1.0, 1.0, 1.5, 1.0]},
        "b": {"val_nll": [7.0, 6.0], "val_kl": [2.0, 1.0]},
    }
    fig = plots.validation_curves(runs, since=2)
    curve_a, best_a, curve_b, best_b = fig.axes[0].get_lines()
    np.testing.assert_allclose(curve_a.get_xdata(), [2, 3, 4])
    np.testing.assert_allclose(curve_a.get_ydata(), [6.0, 5.5, 5.5])
    assert (best_a.get_xdata()[0], best_a.get_ydata()[0]) == (3, 5.5)  # the first of equal values
    assert (best_b.get_xdata()[0], best_b.get_ydata()[0]) == (2, 7.0)
    assert [t.get_text() for t in fig.axes[0].texts] == ["5.50", "7.00"]
    with pytest.raises(tfp_vae.TfpVaeError, match="'c' has no val_nll"):
        plots.validation_curves({"c": {"loss": [1.0]}})


def test_training_curves_plot_train_and_validation():
    history = {
        "loss": [3.0, 2.0, 1.5],
        "nll": [2.0, 1.5, 1.0],
        "kl": [1.0, 0.5, 0.5],
        "val_loss": [3.1, 2.2, 1.7],
        "val_nll": [2.1, 1.6, 1.2],
        "val_kl": [1.0, 0.6, 0.5],
    }
    fig = plots.training_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "nll", "kl"]
    for ax, key in zip(fig.axes, ("loss", "nll", "kl")):
        train, val = ax.get_lines()
        np.testing.assert_allclose(train.get_ydata(), history[key])
        np.testing.assert_allclose(val.get_ydata(), history["val_" + key])
        assert ax.get_ylabel() == "nats per example"
        assert [line.get_label() for line in ax.get_lines()] == ["train", "validation"]
    # a run without a validation split validates on its test split, and says so
    fig = plots.training_curves(history, validation="test")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train", "test"]


def test_cli_train_evaluate_plot(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    args = ["--data-dir", str(data_dir)]
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--epochs",
                "1",
                "--latent-dim",
                "2",
                "--hidden-units",
                "16",
                "--batch-size",
                "256",
                "--binarize",
                "static",
                "--verbose",
                "0",
                "--train-examples",
                "2000",
                *args,
            ]
        )
        == 0
    )
    # each command ends with one sentence: what was done, where, why it stopped, what to run next
    history = tfp_vae.load_history(run)
    neg_elbo = history["val_nll"][0] + history["val_kl"][0]
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"Trained 1 of 1 epochs into {run} (test -ELBO {neg_elbo:.2f} nats per example); stopped: "
        f"completed 1 epochs. Next: tfp-vae evaluate {run} (or train further with a larger --epochs)"
    )
    latents = tfp_vae.runs.files.load_latents(run)
    assert latents["codes"].shape == (tfp_vae.runs.files.LATENT_EXAMPLES, 2)
    assert main(["evaluate", str(run), "--num-samples", "20", "--limit", "50", *args]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_samples"] == 20 and metrics["test_images"] == 50
    assert metrics["elbo"] < metrics["iwae"] < 0 and len(metrics["kl_per_dim"]) == 2
    out = capsys.readouterr().out
    assert "iwae" in out
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(
            f"Evaluated 50 test images of {run} (test log p(x) >= {metrics['iwae']:.2f} nats per example, "
            f"IWAE K = 20) into {run / 'metrics.json'}; stopped: all images done"
        )
    )
    assert out.strip().endswith(f"Next: tfp-vae plot {run}")
    assert main(["plot", str(run), *args]) == 0
    out = capsys.readouterr().out  # a progress bar with an ETA, then one sentence
    assert "8/8" in out and "ETA" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"Drew 8 figures of {run} into {run / 'plots'}/ (examples.png, ")
    assert "stopped: every figure of this run is drawn. Next: " in last
    # every picture names the run and what it shows; no validation split here: the curves say "test"
    figures = {name: draw() for name, draw in run_figures(run, data_dir).items()}
    assert all(fig.get_suptitle().startswith(f"{run}: ") for fig in figures.values())
    assert figures["reconstructions"].get_suptitle().endswith("test images and their reconstructions")
    curves = figures["training_curves"]
    assert curves.get_suptitle() == f"{run}: training curves (train and test split)"
    assert [line.get_label() for line in curves.axes[0].get_lines()] == ["train", "test"]
    written = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert written == sorted(
        f"{n}.png"
        for n in (
            "examples",
            "reconstructions",
            "prior_samples",
            "latent_traversals",
            "training_curves",
            "latent_manifold",
            "latent_space",
            "principal_traversals",
        )
    )
    assert all((run / "plots" / n).stat().st_size > 5000 for n in written)
    # a shipped or exported run keeps history.csv alone: its curves are still drawn; a run of
    # under one whole epoch (a step budget) has an empty history and no curves figure
    (run / "history.json").unlink()
    assert "training_curves" in run_figures(run, data_dir)
    (run / "history.csv").write_text("epoch\n")
    assert "training_curves" not in run_figures(run, data_dir)
