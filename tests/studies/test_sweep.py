"""Sweeps: the grid, deterministic shards, resuming, the results table, and on real
Fashion-MNIST the rate (KL) falling as beta grows."""

import json

import numpy as np
import pandas as pd
import pytest

import tfp_vae
from tfp_vae.cli import main
from tfp_vae.studies import grid as sw

# deterministic=True runs the tiny steps unfused: no XLA compilation per point, a third of the
# time (the sweep's semantics are the same on both paths).
BASE = tfp_vae.VAEConfig(latent_dim=2, hidden_units=(16, 8), epochs=1, batch_size=32, deterministic=True)


def test_grid_is_the_product_named_by_its_values():
    points = sw.grid_points(BASE, {"seed": [0, 1], "beta": [0.5, 4.0], "hidden_units": [(8, 4)]})
    assert [p.name for p in points] == [
        "beta=0.5,hidden_units=8x4,seed=0",
        "beta=0.5,hidden_units=8x4,seed=1",
        "beta=4,hidden_units=8x4,seed=0",
        "beta=4,hidden_units=8x4,seed=1",
    ]
    assert points[3].config == BASE.replace(beta=4.0, seed=1, hidden_units=(8, 4))
    assert points[3].values == {"beta": 4.0, "hidden_units": (8, 4), "seed": 1}


@pytest.mark.parametrize(
    "grid, message",
    [
        ({}, "grid is empty"),
        ({"betta": [1.0]}, "'betta' is not a VAEConfig field"),
        ({"beta": []}, "non-empty list"),
        ({"beta": [1.0, -2.0]}, r"sweep point beta=-2: VAEConfig.beta=-2.0"),
        ({"beta": [1.0, 1.0]}, "repeats a value"),
    ],
)
def test_bad_grids_are_named(grid, message):
    with pytest.raises(tfp_vae.ConfigError, match=message):
        sw.grid_points(BASE, grid)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_shards_are_disjoint_cover_and_balanced(n):
    points = sw.grid_points(BASE, {"beta": [0.25, 0.5, 1.0, 2.0, 4.0], "seed": [0, 1, 2]})
    shards = [[p.name for p in sw.shard_points(points, (i, n))] for i in range(1, n + 1)]
    flat = [name for shard in shards for name in shard]
    assert sorted(flat) == sorted(p.name for p in points)  # every point exactly once
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shard_assignment_ignores_the_order_the_grid_was_written_in():
    a = sw.grid_points(BASE, {"beta": [0.5, 1.0, 4.0], "seed": [0, 1]})
    b = sw.grid_points(BASE, {"seed": [1, 0], "beta": [4.0, 0.5, 1.0]})
    for i in (1, 2, 3):
        assert sorted(p.name for p in sw.shard_points(a, (i, 3))) == sorted(
            p.name for p in sw.shard_points(b, (i, 3))
        )
    # The split is fixed: shard 1 of 2 takes ranks 0, 2, 4 of the sorted names.
    names = [p.name for p in sw.shard_points(a, (1, 2))]
    assert names == ["beta=0.5,seed=0", "beta=1,seed=0", "beta=4,seed=0"]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1-2", "a/b", "1/0"])
def test_bad_shard_is_named(text):
    with pytest.raises(tfp_vae.ConfigError, match="shard"):
        sw.parse_shard(text)
    assert sw.parse_shard("2/5") == (2, 5)


def test_cli_grid_values_take_the_field_type():
    grid = sw.parse_grid(
        [
            ["beta", "0.5", "4"],
            ["seed", "0", "1"],
            ["hidden-units", "32,16", "8"],
            ["binarize", "none", "static"],
            ["encoder", "conv"],
        ]
    )
    assert grid == {
        "beta": [0.5, 4.0],
        "seed": [0, 1],
        "hidden_units": [(32, 16), (8,)],
        "binarize": [None, "static"],
        "encoder": ["conv"],
    }
    with pytest.raises(tfp_vae.ConfigError, match="cannot read 'x' as int"):
        sw.parse_grid([["seed", "x"]])


# ---------------------------------------------------------------------------- running sweeps
def _tiny_data(data_dir):
    (x, y), (xt, yt) = tfp_vae.load_fashion_mnist("bernoulli", data_dir=data_dir, binarize="static")
    return (x[:96], y[:96]), (xt[:40], yt[:40])


def test_sweep_writes_a_table_resumes_and_skips_finished_points(tmp_path, data_dir, monkeypatch):
    data = _tiny_data(data_dir)
    grid = {"beta": [0.5, 2.0], "seed": [0]}
    trained = []
    real_run = sw.run_point
    monkeypatch.setattr(sw, "run_point", lambda p, *a, **k: trained.append(p.name) or real_run(p, *a, **k))
    table = sw.sweep(BASE, grid, tmp_path, num_samples=4, data=data, verbose=0)
    assert trained == ["beta=0.5,seed=0", "beta=2,seed=0"]
    on_disk = pd.read_csv(tmp_path / sw.RESULTS_CSV)
    assert list(on_disk["run"]) == ["beta=0.5,seed=0", "beta=2,seed=0"]
    for column in (
        "beta",
        "seed",
        "latent_dim",
        "hidden_units",
        "elbo",
        "nll",
        "kl",
        "iwae",
        "active_units",
        "active_directions",
        "train_seconds",
    ):
        assert column in on_disk.columns, column
    assert on_disk["hidden_units"].tolist() == ["16x8", "16x8"]
    # elbo at beta = 1 whatever the training beta; iwae >= elbo (K = 4 draws).
    np.testing.assert_allclose(on_disk["elbo"], -(on_disk["nll"] + on_disk["kl"]), rtol=1e-5)
    assert (on_disk["iwae"] >= on_disk["elbo"] - 1e-3).all()
    metrics = json.loads((tmp_path / "beta=2,seed=0" / sw.METRICS_FILE).read_text())
    assert len(metrics["kl_per_dim"]) == 2
    assert tfp_vae.load_config(tmp_path / "beta=2,seed=0") == BASE.replace(beta=2.0)
    pd.testing.assert_frame_equal(table, on_disk, check_dtype=False)

    # Rerun: nothing to do. Interrupted point (no metrics.json) and a grown grid: only those run.
    trained.clear()
    sw.sweep(BASE, grid, tmp_path, num_samples=4, data=data, verbose=0)
    assert trained == []
    (tmp_path / "beta=0.5,seed=0" / sw.METRICS_FILE).unlink()
    table = sw.sweep(
        BASE, {"beta": [0.5, 2.0, 1.0], "seed": [0]}, tmp_path, num_samples=4, data=data, verbose=0
    )
    assert trained == ["beta=0.5,seed=0", "beta=1,seed=0"]
    assert list(table["run"]) == ["beta=0.5,seed=0", "beta=1,seed=0", "beta=2,seed=0"]  # by beta

    # Another base config or evaluation setting in the same folder is refused, naming it.
    with pytest.raises(tfp_vae.ConfigError, match=r"different \['num_samples'\]"):
        sw.sweep(BASE, grid, tmp_path, num_samples=8, data=data, verbose=0)


def test_shards_fill_one_folder_through_the_cli(tmp_path, data_dir, capsys):
    argv = [
        "sweep",
        "--out",
        str(tmp_path),
        "--grid",
        "beta",
        "4",
        "0.5",
        "--grid",
        "seed",
        "0",
        "--latent-dim",
        "2",
        "--hidden-units",
        "16",
        "--epochs",
        "1",
        "--binarize",
        "static",
        "--deterministic",
        "true",
        "--num-samples",
        "3",
        "--train-examples",
        "64",
        "--test-examples",
        "32",
        "--data-dir",
        str(data_dir),
        "--verbose",
        "0",
    ]
    assert main(argv + ["--shard", "2/2"]) == 0
    first = pd.read_csv(tmp_path / sw.RESULTS_CSV)
    assert list(first["run"]) == ["beta=4,seed=0"]  # sorted names: beta=0.5,... then beta=4,...
    assert main(argv + ["--shard", "1/2"]) == 0
    table = pd.read_csv(tmp_path / sw.RESULTS_CSV)
    assert list(table["beta"]) == [0.5, 4.0]
    assert (table["binarize"] == "static").all() and (table["latent_dim"] == 2).all()
    settings = json.loads((tmp_path / sw.SWEEP_FILE).read_text())
    assert settings["train_examples"] == 64 and settings["grid"] == {"beta": [4.0, 0.5], "seed": [0]}
    out = capsys.readouterr().out
    assert "beta=0.5,seed=0" in out
    both = out.strip().splitlines()[-1]
    assert both == (
        f"Swept 2 of 2 grid point(s) into {tmp_path}/ (table: {tmp_path}/results.csv, nats per test "
        f"image); stopped: every point is done. Next: tfp-vae show {tmp_path}/*/"
    )
    assert "Swept 1 of 2 grid point(s)" in out and "stopped: this shard (2/2) is done" in out
    assert main(argv + ["--shard", "3/2"]) == 2  # a bad shard is a clean CLI error


def test_rate_falls_as_beta_grows_on_fashion_mnist(tmp_path, data_dir):
    """A short real sweep: the rate (KL at beta = 1, nats per test image) orders with beta."""
    base = tfp_vae.VAEConfig(latent_dim=8, epochs=2, batch_size=64, binarize="static")
    table = sw.sweep(
        base,
        {"beta": [0.25, 1.0, 4.0]},
        tmp_path,
        num_samples=10,
        train_examples=4000,
        test_examples=500,
        data_dir=data_dir,
        verbose=0,
    )
    kl = table.sort_values("beta")["kl"].tolist()
    nll = table.sort_values("beta")["nll"].tolist()
    assert kl[0] > kl[1] > kl[2] > 0, kl
    assert nll[0] < nll[2], nll  # less rate, more distortion


def test_table_keeps_config_fields_that_share_a_metric_name(tmp_path):
    """The config field `kl` (the KL estimator) and the metric `kl` (the rate) both survive,
    and the table sorts by the grid's config column."""
    from tfp_vae.runs import files as runs

    points = sw.grid_points(BASE, {"kl": ["sampled", "exact"]})
    for rate, point in zip((3.0, 7.0), points):
        runs.save_config(point.config, tmp_path / point.name)
        metrics = {"elbo": -1.0, "nll": 1.0, "kl": rate, "iwae": -0.5, "bits_per_dim": 0.1, "active_units": 2}
        (tmp_path / point.name / sw.METRICS_FILE).write_text(json.dumps(metrics))
    sw._record_settings(tmp_path, sw._settings(BASE, {"kl": ["sampled", "exact"]}, 4, None, None))
    table = sw.write_results(tmp_path)
    assert list(table["config.kl"]) == ["exact", "sampled"] and list(table["kl"]) == [7.0, 3.0]
    assert "config.nll" not in table.columns and table["nll"].tolist() == [1.0, 1.0]
    assert sw.is_finished(tmp_path / "kl=exact", BASE.replace(kl="exact"))
    assert not sw.is_finished(tmp_path / "kl=exact", BASE.replace(kl="exact", beta=2.0))
