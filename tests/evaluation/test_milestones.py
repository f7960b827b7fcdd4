"""Evaluations at milestones of one run: a run trained further after an evaluation never reuses
the older weights' cached shards or metric groups, metrics.json keeps every evaluation under the
optimizer steps of its weights (`at_steps`), and `--disentanglement-metrics` picks a subset."""

import json
import shutil

import pytest

import tfp_vae
from tfp_vae import choices
from tfp_vae.cli import main
from tfp_vae.evaluation.disentanglement import GROUP_METRICS, GROUPS, TABLE_METRICS
from tfp_vae.evaluation.record import update_record
from tfp_vae.runs.files import weights_steps

CONFIG = tfp_vae.VAEConfig(
    dataset="dsprites_small",
    input_shape=(64, 64, 1),
    encoder="conv",
    conv_filters=4,
    conv_layers=2,
    hidden_units=(8,),
    latent_dim=3,
    batch_size=64,
    train_examples=640,
    epochs=5,
    max_steps=5,
    seed=0,
)
EVALUATE = ["--num-samples", "2", "--limit", "32", "--batch-size", "32", "--verbose", "0"]
EVALUATE += ["--disentanglement-points", "200", "100", "--factor-vae-votes", "20", "10"]


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _kept(run_dir, what):
    return sorted(p.name for p in (run_dir / "evaluation" / what).iterdir())


def test_milestones_never_reuse_older_weights_and_keep_each_evaluation_by_steps(tmp_path, capsys):
    run = tmp_path / "run"
    tfp_vae.train(CONFIG, run, verbose=0)
    assert weights_steps(run) == 5  # stamped into the weights file
    milestone = ["evaluate", str(run), *EVALUATE, "--disentanglement-metrics", "mig,factor_vae"]
    assert main([*milestone, "--at-steps", "9"]) == 75  # not there yet: train, then rerun
    assert "not yet: " in capsys.readouterr().err and not (run / "metrics.json").exists()
    assert main([*milestone, "--at-steps", "5"]) == 0
    at5 = _metrics(run)
    capsys.readouterr()
    assert main([*milestone, "--at-steps", "5"]) == 0 and _metrics(run) == at5  # done: nothing to do
    assert "evaluated at 5 steps already (iwae, mig, factor_vae_score" in capsys.readouterr().out
    assert at5["evaluated_steps"] == 5 and {"mig", "factor_vae_score", "iwae"} <= set(at5)
    assert not {"dci_disentanglement", "sap", "beta_vae_score"} & set(at5)  # the subset only
    assert at5["at_steps"]["5"]["mig"] == at5["mig"]
    (folder5,) = _kept(run, "disentanglement")
    assert _kept(run, f"disentanglement/{folder5}") == ["factor_vae.json", "mig.json"]
    (shards5,) = _kept(run, "K2")

    tfp_vae.train(CONFIG.replace(max_steps=9), run, verbose=0)  # trained further: new weights
    capsys.readouterr()
    assert main([*milestone, "--at-steps", "5", "--disentanglement-metrics", "mig,sap"]) == 2
    assert "trained for 9 optimizer steps, past the milestone --at-steps 5" in capsys.readouterr().err
    assert main([*milestone, "--verbose", "1"]) == 0
    out = capsys.readouterr().out
    assert (
        f"discarding the disentanglement metrics in {run / 'evaluation' / 'disentanglement' / folder5}" in out
    )
    assert f"discarding the evaluation shards in {run / 'evaluation' / 'K2' / shards5}" in out
    assert "resuming" not in out  # nothing of the 5-step weights was read back
    at9 = _metrics(run)
    assert at9["evaluated_steps"] == 9 and _kept(run, "disentanglement") != [folder5]
    assert sorted(at9["at_steps"]) == ["5", "9"] and at9["at_steps"]["5"] == at5["at_steps"]["5"]
    # the figures at 9 steps are those of a fresh evaluation of the 9-step weights, no cache at all
    fresh = tmp_path / "fresh"
    shutil.copytree(run, fresh, ignore=shutil.ignore_patterns("evaluation", "metrics.json"))
    assert main(["evaluate", str(fresh), *milestone[2:]]) == 0
    for key in ("mig", "factor_vae_score", "iwae", "elbo"):
        assert at9[key] == _metrics(fresh)[key], key
    assert at9["iwae"] != at5["iwae"]

    # at the last milestone, all six: the two groups of these weights are read back, not redone
    assert main(["evaluate", str(run), *EVALUATE, "--verbose", "1"]) == 0
    assert "resuming: 2 of 6 metric group(s) done" in capsys.readouterr().out
    final = _metrics(run)
    assert final["mig"] == at9["mig"] and set(TABLE_METRICS) <= set(final)
    assert (
        set(TABLE_METRICS) <= set(final["at_steps"]["9"]) and "dci_completeness" not in final["at_steps"]["5"]
    )
    # the table of runs still reads metrics.json (its scalars; at_steps is not a column)
    table = tfp_vae.runs_table([run])
    assert table.loc[0, "mig"] == final["mig"] and table.loc[0, "evaluated_steps"] == 9
    assert "at_steps" not in table.columns
    # the same weights at other points: the figures of the older points are not kept beside them
    assert main([*milestone[:-1], "mig", "--disentanglement-points", "150", "100"]) == 0
    other = _metrics(run)
    assert other["disentanglement_points"] == [150, 100] and other["mig"] != final["mig"]
    assert "sap" not in other and "factor_vae_score" not in other and other["iwae"] == final["iwae"]
    assert "sap" not in other["at_steps"]["9"] and other["at_steps"]["9"]["mig"] == other["mig"]


def test_an_unknown_metric_is_refused_naming_the_choices_before_any_work(tmp_path, capsys):
    run = tfp_vae.save(tfp_vae.build_vae(CONFIG), tmp_path / "run")
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", str(run), *EVALUATE, "--disentanglement-metrics", "mig,factorvae"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--disentanglement-metrics: invalid metric_names value" not in err
    assert "'factorvae': unknown disentanglement metric (did you mean 'factor_vae'" in err
    assert (
        "beta_vae_score" in err and not (run / "metrics.json").exists() and not (run / "evaluation").exists()
    )


def test_metric_names_take_groups_or_their_metrics_and_match_the_suite():
    assert tuple(choices.METRIC_GROUPS) == GROUPS and choices.METRIC_GROUPS == GROUP_METRICS
    assert choices.metric_groups(["dci_completeness", "mig", "mig"]) == ("mig", "dci")
    assert choices.metric_groups(["all"]) == GROUPS
    with pytest.raises(ValueError, match="no disentanglement metric named"):
        choices.metric_groups([])


def test_a_record_of_other_weights_is_replaced_at_the_top_and_kept_by_its_steps(tmp_path):
    # metrics.json as written before at_steps existed (no digest): replaced, not mixed in
    (tmp_path / "metrics.json").write_text(json.dumps({"elbo": -90.0, "mig": 0.2}))
    record = update_record(tmp_path, {"elbo": -80.0}, steps=100, digest="aa")
    assert record == {
        "elbo": -80.0,
        "evaluated_steps": 100,
        "weights_sha256": "aa",
        "at_steps": {"100": {"elbo": -80.0}},
    }
    update_record(tmp_path, {"mig": 0.3, "factor_vae_votes": [20, 10]}, steps=100, digest="aa")
    record = update_record(tmp_path, {"elbo": -70.0}, steps=1000, digest="bb")
    assert record["at_steps"] == {"100": {"elbo": -80.0, "mig": 0.3}, "1000": {"elbo": -70.0}}
    assert "mig" not in record  # the top level is the latest weights' alone
    record = update_record(tmp_path, {"elbo": -60.0}, steps=None, digest="cc")  # steps unknown
    assert record["at_steps"] == {"100": {"elbo": -80.0, "mig": 0.3}, "1000": {"elbo": -70.0}}
    # an older version's record given its steps by hand is filed under them, not lost
    (tmp_path / "metrics.json").write_text(json.dumps({"mig": 0.1, "evaluated_steps": 10}))
    assert update_record(tmp_path, {"mig": 0.4}, steps=20, digest="dd")["at_steps"] == {
        "10": {"mig": 0.1},
        "20": {"mig": 0.4},
    }
