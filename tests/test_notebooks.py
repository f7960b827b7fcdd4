"""The notebooks execute end to end on real Fashion-MNIST in fast mode (TFP_VAE_FAST=1), each
is committed either clean or executed in full mode with its outputs, and every figure cell shows
a picture."""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_BYTES = 5_000_000  # an executed notebook stays small: figures at a modest dpi


def test_the_notebooks_are_there_and_committed_clean_or_executed_in_full_mode():
    """Each notebook is committed either without outputs (not executed) or executed in full mode
    end to end: every code cell run once in order, no error, the first cell printing a line
    `mode: full ...` (fast mode prints `mode: fast`), under MAX_BYTES."""
    assert [p.name for p in NOTEBOOKS] == [
        "01_fashion_mnist_quickstart.ipynb",
        "02_likelihood_families.ipynb",
        "03_beta_vae_study.ipynb",
        "04_dsprites_disentanglement.ipynb",
        "05_published_density_models.ipynb",
    ]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        source = "\n".join(c.source for c in code)
        assert "TFP_VAE_FAST" in source
        assert "def " not in source and "class " not in source, f"{path.name} defines library code"
        if all(not c.outputs and c.execution_count is None for c in code):
            continue  # committed clean
        counts = [c.execution_count for c in code]
        assert counts == list(range(1, len(code) + 1)), f"{path.name}: not one run in order: {counts}"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name} was committed with an error: {errors[0].get('ename')}"
        printed = "".join(o.get("text", "") for o in code[0].outputs if o.get("name") == "stdout")
        assert re.search(r"^mode: full\b", printed, re.MULTILINE), f"{path.name} is not executed in full mode"
        assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_fast_mode(path, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TFP_VAE_FAST", "1")
    monkeypatch.setenv("TFP_VAE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=resources).execute()
    # Every cell whose last line draws a figure displays it as a PNG.
    figure_cells = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and any(
            c.source.strip().splitlines()[-1].startswith(prefix)
            for prefix in (
                "plots.",
                "tfp_vae.rate_distortion",
                "tfp_vae.active_units",
                "tfp_vae.traversals",
                "tfp_vae.compare_",
                "tfp_vae.disentanglement_vs_beta",
                "tfp_vae.factor_traversals",
                "tfp_vae.principal_traversals",
                "tfp_vae.study_vs_beta",
                "tfp_vae.kl_per_dim_by_beta",
            )
        )
    ]
    assert figure_cells
    for cell in figure_cells:
        assert any("image/png" in out.get("data", {}) for out in cell.outputs), cell.source
