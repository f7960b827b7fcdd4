"""VampPrior speed: a training epoch of the published density setting with the VampPrior (K = 500
pseudo-inputs) against the same model with N(0, I), and against the VampPrior whose mixture is
TFP's own `tfd.MixtureSameFamily` (as the toolkit built it before `GaussianMixtureTriL`); on real
Fashion-MNIST, epochs alternating in one process so the ratios hold on a noisy machine.

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/vampprior.py            # ~2 min, 2 idle cores
    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/vampprior.py --images 50000 --epochs 3

standard      `experiments/fashion_mnist_density.json`: gated MLP 300-300, z = 40, exact KL.
vamp          `experiments/fashion_mnist_vampprior.json`: the same with the VampPrior, sampled
              KL with one draw (what every VampPrior experiment here trains).
vamp, graph   vamp with its training steps run as plain tf.function graphs (oneDNN's kernels)
              instead of XLA programs: no XLA compilation, every op launched on its own.
vamp, TFP's   vamp whose prior's `distribution()` is `tfd.MixtureSameFamily` of the same posteriors
mixture       written with precision factors L_k^-T (`MultivariateNormalPrecisionFactorLinearOperator`),
              the toolkit's previous VampPrior; with the posteriors' own scale_tril TFP broadcasts a
              triangular solve over all (draw, component) pairs, and a step took 1.7 s.
Seconds per epoch are medians of `--epochs` epochs after one warm-up epoch (which traces and
compiles; its extra seconds are the compile seconds). Prints a table and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmark.py beside this file

import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402
from benchmark import fit_epoch, train_epochs  # noqa: E402
from tensorflow_probability import distributions as tfd  # noqa: E402

import tfp_vae  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def built(experiment: str) -> tfp_vae.VAE:
    """The experiment's model from random weights, compiled as `tfp-vae train` compiles it."""
    config = tfp_vae.VAEConfig.from_json((EXPERIMENTS / experiment).read_text())
    model = tfp_vae.build_vae(config.replace(init_from=""))
    model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate))
    return model


def as_graphs(model: tfp_vae.VAE) -> tfp_vae.VAE:
    """`model` whose training steps are plain graphs whatever its body's `xla` fact says."""

    def compiled(name, xla=None):
        return tfp_vae.VAE._compiled(model, name, xla=False)

    object.__setattr__(model, "_compiled", compiled)  # an instance attribute Keras ignores
    return model


def with_tfp_mixture(model: tfp_vae.VAE) -> tfp_vae.VAE:
    """`model` whose VampPrior is TFP's `MixtureSameFamily` of the pseudo-inputs' posteriors, each
    given by its precision factor L_k^-T (the toolkit's previous VampPrior)."""
    layer = model.prior_layer

    def distribution():
        q = layer._encode(layer.pseudo_inputs())  # the posteriors q(z | u_k), batch [K]
        scale = q.scale.to_dense()
        inverse = tf.linalg.triangular_solve(scale, tf.eye(scale.shape[-1], batch_shape=tf.shape(scale)[:-2]))
        components = tfp.experimental.distributions.MultivariateNormalPrecisionFactorLinearOperator(
            loc=q.loc, precision_factor=tf.linalg.LinearOperatorLowerTriangular(inverse).adjoint()
        )
        return tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros(tf.shape(q.loc)[:-1])), components)

    object.__setattr__(layer, "distribution", distribution)  # an instance attribute Keras ignores
    return model


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up one")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    (x, _), _ = tfp_vae.load_fashion_mnist("bernoulli")
    x = x[: args.images]
    models = {
        "standard": built("fashion_mnist_density.json"),
        "vamp": built("fashion_mnist_vampprior.json"),
        "vamp, graph": as_graphs(built("fashion_mnist_vampprior.json")),
        "vamp, TFP's mixture": with_tfp_mixture(built("fashion_mnist_vampprior.json")),
    }
    timed = train_epochs(
        {name: fit_epoch(model, x, 100) for name, model in models.items()}, args.epochs, "batch 100"
    )
    steps = -(-len(x) // 100)
    print(f"\n{len(x)} images, batch 100, {steps} steps per epoch; load average {load_start} at the start")
    print(f"{'model':<22}{'s/epoch':>9}{'ms/step':>9}{'compile s':>11}{'x standard':>12}")
    for name, row in timed.items():
        ratio = row["seconds"] / timed["standard"]["seconds"]
        print(
            f"{name:<22}{row['seconds']:>9.2f}{1000 * row['seconds'] / steps:>9.1f}"
            f"{row['compile_seconds']:>11.1f}{ratio:>12.1f}"
        )
    print(f"load average at the end: {os.getloadavg()}")
    return timed


if __name__ == "__main__":
    main()
