"""The β-VAE study's table, `tfp-vae study` and the metrics-against-β figure, on synthetic run
directories (config.json, status.json, metrics.json as `tfp-vae evaluate` writes them): no training."""

import json
import math

import pytest
from matplotlib.figure import Figure

from tfp_vae.cli import main
from tfp_vae.errors import RunDirError, TfpVaeError
from tfp_vae.evaluation.record import update_record
from tfp_vae.plots.disentanglement import kl_per_dim_by_beta, study_vs_beta
from tfp_vae.studies.beta_study import FINAL_METRICS, study_kl_per_dim, study_summary, study_table

SIX = {
    "dci_disentanglement": 0.2,
    "dci_completeness": 0.3,
    "dci_informativeness": 0.8,
    "sap": 0.05,
    "modularity": 0.9,
    "explicitness": 0.85,
    "beta_vae_score": 0.7,
}


def _mig(beta, seed, steps):  # grows with beta and with training, differs by seed
    return round(0.01 * beta + 0.001 * seed + steps / 1e6, 6)


@pytest.fixture
def study(tmp_path):
    """beta 1, 4, 16 x seeds 0, 1, 2 evaluated at 10k, 25k and 50k; beta16_seed2 only at 10k."""
    for beta in (1, 4, 16):
        for seed in (0, 1, 2):
            run = tmp_path / f"dsprites_beta{beta}_seed{seed}"
            run.mkdir()
            (run / "config.json").write_text(
                json.dumps({"beta": float(beta), "seed": seed, "max_steps": 50000})
            )
            last = 10_000 if (beta, seed) == (16, 2) else 50_000
            for steps in (10_000, 25_000, 50_000):
                if steps > last:
                    break
                milestone = {
                    "elbo": -30.0 - beta,
                    "mig": _mig(beta, seed, steps),
                    "factor_vae_score": 0.5 + 0.01 * beta,
                }
                update_record(run, milestone | (SIX if steps == 50_000 else {}), steps, f"w{steps}")
            (run / "status.json").write_text(json.dumps({"state": "complete", "steps_done": last}))
    (tmp_path / "fashion_beta1").mkdir()  # another run beside the study: not matched
    return tmp_path


def test_the_table_has_a_row_per_run_and_each_milestone_s_figures(study):
    table = study_table(study)
    assert list(table["beta"]) == [1.0] * 3 + [4.0] * 3 + [16.0] * 3
    assert list(table["seed"]) == [0, 1, 2] * 3
    row = table.iloc[4]  # beta 4, seed 1
    assert row["run"] == "dsprites_beta4_seed1" and row["steps"] == 50_000 and row["status"] == "complete"
    for steps, label in ((10_000, "10k"), (25_000, "25k"), (50_000, "50k")):
        assert row[f"mig@{label}"] == _mig(4, 1, steps)
        assert row[f"factor_vae_score@{label}"] == pytest.approx(0.54)
    for metric in FINAL_METRICS:
        assert f"{metric}@50k" in table.columns
    assert row["dci_disentanglement@50k"] == 0.2 and row["elbo@50k"] == -34.0
    assert "dci_disentanglement@10k" not in table.columns  # the others at the last milestone only
    late = table.iloc[8]  # beta 16, seed 2: evaluated at 10k only
    assert late["steps"] == 10_000 and late["mig@10k"] == _mig(16, 2, 10_000)
    assert math.isnan(late["mig@25k"]) and math.isnan(late["sap@50k"])


def test_the_summary_is_the_median_over_seeds_per_beta(study):
    summary = study_summary(study_table(study))
    assert list(summary.index) == [1.0, 4.0, 16.0] and list(summary["seeds"]) == [3, 3, 3]
    assert list(summary.columns[:4]) == ["seeds", "seeds@10k", "seeds@25k", "seeds@50k"]
    assert list(summary["seeds@10k"]) == [3, 3, 3]  # beta16_seed2 was evaluated at 10k only:
    assert list(summary["seeds@50k"]) == [3, 3, 2]  # its 50k medians are over two seeds
    assert summary.loc[4.0, "mig@50k"] == _mig(4, 1, 50_000)  # the middle seed
    assert summary.loc[16.0, "mig@50k"] == pytest.approx((_mig(16, 0, 50_000) + _mig(16, 1, 50_000)) / 2)
    assert summary.loc[16.0, "mig@10k"] == _mig(16, 1, 10_000)


def test_a_record_of_an_older_version_counts_at_the_steps_the_run_was_trained_for(tmp_path):
    run = tmp_path / "dsprites_beta2_seed0"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"beta": 2.0, "seed": 0}))
    (run / "metrics.json").write_text(json.dumps({"mig": 0.3, "evaluated_steps": 25_000}))  # no at_steps
    table = study_table(tmp_path)
    assert table.loc[0, "mig@25k"] == 0.3 and math.isnan(table.loc[0, "mig@10k"])
    assert table.loc[0, "steps"] == 25_000  # no status.json: the evaluation's steps
    with pytest.raises(RunDirError, match="no run directory .*nothing_here"):
        study_table(tmp_path / "nothing_here")


def test_tfp_vae_study_prints_the_table_and_the_medians(study, capsys):
    assert main(["study", str(study), "--milestones", "10000", "50000"]) == 0
    out = capsys.readouterr().out
    assert "mig@10k" in out and "mig@50k" in out and "mig@25k" not in out
    assert "median over seeds per beta:" in out and "9 run(s) of" in out


def test_the_figure_draws_seeds_and_medians_per_milestone(study):
    fig = study_vs_beta(study_table(study), ["mig", "elbo"])
    assert isinstance(fig, Figure)
    mig_ax, elbo_ax = fig.axes
    lines = mig_ax.get_lines()
    assert [line.get_label() for line in lines] == ["10k steps", "25k steps", "50k steps"]
    assert list(lines[2].get_ydata()) == [_mig(b, 1, 50_000) for b in (1, 4)] + [
        pytest.approx((_mig(16, 0, 50_000) + _mig(16, 1, 50_000)) / 2)
    ]
    assert len(mig_ax.collections[0].get_offsets()) == 9  # 10k: every seed a point
    assert len(mig_ax.collections[2].get_offsets()) == 8  # 50k: beta16_seed2 not there yet
    assert mig_ax.get_title().startswith("MIG") and elbo_ax.get_title().startswith("elbo")
    with pytest.raises(TfpVaeError, match=r"no column of \['accuracy'\]"):
        study_vs_beta(study_table(study), "accuracy")


def test_milestones_none_takes_the_steps_the_runs_were_evaluated_at(study, tmp_path_factory):
    table = study_table(study, milestones=None)
    assert [c for c in table.columns if c.startswith("mig@")] == ["mig@10k", "mig@25k", "mig@50k"]
    first = tmp_path_factory.mktemp("first")  # a study shipped at its first milestone only
    for seed, mig in ((0, 0.1), (1, 0.2)):
        run = first / f"dsprites_beta4_seed{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"beta": 4.0, "seed": seed}))
        update_record(run, {"elbo": -90.0 - seed, "mig": mig, "factor_vae_score": 0.6}, 10_000, "w")
    table = study_table(first, milestones=None)
    assert list(table["mig@10k"]) == [0.1, 0.2] and list(table["elbo@10k"]) == [-90.0, -91.0]
    assert not any(c.endswith("@25k") or c.endswith("@50k") for c in table.columns)


def test_the_rate_of_each_latent_per_run_and_its_figure(tmp_path):
    kl = {(1.0, 0): [3.0, 2.0, 0.5], (1.0, 1): [2.5, 2.5, 1.0], (16.0, 0): [0.0, 1.5, 0.01]}
    for (beta, seed), parts in kl.items():
        run = tmp_path / f"dsprites_beta{beta:g}_seed{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"beta": beta, "seed": seed}))
        update_record(run, {"kl": sum(parts), "kl_per_dim": parts}, 10_000, "w")
    (tmp_path / "dsprites_beta4_seed0").mkdir()  # not evaluated yet: no row
    table = study_kl_per_dim(tmp_path)
    assert list(zip(table["beta"], table["seed"])) == list(kl)
    assert list(table.columns) == ["run", "beta", "seed", "steps", "kl", "z0", "z1", "z2"]
    assert table.loc[2, "z1"] == 1.5 and table.loc[2, "steps"] == 10_000
    fig = kl_per_dim_by_beta(table)
    low, high = fig.axes
    assert low.get_title() == "beta = 1" and high.get_title() == "beta = 16"
    heights = [[bar.get_height() for bar in c] for c in high.containers]
    assert heights == [[1.5, 0.01, 0.0]]  # largest first: the collapsed coordinate last
    assert [t.get_text() for t in low.get_legend().get_texts()] == ["seed 0 (KL 5.5)", "seed 1 (KL 6.0)"]
    assert "after 10,000 steps" in fig.get_suptitle()
    with pytest.raises(RunDirError, match="kl_per_dim"):
        study_kl_per_dim(tmp_path / "nothing_here")
    with pytest.raises(TfpVaeError, match="study_kl_per_dim"):
        kl_per_dim_by_beta(table[["beta", "seed"]])
