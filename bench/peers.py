"""One benchmark job per fresh process (run by `benchmark.py --peers`): the toolkit's conv reference
model, the density MLP and the VampPrior through `fit`, and the code a user would write instead:
a hand-written TensorFlow step (XLA and plain graph) and PyTorch (eager, `torch.compile`,
channels-last, bfloat16 autocast).

    python bench/peers.py --job torch_conv_compile --steps 64 --epochs 2   # prints one JSON line

The models, identical in every framework (multiply-adds checked against the toolkit's):
  conv  disentanglement_lib's model (`experiments/dsprites_beta_vae.json`): 64x64x1, conv 32-32-64-64
        (4x4, stride 2, ReLU) -> dense 256 -> full-covariance q(z|x), z = 10; decoder dense 256 ->
        1024 -> 4x4x64 -> transposed convs 64-32-32-1; Bernoulli; Adam 1e-4; batch 64; random
        binary images (the step's cost does not depend on them).
  mlp   the density MLP: ReLU 300-300, z = 40, full-covariance q(z|x), Bernoulli, dynamic
        binarization, Adam 5e-4, batch 100, the first 50,000 Fashion-MNIST training images.
  vamp  `experiments/fashion_mnist_vampprior.json` (K = 500) and the same config with N(0, I), through
        `fit` only (the VampPrior-vs-standard step ratio).
Each job runs one warm-up epoch (tracing, compiling), then `--epochs` timed epochs: ms per step is
the median timed epoch's seconds / steps; compile seconds = warm-up epoch - median epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmark.py beside this file

import numpy as np  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CONV_BATCH, MLP_BATCH, MLP_IMAGES = 64, 100, 50_000


# ---------------------------------------------------------------------------- data
def conv_images(steps: int) -> np.ndarray:
    """Random binary images [steps * 64, 64, 64, 1] (float32)."""
    return (np.random.default_rng(0).random([steps * CONV_BATCH, 64, 64, 1]) < 0.5).astype(np.float32)


def mlp_images(steps: int) -> np.ndarray:
    """Grey Fashion-MNIST training images [min(steps * 100, 50,000), 28, 28, 1] in [0, 1]."""
    import tfp_vae  # noqa: PLC0415  (TensorFlow loads only in the TF jobs' processes... and here)

    (x, _), _ = tfp_vae.load_fashion_mnist("bernoulli")
    return x[: min(MLP_IMAGES, steps * MLP_BATCH)]


def timed_epochs(epoch: Callable[[], float], epochs: int, steps: int) -> dict:
    """Runs one warm-up epoch, then `epochs` timed ones; returns ms per step and compile seconds."""
    first = epoch()
    seconds = [epoch() for _ in range(epochs)]
    median = statistics.median(seconds)
    return {"ms_per_step": 1000 * median / steps, "compile_seconds": first - median, "epochs": seconds}


# ---------------------------------------------------------------------------- the toolkit
def toolkit_config(model: str):
    import tfp_vae  # noqa: PLC0415  (imported in the job's own process only)

    if model == "conv":
        return tfp_vae.VAEConfig.from_json((EXPERIMENTS / "dsprites_beta_vae.json").read_text())
    if model == "mlp":
        return tfp_vae.VAEConfig(
            hidden_units=(300, 300), latent_dim=40, binarize="dynamic", learning_rate=5e-4, batch_size=100
        )
    return tfp_vae.VAEConfig.from_json((EXPERIMENTS / model).read_text()).replace(init_from="")


def toolkit_job(model: str, steps: int, epochs: int, **changes) -> dict:
    """`build_vae(config)`, `compile(Adam(lr))`, `fit(x, batch_size)`: how a user trains it."""
    import tf_keras  # noqa: PLC0415
    from benchmark import fit_epoch  # noqa: PLC0415

    import tfp_vae  # noqa: PLC0415

    config = toolkit_config(model).replace(**changes)
    x = conv_images(steps) if model == "conv" else mlp_images(steps)
    vae = tfp_vae.build_vae(config)
    vae.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate))
    run = fit_epoch(vae, x, config.batch_size)
    steps = -(-len(x) // config.batch_size)
    return timed_epochs(lambda: run()[0], epochs, steps) | {"forward_macs": toolkit_macs(vae)}


def toolkit_macs(vae) -> int:
    """Multiply-adds of one image's forward pass through every Dense/Conv/ConvTranspose layer."""
    import tf_keras  # noqa: PLC0415

    total = 0
    for half in (vae.encoder, vae.decoder):
        for layer in half.submodules:
            if isinstance(layer, tf_keras.layers.Conv2DTranspose):
                total += int(np.prod(layer.kernel.shape)) * int(np.prod(layer.input_shape[1:3]))
            elif isinstance(layer, tf_keras.layers.Conv2D):
                total += int(np.prod(layer.kernel.shape)) * int(np.prod(layer.output_shape[1:3]))
            elif isinstance(layer, tf_keras.layers.Dense):
                total += int(np.prod(layer.kernel.shape))
    return total


# ---------------------------------------------------------------------------- hand-written TF
def tf_conv_job(steps: int, epochs: int, xla: bool) -> dict:
    """The conv model as a plain TF program: Keras layers (no Model), one `tf.function` step
    (GradientTape, loss mean_B[-log p(x|z) + KL(q || N(0, I))], Adam), XLA or a plain graph."""
    import tensorflow as tf  # noqa: PLC0415
    import tensorflow_probability as tfp  # noqa: PLC0415
    import tf_keras  # noqa: PLC0415

    layers = tf_keras.layers
    tf_keras.utils.set_random_seed(0)
    d = 10
    encoder = tf_keras.Sequential(
        [layers.InputLayer(input_shape=(64, 64, 1))]
        + [layers.Conv2D(f, 4, 2, "same", activation="relu") for f in (32, 32, 64, 64)]
        + [layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(d + d * (d + 1) // 2)]
    )
    decoder = tf_keras.Sequential(
        [layers.InputLayer(input_shape=(d,)), layers.Dense(256, activation="relu")]
        + [layers.Dense(1024, activation="relu"), layers.Reshape((4, 4, 64))]
        + [layers.Conv2DTranspose(f, 4, 2, "same", activation="relu") for f in (64, 32, 32)]
        + [layers.Conv2DTranspose(1, 4, 2, "same")]
    )
    weights = encoder.trainable_variables + decoder.trainable_variables
    optimizer = tf_keras.optimizers.Adam(1e-4)
    optimizer.build(weights)
    rng = tf.random.Generator.from_seed(0)

    def step(x):
        with tf.GradientTape() as tape:
            params = encoder(x)
            mu, tril = params[:, :d], tfp.math.fill_triangular(params[:, d:])
            diagonal = tf.nn.softplus(tf.linalg.diag_part(tril)) + 1e-5
            scale = tf.linalg.set_diag(tril, diagonal)
            z = mu + tf.linalg.matvec(scale, rng.normal(tf.shape(mu)))
            logits = decoder(z)
            nll = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), [1, 2, 3])
            kl = 0.5 * (
                tf.reduce_sum(tf.square(scale), [-2, -1])
                + tf.reduce_sum(tf.square(mu), -1)
                - d
                - 2.0 * tf.reduce_sum(tf.math.log(diagonal), -1)
            )
            loss = tf.reduce_mean(nll + kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    compiled = tf.function(step, jit_compile=xla)
    batches = [tf.constant(b) for b in conv_images(steps).reshape(steps, CONV_BATCH, 64, 64, 1)]

    def epoch():
        start = time.perf_counter()
        losses = [compiled(b) for b in batches]
        float(losses[-1])
        return time.perf_counter() - start

    return timed_epochs(epoch, epochs, steps)


# ---------------------------------------------------------------------------- PyTorch
def torch_models(model: str):
    """(encoder, decoder, latent_dim, flat input?) of `model` in PyTorch, as the TF ones."""
    import torch  # noqa: PLC0415  (the optional `bench` extra)
    from torch import nn  # noqa: PLC0415

    torch.manual_seed(0)
    if model == "conv":
        d = 10
        encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, d + d * (d + 1) // 2),
        )  # fmt: skip
        decoder = nn.Sequential(
            nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(), nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1),
        )  # fmt: skip
        return encoder, decoder, d
    d = 40
    encoder = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 300), nn.ReLU(),
        nn.Linear(300, d + d * (d + 1) // 2),
    )  # fmt: skip
    decoder = nn.Sequential(nn.Linear(d, 300), nn.ReLU(), nn.Linear(300, 300), nn.ReLU(), nn.Linear(300, 784))
    return encoder, decoder, d


def torch_job(model: str, steps: int, epochs: int, compiled: bool, bf16: bool = False) -> dict:
    """The PyTorch step a user would write: full-covariance q(z|x) (the same parameters' layout),
    loss mean_B[-log p(x|z) + KL], Adam; conv models channels-last; bf16: autocast on the CPU."""
    import torch  # noqa: PLC0415  (the optional `bench` extra)
    import torch.nn.functional as F  # noqa: N812, PLC0415

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    encoder, decoder, d = torch_models(model)
    conv = model == "conv"
    if conv:
        encoder, decoder = (m.to(memory_format=torch.channels_last) for m in (encoder, decoder))
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-4 if conv else 5e-4)
    rows, cols = torch.tril_indices(d, d)

    def negative_elbo(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            params = encoder(x)
        params = params.float()
        mu = params[:, :d]
        tril = params.new_zeros(len(x), d, d)
        tril[:, rows, cols] = params[:, d:]  # row-major, not tfp's fill_triangular order: same cost
        diagonal = F.softplus(torch.diagonal(tril, dim1=-2, dim2=-1)) + 1e-5
        scale = torch.tril(tril, -1) + torch.diag_embed(diagonal)
        z = mu + (scale @ torch.randn(len(x), d, 1)).squeeze(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = decoder(z)
        target = x if conv else x.flatten(1)
        nll = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (scale.square().sum((-2, -1)) + mu.square().sum(-1) - d - 2 * diagonal.log().sum(-1))
        return (nll + kl).mean()

    def step(x):
        optimizer.zero_grad(set_to_none=True)
        loss = negative_elbo(x)
        loss.backward()
        optimizer.step()
        return loss.detach()

    if compiled:
        negative_elbo = torch.compile(negative_elbo)
    if conv:
        batches = [
            torch.from_numpy(b).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            for b in conv_images(steps).reshape(steps, CONV_BATCH, 64, 64, 1)
        ]
        draw = lambda b: b  # noqa: E731  (binary already)
    else:
        grey = torch.from_numpy(mlp_images(steps)).permute(0, 3, 1, 2).contiguous()
        batches = list(grey.split(MLP_BATCH))
        draw = torch.bernoulli  # dynamic binarization, fresh every epoch
    steps = len(batches)

    def epoch():
        start = time.perf_counter()
        order = torch.randperm(steps)
        for i in order.tolist():
            loss = step(draw(batches[i]))
        float(loss)
        return time.perf_counter() - start

    return timed_epochs(epoch, epochs, steps)


# ---------------------------------------------------------------------------- the jobs
JOBS: dict[str, Callable[..., dict]] = {
    "toolkit_conv": lambda steps, epochs: toolkit_job("conv", steps, epochs),
    "toolkit_conv_bf16": lambda steps, epochs: toolkit_job("conv", steps, epochs, precision="mixed_bfloat16"),
    "tf_conv_xla": lambda steps, epochs: tf_conv_job(steps, epochs, xla=True),
    "tf_conv_graph": lambda steps, epochs: tf_conv_job(steps, epochs, xla=False),
    "torch_conv_eager": lambda steps, epochs: torch_job("conv", steps, epochs, compiled=False),
    "torch_conv_compile": lambda steps, epochs: torch_job("conv", steps, epochs, compiled=True),
    "torch_conv_bf16": lambda steps, epochs: torch_job("conv", steps, epochs, compiled=False, bf16=True),
    "toolkit_mlp": lambda steps, epochs: toolkit_job("mlp", steps, epochs),
    "torch_mlp_eager": lambda steps, epochs: torch_job("mlp", steps, epochs, compiled=False),
    "torch_mlp_compile": lambda steps, epochs: torch_job("mlp", steps, epochs, compiled=True),
    "toolkit_standard": lambda steps, epochs: toolkit_job("fashion_mnist_density.json", steps, epochs),
    "toolkit_vamp": lambda steps, epochs: toolkit_job("fashion_mnist_vampprior.json", steps, epochs),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", choices=sorted(JOBS), required=True)
    parser.add_argument("--steps", type=int, default=64, help="steps per epoch (MLP jobs: at most 500)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up one")
    args = parser.parse_args(argv)
    result = JOBS[args.job](args.steps, args.epochs)
    print(json.dumps({"job": args.job, **result, "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
