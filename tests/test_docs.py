"""The newcomer's path: the README's commands and Python quickstart run as written, the
documentation site builds with warnings as errors, and the install, ignore and licence files say
what the README says.

The site build takes a few seconds (`mkdocs build --strict`, which CI also runs), so it is a test
too: `pytest` alone tells a contributor that a docstring or a link broke the documentation.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO
from tfp_vae.cli import build_parser

README = (REPO / "README.md").read_text()
# The test suite's budget for the README's Python quickstart, as the README itself says.
SHORTER = ("epochs=5)", "epochs=1, train_examples=5000)")


def _block(heading: str, language: str) -> str:
    """The first ```language block after the README heading `heading`."""
    found = re.search(rf"^## {re.escape(heading)}\n.*?^```{language}\n(.*?)^```", README, re.S | re.M)
    assert found, f"README.md has no ```{language} block under '## {heading}'"
    return found.group(1)


def test_documentation_site_builds_with_warnings_as_errors(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "training" / "index.html").read_text()
    assert "tfp_vae.training.trainer.train" in api  # generated from the docstrings
    assert 'class="gp">&gt;&gt;&gt; </span>' in api  # docstring examples shown as code


def test_readme_python_quickstart_runs_as_written(tmp_path, data_dir):
    code = _block("Python quickstart", "python")
    assert code.count(SHORTER[0]) == 1 and "`epochs=1, train_examples=5000` in place of `epochs=5`" in README
    done = subprocess.run(
        [sys.executable, "-c", code.replace(*SHORTER)],
        cwd=tmp_path,  # a fresh folder, as a newcomer's clone: runs/ is made there
        env={**os.environ, "PYTHONPATH": str(REPO), "TFP_VAE_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "_TensorCoercible" not in out
    assert (
        'tfp.distributions.MultivariateNormalTriL("MultivariateNormalTriL", batch_shape=[3], event_shape=[2]'
        in out
    )
    assert '"IndependentBernoulli", batch_shape=[3], event_shape=[28, 28, 1]' in out
    elbo, iwae = map(
        float, re.search(r"test ELBO (-[\d.]+), log p\(x\) >= (-[\d.]+) \(IWAE, K = 100\)", out).groups()
    )
    assert -350 < elbo < iwae < -200  # one epoch on binarized Fashion-MNIST, nats per image
    assert (tmp_path / "runs" / "quickstart" / "manifold.png").stat().st_size > 10_000


def test_readme_quickstart_commands_are_the_command_lines_own():
    commands = [line.split("#")[0].strip() for line in _block("Quickstart", "bash").splitlines()]
    tfp = [shlex.split(c)[1:] for c in commands if c.startswith("tfp-vae ")]
    assert [args[0] for args in tfp] == ["train", "evaluate", "plot"]
    for args in tfp:
        build_parser().parse_args(args)  # exits (SystemExit) on a flag the command line lacks


def test_install_lines_ignore_file_and_licence():
    assert "pip install -e .  " in README and 'pip install -e ".[dev]"' in README
    first_screen = README.splitlines()[:40]
    assert any("docs/images/latent_space.png" in line for line in first_screen)
    assert "## Quickstart" in first_screen
    for image in re.findall(r'src="(docs/images/[^"]+\.png)"', README):
        assert 1_000 < (REPO / image).stat().st_size < 150_000, (
            image
        )  # small PNGs, made by docs/make_pictures.py
    assert ".venv/" in (REPO / ".gitignore").read_text().splitlines()
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License\n\nCopyright (c) 2026 the tfp_vae authors\n")
    assert 'license = { text = "MIT" }' in (REPO / "pyproject.toml").read_text()
    dev = re.search(r"^dev = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.S | re.M).group(1)
    assert all(
        f'"{package}' in dev for package in ("mkdocs>=", "mkdocs-material>=", "mkdocstrings[python]>=")
    )


@pytest.mark.parametrize("page", sorted(p.name for p in (REPO / "docs").glob("*.md")))
def test_every_page_is_in_the_site_navigation(page):
    assert f" {page}" in (REPO / "mkdocs.yml").read_text()
