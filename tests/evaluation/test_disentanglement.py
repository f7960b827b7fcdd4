"""Disentanglement metrics on codes whose answer is known: the factors themselves and monotone
transforms of them score near 1, independent noise near 0, a rotation of two factors lower."""

import numpy as np
import pytest

from conftest import FactorGrid
from tfp_vae.errors import DataError
from tfp_vae.evaluation import disentanglement as dis

SIZES = (2, 3, 3)  # classes per factor: small enough that a one-latent linear SVM separates them
N, TRAIN, TEST = 1200, 800, 400


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(1)
    return np.stack([rng.integers(0, s, N) for s in SIZES], axis=1)


def _noise(n, d, seed=2):
    return np.random.default_rng(seed).normal(size=(n, d))


def _all_metrics(codes, factors):
    return dis.disentanglement_metrics(codes, factors, num_train=TRAIN, num_test=TEST)


@pytest.fixture(scope="module")
def scores(factors):
    f = factors.astype(float)
    monotone = np.stack([np.exp(f[:, 0]), f[:, 1] ** 3, -2.0 * f[:, 2] + 5.0], axis=1)
    # 45 degrees in the plane of factors 1 and 2: each latent now carries both.
    rotated = f.copy()
    rotated[:, 1], rotated[:, 2] = (f[:, 1] - f[:, 2]) / np.sqrt(2), (f[:, 1] + f[:, 2]) / np.sqrt(2)
    codes = {
        "factors": f,
        # permuted, monotonically transformed, with two uninformative latents beside them
        "monotone": np.concatenate(
            [_noise(N, 1), monotone[:, [2, 0]], _noise(N, 1, 3), monotone[:, [1]]], axis=1
        ),
        "noise": _noise(N, 5),
        "rotated": rotated,
    }
    return {name: _all_metrics(c, factors) for name, c in codes.items()}


@pytest.mark.parametrize("case", ["factors", "monotone"])
def test_the_factors_and_monotone_transforms_of_them_score_near_one(scores, case):
    s = scores[case]
    assert s["mig"] > 0.95
    assert s["dci_disentanglement"] > 0.95 and s["dci_completeness"] > 0.95
    assert s["dci_informativeness"] > 0.99
    # SAP stays well below 1 (see the binary test below); here far above noise's
    assert s["sap"] > 0.35


def test_sap_of_a_perfect_code_of_binary_factors_is_one_half():
    # SAP's ceiling is not 1: the second-best latent is an uninformative one, whose balanced
    # classifier is right for about one image in two, so a perfect code scores 1 - 1/2 (with
    # more classes a one-latent linear SVM often cannot isolate the middle ones).
    rng = np.random.default_rng(3)
    factors = rng.integers(0, 2, (N, 4))
    codes = np.concatenate([np.exp(factors[:, :2]), -3.0 * factors[:, 2:] + 1, _noise(N, 2)], axis=1)
    assert dis.sap(codes, factors, TRAIN, TEST) == pytest.approx(0.5, abs=0.05)


def test_independent_noise_scores_near_zero(scores):
    s = scores["noise"]
    assert s["mig"] < 0.03
    assert s["dci_disentanglement"] < 0.1 and s["dci_completeness"] < 0.1
    assert s["dci_informativeness"] < np.mean([1 / n for n in SIZES]) + 0.1  # chance
    assert s["sap"] < 0.05


def test_a_rotation_of_two_factors_scores_lower_than_the_factors(scores):
    rotated, clean = scores["rotated"], scores["factors"]
    for metric in ("mig", "dci_disentanglement", "dci_completeness", "sap"):
        assert rotated[metric] < clean[metric] - 0.15, metric
    assert rotated["dci_informativeness"] > 0.99  # a rotation loses no information


def test_mig_and_dci_follow_their_definitions_on_a_two_latent_example():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 2, (600, 2))
    # latent 0 = factor 0; latent 1 = factor 0 xor factor 1 carries nothing about either alone
    codes = np.stack([factors[:, 0], factors[:, 0] ^ factors[:, 1]], axis=1).astype(float)
    info = dis.mutual_information(dis.discretize(codes), factors)
    assert info[0, 0] == pytest.approx(np.log(2), abs=0.01) and info[1, 0] < 0.01
    # factor 0: gap ln 2 - 0 over H = ln 2; factor 1: no latent knows it, gap 0
    assert dis.mig(codes, factors) == pytest.approx(0.5, abs=0.02)
    # importance all on one latent for one factor and spread over both for the other
    scores = dis.dci_scores(np.array([[1.0, 0.5], [0.0, 0.5]]))
    assert scores["completeness"] == pytest.approx(0.5)  # factors: 1 - H2(1, 0) = 1 and 1 - H2(.5, .5) = 0
    # latent 0 holds 3/4 of the importance, split 2:1 between factors; latent 1 is pure
    expected = 0.75 * (1 - (-(2 / 3) * np.log2(2 / 3) - (1 / 3) * np.log2(1 / 3))) + 0.25 * 1
    assert scores["disentanglement"] == pytest.approx(expected, abs=1e-6)


def test_metrics_are_reproducible_and_take_a_seed(factors):
    codes = factors + 0.3 * _noise(N, len(SIZES))
    assert dis.sap(codes, factors, TRAIN, TEST, seed=5) == dis.sap(codes, factors, TRAIN, TEST, seed=5)
    assert dis.mig(codes, factors, num_points=500, seed=1) == dis.mig(codes, factors, num_points=500, seed=1)
    assert dis.mig(codes, factors, num_points=500, seed=1) != dis.mig(codes, factors, num_points=500, seed=2)


# ---------------------------------------------------------------------------- FactorVAE score
def _as_codes(images):
    return images.reshape(len(images), -1).astype(float)


def test_factor_vae_score_is_one_for_the_factors_and_ignores_constant_latents():
    def codes_with_a_dead_latent(images):  # a latent of sd 0 < 0.05 must be pruned, not chosen
        return np.concatenate([_as_codes(images) ** 3, np.zeros((len(images), 1))], axis=1)

    ds = FactorGrid(SIZES)
    assert dis.factor_vae_score(_as_codes, ds, num_train=300, num_eval=200) == 1.0
    assert dis.factor_vae_score(codes_with_a_dead_latent, ds, num_train=300, num_eval=200) == 1.0


def test_factor_vae_score_is_near_chance_for_noise():
    rng = np.random.default_rng(0)
    score = dis.factor_vae_score(
        lambda images: rng.normal(size=(len(images), 4)), FactorGrid(SIZES), num_train=600, num_eval=600
    )
    assert abs(score - 1 / len(SIZES)) < 0.1


def test_factor_vae_score_encodes_a_vae_and_is_zero_when_every_latent_is_dead():
    import tfp_vae

    model = tfp_vae.build_vae(tfp_vae.VAEConfig(latent_dim=2, input_shape=(1, 1, 3), hidden_units=(4,)))
    for layer in model.encoder.layers:  # zero weights: the posterior mean is the same for every image
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    assert (
        dis.factor_vae_score(model, FactorGrid(SIZES), num_train=20, num_eval=20, num_variance_points=100)
        == 0.0
    )


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "codes, factors, needle",
    [
        (np.zeros(10), np.zeros((10, 2), int), "codes"),
        (np.zeros((10, 3)), np.zeros((9, 2), int), "10 codes, 9 factors"),
        (np.zeros((10, 3)), np.zeros((10, 2)), "integer class indices"),
        (np.full((10, 3), np.nan), np.zeros((10, 2), int), "finite"),
    ],
)
def test_bad_codes_or_factors_name_the_argument(codes, factors, needle):
    for metric in (dis.mig, dis.dci, dis.sap):
        with pytest.raises(DataError, match=needle):
            metric(codes, factors)


def test_too_few_points_for_the_split_says_how_to_fix_it(factors):
    with pytest.raises(DataError, match="num_train \\+ num_test = 15000.*smaller num_train"):
        dis.dci(factors.astype(float), factors)
    with pytest.raises(DataError, match="num_eval"):
        dis.factor_vae_score(_as_codes, FactorGrid(SIZES), num_eval=0)


# ---------------------------------------------------------------------------- pictures
dplots = pytest.importorskip("tfp_vae.plots.disentanglement")


def _rotation_3d(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q


def test_principal_directions_undo_a_rotation_of_the_code():
    rotation = _rotation_3d()
    codes = (np.random.default_rng(1).normal(size=(4000, 3)) * [3.0, 0.5, 0.0]) @ rotation.T
    sd, rows = dplots.principal_directions(codes)
    np.testing.assert_allclose(sd, [3.0, 0.5, 0.0], atol=0.1)
    for j in range(2):  # each direction is a column of the rotation, up to sign
        assert abs(rows[j] @ rotation[:, j]) == pytest.approx(1.0, abs=1e-3)


@pytest.fixture(scope="module")
def tiny_vae():
    import tfp_vae

    return tfp_vae.build_vae(
        tfp_vae.VAEConfig(latent_dim=3, input_shape=(4, 4, 1), hidden_units=(8,), seed=0)
    )


def test_principal_traversals_move_only_along_directions_with_spread(tiny_vae):
    x = np.random.default_rng(0).uniform(size=(20, 4, 4, 1)).astype(np.float32)
    codes = np.zeros((50, 3))
    codes[:, 0] = np.linspace(-1, 1, 50) / np.sqrt(2)
    codes[:, 1] = np.linspace(-1, 1, 50) / np.sqrt(2)  # all spread along (1, 1, 0) / sqrt 2
    _, sd, images = dplots.principal_traversal_images(tiny_vae, x, codes, directions=2, steps=5)
    assert images.shape == (2, 5, 4, 4, 1) and sd[1] == pytest.approx(0.0, abs=1e-9)
    assert np.ptp(images[0], axis=0).max() > 1e-4  # the direction with spread changes the image
    np.testing.assert_allclose(images[1], np.broadcast_to(images[1, :1], images[1].shape), atol=1e-6)
    fig = dplots.principal_traversals(tiny_vae, x, codes, directions=2, steps=5)
    assert fig.axes[0].get_ylabel().startswith("PC 1\nsd 0.59\n100%") and len(fig.axes) == 2 * 6


def test_factor_traversals_pick_the_direction_that_carries_each_factor(tiny_vae):
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, (600, 2))
    rotation = _rotation_3d(1)
    # factor 1 on the wide axis, factor 0 on the narrow one, then rotated
    codes = np.stack([3.0 * factors[:, 1], 1.0 * factors[:, 0], np.zeros(600)], axis=1) @ rotation.T
    x = rng.uniform(size=(2, 4, 4, 1)).astype(np.float32)
    fig = dplots.factor_traversals(tiny_vae, x, codes, factors, ["shape", "size"], steps=3)
    labels = [fig.axes[r * 4].get_ylabel().split("\n") for r in range(2)]
    assert labels[0][:2] == ["shape", "PC 2"] and labels[1][:2] == ["size", "PC 1"]
    assert all(float(label[2].split()[-1]) > 0.95 for label in labels)  # I / H


def test_factor_traversals_in_the_latent_basis_pick_the_coordinate_of_each_factor(tiny_vae):
    """A diagonal posterior's code: factor 1 on z0, factor 0 on z2, z1 noise (basis="latents")."""
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, (600, 2))
    codes = np.stack([3.0 * factors[:, 1], rng.normal(size=600), 0.5 * factors[:, 0]], axis=1)
    x = rng.uniform(size=(2, 4, 4, 1)).astype(np.float32)
    fig = dplots.factor_traversals(tiny_vae, x, codes, factors, ["shape", "size"], steps=3, basis="latents")
    labels = [fig.axes[r * 4].get_ylabel().split("\n") for r in range(2)]
    assert labels[0][:2] == ["shape", "z2"] and labels[1][:2] == ["size", "z0"]
    assert all(float(label[2].split()[-1]) > 0.95 for label in labels)  # I / H
    assert "latent coordinate" in fig.get_suptitle()
    with pytest.raises(Exception, match="basis='pca'"):
        dplots.factor_traversals(tiny_vae, x, codes, factors, ["shape", "size"], basis="pca")


def test_disentanglement_vs_beta_draws_means_and_sd_over_seeds_beside_rate_distortion():
    import pandas as pd

    table = pd.DataFrame(
        {
            "beta": [1, 1, 4, 4],
            "seed": [0, 1, 0, 1],
            "nll": [10, 12, 20, 22],
            "kl": [8, 6, 3, 3],
            "mig": [0.1, 0.3, 0.4, 0.6],
            "dci_disentanglement": [0.2] * 4,
        }
    )
    fig = dplots.disentanglement_vs_beta(table, metric=("mig", "dci_disentanglement"))
    left, right = fig.axes
    np.testing.assert_allclose(np.asarray(left.get_lines()[0].get_ydata(), float), [0.2, 0.5])
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["MIG", "DCI disentanglement"]
    assert right.get_title().startswith("Rate-distortion") and "2 seed(s)" in left.get_title()
    with pytest.raises(Exception, match="choose one of"):
        dplots.disentanglement_vs_beta(table, metric="accuracy")


# ---------------------------------------------------------------------------- a sweep on dSprites
def test_sweep_on_dsprites_adds_the_disentanglement_columns(tmp_path, capsys):
    import json

    import pandas as pd

    from tfp_vae.cli import main

    argv = [
        "sweep",
        "--out",
        str(tmp_path),
        "--grid",
        "beta",
        "2",
        "--dataset",
        "dsprites_small",
        "--input-shape",
        "64",
        "64",
        "1",
        "--hidden-units",
        "8",
        "--latent-dim",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--train-examples",
        "256",
        "--test-examples",
        "64",
        "--num-samples",
        "2",
        "--verbose",
        "0",
        "--disentanglement-points",
        "300",
        "150",
        "--factor-vae-votes",
        "40",
        "20",
    ]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "results.csv")
    for column in dis.TABLE_METRICS:
        assert 0.0 <= table.loc[0, column] <= 1.0, column
    metrics = json.loads((tmp_path / "beta=2" / "metrics.json").read_text())
    assert metrics["disentanglement_points"] == [300, 150] and metrics["factor_vae_votes"] == [40, 20]
    settings = json.loads((tmp_path / "sweep.json").read_text())
    assert settings["disentanglement_points"] == [300, 150]
    # the same sweep with other metric settings would mix incomparable numbers: refused
    assert main(argv[:-5] + ["1000", "500", "--factor-vae-votes", "40", "20"]) == 2
    assert "different ['disentanglement_points']" in capsys.readouterr().err
