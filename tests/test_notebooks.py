"""The notebooks execute end to end on real Fashion-MNIST in fast mode (TFP_VAE_FAST=1),
committed without outputs, and every figure cell shows a picture."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there_and_committed_clean():
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
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        source = "\n".join(c.source for c in code)
        assert "TFP_VAE_FAST" in source
        assert "def " not in source and "class " not in source, f"{path.name} defines library code"


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
            )
        )
    ]
    assert figure_cells
    for cell in figure_cells:
        assert any("image/png" in out.get("data", {}) for out in cell.outputs), cell.source
