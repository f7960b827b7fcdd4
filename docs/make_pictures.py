"""Remakes the README's pictures (docs/images/*.png) from a real run of the quickstart's model.

    python docs/make_pictures.py              # trains runs/default (as `tfp-vae train --out runs/default`)
    python docs/make_pictures.py --run RUN    # or draws from a run trained already (no-op training)

The run is the command line's default model: MLP 256-64, z = 2, a Bernoulli on dynamically
binarized Fashion-MNIST, 5 epochs (half a minute to a minute on 2 cores). The pictures are the
test images' codes before and after training, the decoder over the 2-D latent grid, and samples
from the prior, at a modest dpi so each PNG stays small.
"""

from __future__ import annotations

import argparse
import functools
import io
from pathlib import Path

import numpy as np

import tfp_vae
from tfp_vae.cli import CLI_BINARIZE
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.plots.model import latent_before_after, latent_manifold, prior_samples
from tfp_vae.runs import files as runs
from tfp_vae.training.trainer import load_data_for

IMAGES = Path(__file__).resolve().parent / "images"
DPI = 55


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/default", help="run directory (trained if not finished)")
    parser.add_argument("--out", default=str(IMAGES), help="folder for the PNGs (default: docs/images)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: $TFP_VAE_DATA_DIR)")
    args = parser.parse_args(argv)

    config = tfp_vae.VAEConfig(binarize=CLI_BINARIZE["bernoulli"])  # what `tfp-vae train` trains
    model, _ = tfp_vae.train(config, out_dir=args.run, data_dir=args.data_dir, verbose=0)
    _, (x_test, y_test) = load_data_for(config, args.data_dir, run_dir=args.run)
    before = runs.load_latents(args.run)
    index = before["index"]
    after = posterior_means(model, x_test[index])

    figures = {
        "latent_space": latent_before_after(before["codes"], after, y_test[index]),
        "latent_manifold": latent_manifold(model, n=12),
        "prior_samples": prior_samples(model, n=24, ncols=8),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        what = fig.get_suptitle() or name.replace("_", " ")
        fig.suptitle(f"{args.run} (z = 2, {config.epochs} epochs): {what}")
        path = out / f"{name}.png"
        runs.atomic_write(path, functools.partial(_small_png, fig))
        print(f"{path}: {path.stat().st_size // 1024} kB")
    print(f"codes of {len(index)} test images; mean |z| after training {np.abs(after).mean():.2f}")


def _small_png(fig, path) -> None:
    # A palette of 64 colours (grey levels and the ten class colours) keeps each PNG near 40 kB.
    from PIL import Image  # Pillow: a dependency of the toolkit, used only here

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    Image.open(buffer).convert("RGB").quantize(colors=64).save(path, format="png", optimize=True)


if __name__ == "__main__":
    main()
