"""`export_run`: a run directory made shippable (`tfp-vae export RUN DEST`), its metrics still its own.

DEST receives what a loaded run, its plots and the study tables read, and nothing of the training
machinery:

    model.weights.h5    rewritten without the optimizer's state (Adam's moments: about two
                        thirds of the file), stamped with RUN's optimizer steps
                        (`tfp_vae.runs.files.STEPS_ATTR`, which `--at-steps` milestones read)
    metrics.json        RUN's, with weights_sha256 set to the digest of the exported file once
                        the exported weights were checked to be RUN's bit for bit, so that
                        `tfp-vae evaluate DEST` adds to the record instead of starting afresh
                        (kept as it is when RUN's record is of other weights)
    config.json, data.json, status.json (best epoch, steps done, seconds per epoch),
    history.csv (what experiments/results/ keeps; history.json holds the same figures),
    latents_before.npz (the before/after latent scatter)    copied when present

Never copied: checkpoints/ (the resume state: RUN keeps it, train further there), evaluation/
(shards keyed by RUN's weights digest, discarded by the next evaluation of new weights anyway),
.lock, tensorboard/, plots/ (drawn again by `tfp-vae plot DEST`) and workers/.

Everything is written into a temporary folder beside DEST and renamed onto DEST last: an
interrupted export leaves a hidden `.tmp-export-*` folder, never a DEST that looks whole.

>>> import tempfile, tfp_vae
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> run = tfp_vae.save(tfp_vae.build_vae(input_shape=(8, 8, 1), hidden_units=(4,)), root / "run")
>>> sorted(p.name for p in export_run(run, root / "shipped", verbose=0).iterdir())
['config.json', 'model.weights.h5']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tfp_vae.errors import RunDirError
from tfp_vae.evaluation.record import DIGEST_KEY, read_record
from tfp_vae.evaluation.shards import weights_digest
from tfp_vae.runs import files as runs
from tfp_vae.runs.fingerprint import DATA_FILE
from tfp_vae.runs.locks import run_lock
from tfp_vae.training.checkpoint import CHECKPOINTS, STATUS_FILE

# Copied byte for byte when RUN has them (the weights and metrics.json are rewritten).
COPIED = (runs.CONFIG_FILE, DATA_FILE, STATUS_FILE, runs.HISTORY_CSV, runs.LATENTS_BEFORE)


def export_run(
    run_dir: str | os.PathLike, dest: str | os.PathLike, overwrite: bool = False, verbose: int = 1
) -> Path:
    """Writes RUN_DIR's model, without the optimizer's state, and its metrics into the new folder
    DEST (see the module docstring for the files); returns DEST.

    Raises `RunDirError`, before anything is written, when RUN_DIR is not a run directory or has
    no weights, when DEST is RUN_DIR, inside it or holds it, and when DEST exists and is not
    empty (overwrite=True replaces it, unless it holds a training's checkpoints/); and, with
    nothing written to DEST, when the exported weights are not RUN_DIR's bit for bit (naming the
    variable). Holds RUN_DIR's lock meanwhile (`run_lock`), so no training or evaluation rewrites
    it half-way. verbose=1 prints one note when RUN_DIR's training is not complete (the weights of
    that point are exported: a milestone of a running study is paused by design) and one when
    its metrics.json is of other weights (copied as it is: evaluate DEST).
    """
    run, dest = Path(run_dir), Path(dest)
    _check_arguments(run, dest, overwrite)
    with run_lock(run, "exporting"):
        digest = weights_digest(run)  # before loading: the file the metrics were checked against
        model = runs.load(run)
        steps = runs.weights_steps(run)
        status = _read_json(run / STATUS_FILE)
        record = read_record(run)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-export-{dest.name}-"))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; run dirs are shared between machines
            for name in COPIED:
                if (run / name).is_file():
                    with runs.writing(tmp / name):
                        shutil.copyfile(run / name, tmp / name)
            runs.save_weights(model, tmp / runs.WEIGHTS_FILE, steps=steps)
            check_same_variables(model, runs.load(tmp), run, dest)
            if not (run / runs.HISTORY_CSV).is_file() and (run / runs.HISTORY_JSON).is_file():
                runs.save_history(runs.load_history(run), tmp)  # writes both; ship the table alone
                (tmp / runs.HISTORY_JSON).unlink()
            if record:
                if record.get(DIGEST_KEY) == digest:  # RUN's figures are of these very weights
                    record[DIGEST_KEY] = weights_digest(tmp)
                elif verbose:
                    print(
                        f"note: {run / runs.METRICS_FILE} is of other weights than {run / runs.WEIGHTS_FILE} "
                        f"(weights_sha256 {record.get(DIGEST_KEY)!r}, the file's {digest!r}: trained "
                        f"further after its evaluation); copied as it is: run tfp-vae evaluate {dest}"
                    )
                runs.atomic_write_text(tmp / runs.METRICS_FILE, json.dumps(record, indent=2))
            _publish(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already once renamed onto DEST
    state = status.get("state")
    if verbose and state is not None and state != "complete":
        print(
            f"note: {run} is {state} at {status.get('steps_done', '?')} optimizer steps: exported the "
            f"weights of that point; train further in {run} ({dest} has no optimizer state or checkpoints)"
        )
    return dest


def _check_arguments(run: Path, dest: Path, overwrite: bool) -> None:
    """Every refusal of `export_run`, before anything is written."""
    if not (run / runs.CONFIG_FILE).is_file():
        raise RunDirError(
            f"RUN {run} is not a tfp_vae run directory (no {runs.CONFIG_FILE}); give the "
            "folder `tfp-vae train --out` wrote."
        )
    if not (run / runs.WEIGHTS_FILE).is_file():
        raise RunDirError(
            f"RUN {run} has no {runs.WEIGHTS_FILE}: it never saved its weights; train it "
            "(at least one epoch or --max-steps) before exporting it."
        )
    where, source = dest.resolve(), run.resolve()
    if where == source or source in where.parents:
        raise RunDirError(
            f"DEST {dest} is RUN {run} or inside it; export to a new folder: in place "
            "would lose the resume state (checkpoints/, the optimizer's moments)."
        )
    if where in source.parents:
        raise RunDirError(
            f"DEST {dest} holds RUN {run}; export to a new folder beside it (replacing "
            "DEST would delete RUN)."
        )
    if dest.exists() and not dest.is_dir():
        raise RunDirError(f"DEST {dest} is a file; give a folder to export into.")
    if dest.is_dir() and any(dest.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"DEST {dest} exists and is not empty; export to a new folder, or pass "
                "--overwrite (overwrite=True) to replace it."
            )
        if (dest / CHECKPOINTS).is_dir():
            raise RunDirError(
                f"DEST {dest} holds a training's {CHECKPOINTS}/ (its resume state), so "
                "--overwrite does not replace it; export to another folder, or delete it yourself."
            )


def check_same_variables(source, exported, run: Path, dest: Path) -> None:
    """Raises `RunDirError` naming the first variable of `exported` that is not `source`'s bit
    for bit (dtype, shape and bytes), or when the two hold different numbers of variables."""
    a, b = source.variables, exported.variables
    if len(a) != len(b):
        raise RunDirError(
            f"the exported weights hold {len(b)} variables, {run}'s model {len(a)}; "
            f"nothing was written to {dest}."
        )
    for name, x, y in zip(variable_names(source), a, b):
        x, y = np.asarray(x.numpy()), np.asarray(y.numpy())
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            raise RunDirError(
                f"variable {name} of the exported weights differs from {run}'s "
                f"({y.dtype}{list(y.shape)} against {x.dtype}{list(x.shape)}); nothing was written "
                f"to {dest}. Check the disk and rerun."
            )


def variable_names(model) -> list[str]:
    """'<layer or metric>/<variable name>' of each of `model.variables` ('encoder/dense_0/kernel:0',
    'metrics/loss/total:0'): tf_keras names are unique only within a layer."""
    owner = {id(v): layer.name for layer in model.layers for v in layer.weights}
    owner.update({id(v): f"metrics/{m.name}" for m in model.metrics for v in m.variables})
    return [f"{owner[id(v)]}/{v.name}" if id(v) in owner else v.name for v in model.variables]


def _publish(tmp: Path, dest: Path) -> None:
    """Renames the finished folder `tmp` onto DEST (an earlier DEST moved aside first, then
    deleted), then makes the renames durable."""
    old = None
    if dest.is_dir() and any(dest.iterdir()):
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-replaced-{dest.name}-"))
        os.replace(dest, old / dest.name)
    os.replace(tmp, dest)  # onto a missing or empty folder: one rename
    runs.fsync_dir(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):  # no status.json (a run saved by `save`, not trained)
        return {}
    return value if isinstance(value, dict) else {}
