"""Encoders: a body (registry `tfp_vae.choices.ENCODERS`, by `VAEConfig.encoder`), then the posterior head.

Every encoder maps images [B, H, W, C] to q(z|x), a batch [B] of Gaussians
(`tfp.layers.MultivariateNormalTriL`; full covariance, or diagonal with `VAEConfig.posterior`),
and carries exactly one loss, beta * mean_B KL(q || p).

>>> from tfp_vae.config import VAEConfig
>>> from tfp_vae.model.posterior import standard_normal_prior
>>> import numpy as np
>>> cfg = VAEConfig(latent_dim=2)
>>> enc = build_encoder(cfg, standard_normal_prior(2))
>>> q = enc(np.zeros([5, 28, 28, 1], np.float32))
>>> q.batch_shape.as_list(), q.event_shape.as_list(), len(enc.losses)
([5], [2], 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tf_keras
from tensorflow_probability import distributions as tfd

from tfp_vae.choices import ENCODERS, SCHEDULES
from tfp_vae.config import VAEConfig
from tfp_vae.model.hidden import hidden_layer
from tfp_vae.model.posterior import KLDivergence, PosteriorTriL, posterior_distribution, posterior_head
from tfp_vae.model.precision import body_precision, to_float32

layers = tf_keras.layers


def mlp_body(cfg) -> list:
    """[B, H, W, C] -> flatten -> Dense(u) for u in cfg.hidden_units -> [B, hidden_units[-1]], each
    hidden layer relu or gated (`cfg.hidden_activation`)."""
    return [layers.Flatten(name="flatten")] + [
        hidden_layer(cfg.hidden_activation, layers.Dense, units, name=f"dense_{i}")
        for i, units in enumerate(cfg.hidden_units)
    ]


def conv_filters(cfg) -> list[int]:
    """Filters of each stride-2 conv layer: `conv_filters` per layer, or an int doubling per layer."""
    if isinstance(cfg.conv_filters, tuple):
        return list(cfg.conv_filters)
    return [cfg.conv_filters * 2**i for i in range(cfg.conv_layers)]


def conv_kernels(cfg) -> list[int]:
    """Kernel size of each stride-2 conv layer: `conv_kernel` per layer, or the same for all."""
    kernel = cfg.conv_kernel
    return list(kernel) if isinstance(kernel, tuple) else [kernel] * cfg.conv_layers


def conv_dense(cfg) -> list[int]:
    """Widths of the dense layers between the conv stack and the posterior (encoder order)."""
    return list(cfg.conv_dense) if isinstance(cfg.conv_dense, tuple) else [cfg.conv_dense]


def dense_name(i: int, count: int) -> str:
    # One dense layer keeps the name it always had, so existing weights files load.
    return "dense" if count == 1 else f"dense_{i}"


def conv_spatial(cfg) -> tuple[int, int]:
    """Spatial size (h, w) after the stride-2 'same' convs: ceil(H / 2^L), ceil(W / 2^L)."""
    height, width, _ = cfg.input_shape
    scale = 2**cfg.conv_layers
    return math.ceil(height / scale), math.ceil(width / scale)


def conv_body(cfg) -> list:
    """[B, H, W, C] -> L stride-2 'same' Conv2D (`conv_filters`, `conv_kernels`) -> flatten ->
    Dense(u) for u in `conv_dense`, the hidden layers relu or gated (`cfg.hidden_activation`).

    disentanglement_lib's encoder at 64 x 64 x 1: filters (32, 32, 64, 64), kernel 4, dense (256,):
    [B, 64, 64, 1] -> 32x32x32 -> 16x16x32 -> 8x8x64 -> 4x4x64 -> [B, 1024] -> [B, 256].
    """
    hidden = cfg.hidden_activation
    convs = [
        hidden_layer(hidden, layers.Conv2D, f, k, strides=2, padding="same", name=f"conv_{i}")
        for i, (f, k) in enumerate(zip(conv_filters(cfg), conv_kernels(cfg)))
    ]
    widths = conv_dense(cfg)
    return (
        convs
        + [layers.Flatten(name="flatten")]
        + [
            hidden_layer(hidden, layers.Dense, units, name=dense_name(i, len(widths)))
            for i, units in enumerate(widths)
        ]
    )


def linear_body(cfg) -> list:
    """[B, H, W, C] -> flatten: the posterior's parameters are then an affine function of x, which
    is exact for a linear-Gaussian decoder (probabilistic PCA)."""
    return [layers.Flatten(name="flatten")]


for _name, _body in (("mlp", mlp_body), ("conv", conv_body), ("linear", linear_body)):
    ENCODERS.register(_name, _body)


def build_encoder(
    cfg: VAEConfig, prior: tfd.Distribution | Callable[[], tfd.Distribution]
) -> tf_keras.Sequential:
    """images [B, *cfg.input_shape] -> q(z|x) with event [cfg.latent_dim]; KL as `cfg.kl_style`.

    prior: p(z), a distribution, or a function returning the current one (a learned prior).

    The encoder's `divergence` attribute is its `KLDivergence`, whose beta (and capacity, for the
    'capacity' schedule) the train step sets from its step count (`VAE.follow_kl_schedule`).
    """
    capacity = cfg.capacity_max if SCHEDULES[cfg.kl_schedule].capacity else None
    divergence = KLDivergence(
        prior, beta=cfg.beta, mode=cfg.kl, num_samples=cfg.kl_samples, capacity=capacity
    )
    with body_precision(cfg):  # the body computes in cfg.precision, the posterior in float32
        body = ENCODERS[cfg.encoder](cfg)
    encoder = tf_keras.Sequential(
        [layers.InputLayer(input_shape=cfg.input_shape)]
        + body
        + to_float32(cfg)
        + posterior_head(cfg.latent_dim, divergence, cfg.kl_style, cfg.posterior),
        name="encoder",
    )
    encoder.divergence = divergence
    return encoder


def posterior_without_kl(encoder, x, latent_dim: int) -> tfd.MultivariateNormalTriL:
    """q(z|x) for images x [B, H, W, C] through `encoder`'s own layers, but adding no KL loss.

    Runs the body and the posterior's parameters, then builds the distribution with
    `posterior_distribution` instead of the posterior layer, whose activity regularizer (or the
    `KLAddLoss` after it) would add a KL. This is how the VampPrior encodes its pseudo-inputs.
    """
    h = x
    for layer in encoder.layers:
        if isinstance(layer, PosteriorTriL):
            return posterior_distribution(h, latent_dim)
        h = layer(h)
    raise ValueError(f"{encoder.name} has no PosteriorTriL layer; build it with build_encoder.")
