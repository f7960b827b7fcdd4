"""Known answers of the disentanglement metrics: the values disentanglement_lib's own tests state
(DCI and modularity of small importance / information matrices, the histogram discretizer,
discrete entropy and mutual information), and every metric's range on an identity, an all-zero
and a duplicated representation of five factors."""

import numpy as np
import pytest

from conftest import FactorGrid
from tfp_vae.evaluation import disentanglement as dis

DIAGONAL = np.diag(5.0 * np.ones(5))
EMPTY_CODE = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # the third code carries nothing
TEN_CODES_FIVE_FACTORS = 1.0 - np.log(2) / np.log(10)  # each factor split evenly over 2 of 10 codes


# ---------------------------------------------------------------------------- DCI matrices
@pytest.mark.parametrize(
    "importance, disentanglement, completeness",
    [
        (DIAGONAL, 1.0, 1.0),
        (EMPTY_CODE, 1.0, 1.0),
        (np.zeros((10, 10)), 0.0, 0.0),
        (np.vstack([DIAGONAL, DIAGONAL]), 1.0, TEN_CODES_FIVE_FACTORS),  # redundant codes
        (DIAGONAL[:2, :], 1.0, 1.0),  # factors no code knows
        (np.hstack([DIAGONAL, DIAGONAL]), TEN_CODES_FIVE_FACTORS, 1.0),  # one code, two factors
    ],
    ids=["diagonal", "empty_code", "zero", "redundant_codes", "missed_factors", "one_code_two_factors"],
)
def test_dci_of_importance_matrices(importance, disentanglement, completeness):
    scores = dis.dci_scores(importance)
    assert scores["disentanglement"] == pytest.approx(disentanglement, abs=1e-7)
    assert scores["completeness"] == pytest.approx(completeness, abs=1e-7)


# ---------------------------------------------------------------------------- modularity
@pytest.mark.parametrize(
    "information, expected",
    [
        (DIAGONAL, 1.0),
        (EMPTY_CODE, 2.0 / 3.0),  # the dead code scores 0
        (np.zeros((10, 10)), 0.0),
        (np.vstack([DIAGONAL, DIAGONAL]), 1.0),
        (DIAGONAL[:2, :], 1.0),
        (np.hstack([DIAGONAL, DIAGONAL]), 1.0 - 1.0 / 9.0),  # 1 of 9 other factors as informed
    ],
    ids=["diagonal", "empty_code", "zero", "redundant_codes", "missed_factors", "one_code_two_factors"],
)
def test_modularity_of_information_matrices(information, expected):
    assert dis.modularity(information) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------- information
def test_histogram_discretizer_cuts_each_code_into_equal_width_bins():
    codes = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]).T  # [N=6, d=2]
    expected = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_array_equal(dis.discretize(codes, bins=3), expected)
    assert dis.discretize(np.random.default_rng(0).normal(size=(500, 3))).max() == 20  # 20 bins


def test_discrete_entropy_of_three_equal_bins_is_ln_3():
    factors = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_allclose(dis.discrete_entropy(factors), [np.log(3), np.log(3)])


def test_discrete_mutual_information_of_equal_and_independent_columns():
    codes = np.array([[1, 2, 1, 2], [1, 1, 2, 2]]).T
    factors = np.array([[1, 2, 1, 2], [2, 2, 1, 1]]).T
    np.testing.assert_allclose(
        dis.mutual_information(codes, factors), [[np.log(2), 0.0], [0.0, np.log(2)]], atol=1e-12
    )


# ---------------------------------------------------------------------------- ranges
SIZES = (3, 3, 3, 3, 3)  # five factors, as in the 1 - ln 2 / ln 10 of ten duplicated codes
N, TRAIN, TEST = 1500, 1000, 500


REPRESENTATIONS = {  # factor classes [n, 5] -> codes
    "identity": lambda f: f.astype(float),
    "zero": lambda f: np.zeros(f.shape),
    "duplicated": lambda f: np.hstack([f, f]).astype(float),
}


def _images_to(name):
    return lambda images: REPRESENTATIONS[name](images.reshape(len(images), -1))


@pytest.fixture(scope="module")
def code_scores():
    factors = np.random.default_rng(0).integers(0, 3, (N, len(SIZES)))
    return {
        name: dis.disentanglement_metrics(rep(factors), factors, TRAIN, TEST, seed=0)
        for name, rep in REPRESENTATIONS.items()
    }


def test_an_identity_code_scores_at_the_top(code_scores):
    s = code_scores["identity"]
    assert s["mig"] > 0.95 and s["modularity"] > 0.95 and s["explicitness"] > 0.95
    assert s["dci_disentanglement"] > 0.9 and s["dci_completeness"] > 0.9 and s["dci_informativeness"] == 1.0
    # SAP's ceiling for a 3-class factor is 1 - 1/3; the second-best latent is at chance
    assert 0.3 < s["sap"] <= 2 / 3 + 0.01


def test_an_all_zero_code_scores_zero(code_scores):
    s = code_scores["zero"]
    assert s["mig"] == 0.0 and s["sap"] == 0.0 and s["modularity"] == 0.0
    assert s["dci_disentanglement"] == pytest.approx(0.0, abs=1e-7)  # no tree ever splits
    assert s["dci_completeness"] == pytest.approx(0.0, abs=1e-7)
    assert s["explicitness"] == pytest.approx(0.5)  # constant probabilities: chance ROC-AUC
    assert s["dci_informativeness"] < 1 / 3 + 0.05  # the majority class


def test_a_duplicated_code_is_disentangled_but_not_complete(code_scores):
    s = code_scores["duplicated"]
    assert s["mig"] == pytest.approx(0.0, abs=1e-12) and s["sap"] < 0.05  # the top two latents tie
    assert s["modularity"] > 0.95 and s["explicitness"] > 0.95
    assert s["dci_disentanglement"] > 0.9
    assert s["dci_completeness"] == pytest.approx(TEN_CODES_FIVE_FACTORS, abs=0.1)


@pytest.mark.parametrize(
    "name, low, high", [("identity", 1.0, 1.0), ("zero", 0.0, 0.0), ("duplicated", 1.0, 1.0)]
)
def test_factor_vae_score_on_the_three_representations(name, low, high):
    score = dis.factor_vae_score(
        _images_to(name), FactorGrid(SIZES), num_train=300, num_eval=200, num_variance_points=500
    )
    assert low <= score <= high


@pytest.mark.parametrize(
    "name, low, high", [("identity", 0.9, 1.0), ("zero", 0.0, 0.3), ("duplicated", 0.9, 1.0)]
)
def test_beta_vae_score_on_the_three_representations(name, low, high):
    # zero: every feature is 0, so the classifier names one factor: about 1 in 5 right
    score = dis.beta_vae_score(
        _images_to(name), FactorGrid(SIZES), num_train=500, num_eval=300, batch_size=16
    )
    assert low <= score <= high


# ---------------------------------------------------------------------------- tfp-vae evaluate
def test_evaluate_on_dsprites_computes_every_metric_and_resumes_group_by_group(tmp_path, capsys):
    import json

    import tfp_vae
    from tfp_vae.cli import main

    config = tfp_vae.VAEConfig(
        dataset="dsprites_small", input_shape=(64, 64, 1), hidden_units=(8,), latent_dim=3, seed=0
    )
    run_dir = tfp_vae.save(tfp_vae.build_vae(config), tmp_path / "run")
    argv = ["evaluate", str(run_dir), "--num-samples", "2", "--limit", "32", "--batch-size", "32"]
    argv += ["--disentanglement-points", "200", "100", "--factor-vae-votes", "20", "10"]
    assert main(argv) == 0
    first = json.loads((run_dir / "metrics.json").read_text())
    assert "iwae" in first and first["factor_vae_votes"] == [20, 10]
    for metric in dis.TABLE_METRICS:
        assert 0.0 <= first[metric] <= 1.0, metric
    (folder,) = (run_dir / "evaluation" / "disentanglement").iterdir()
    assert sorted(p.stem for p in folder.iterdir()) == sorted(dis.GROUPS)
    # an evaluation stopped before mig and beta_vae: the others are read back, not recomputed
    (folder / "mig.json").unlink()
    (folder / "beta_vae.json").unlink()
    kept = json.loads((folder / "dci.json").read_text())
    kept["metrics"]["dci_completeness"] = 0.125
    (folder / "dci.json").write_text(json.dumps(kept))
    capsys.readouterr()
    assert main(argv) == 0
    assert "resuming: 4 of 6 metric group(s) done" in capsys.readouterr().out
    second = json.loads((run_dir / "metrics.json").read_text())
    assert second["dci_completeness"] == 0.125
    for metric in ("mig", "beta_vae_score"):
        assert second[metric] == first[metric], metric  # the same draws alone as with the others
    assert main(argv[:-2] + ["0", "10"]) == 2  # zero votes: refused before any work
    assert "--factor-vae-votes [0, 10]: need two integers >= 1" in capsys.readouterr().err
