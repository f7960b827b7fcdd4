"""Decoders: z [B, latent_dim] -> p(x|z), a distribution over whole images [B, H, W, C].

The body (registry `DECODERS`, same keys as `ENCODERS`) mirrors the encoder and emits the raw
parameters the likelihood family needs (`family.params_size`); the family's layer turns them into
a `tfd.Distribution`.

>>> from tfp_vae.config import VAEConfig
>>> import numpy as np
>>> dec = build_decoder(VAEConfig(latent_dim=2, likelihood="beta"))
>>> p = dec(np.zeros([4, 2], np.float32))
>>> p.batch_shape.as_list(), p.event_shape.as_list()
([4], [28, 28, 1])
"""

from __future__ import annotations

import tf_keras

from tfp_vae.choices import LIKELIHOODS
from tfp_vae.config import VAEConfig
from tfp_vae.model.encoders import conv_dense, conv_filters, conv_kernels, conv_spatial, dense_name
from tfp_vae.model.hidden import hidden_layer
from tfp_vae.model.precision import body_precision, to_float32
from tfp_vae.registry import Registry

layers = tf_keras.layers


def mlp_body(cfg, params_size: int) -> list:
    """z -> Dense(u) for u in reversed(hidden_units) -> Dense(params_size), the hidden layers relu or
    gated (`cfg.hidden_activation`)."""
    return [
        hidden_layer(cfg.hidden_activation, layers.Dense, units, name=f"dense_{i}")
        for i, units in enumerate(reversed(cfg.hidden_units))
    ] + [layers.Dense(params_size, name="likelihood_params")]


def conv_body(cfg, params_size: int) -> list:
    """z -> Dense(u) for u in reversed(conv_dense) -> Dense -> [h, w, f_last] -> L stride-2
    Conv2DTranspose -> crop to H x W -> params [B, H * W * C * k].

    h, w are the encoder's final spatial size, so for 28 x 28 and L = 3 the map grows
    4 -> 8 -> 16 -> 32 and is cropped to 28. `cfg.conv_decoder` picks the transposed convs' filters:
      mirror     f_(L-1), ..., f_0 (the encoder's filters at each resolution), then a stride-1 conv
                 (kernel of the first encoder layer) to the parameters;
      transpose  f_(L-2), ..., f_0, then the parameters: each transposed conv undoes one encoder
                 conv (disentanglement_lib's decoder: dense 256 -> 1024 -> 4x4x64 -> 64-32-32-1).
    The hidden layers (all but the parameters' layer) are relu or gated (`cfg.hidden_activation`).
    """
    hidden = cfg.hidden_activation
    height, width, channels = cfg.input_shape
    h, w = conv_spatial(cfg)
    filters, kernels = conv_filters(cfg), conv_kernels(cfg)
    grown_h, grown_w = h * 2**cfg.conv_layers, w * 2**cfg.conv_layers
    crop_h, crop_w = grown_h - height, grown_w - width
    # [B, H, W, C * k]: the family's k parameters of each channel sit side by side.
    per_pixel = params_size // (height * width * channels)
    widths = conv_dense(cfg)
    transpose = cfg.conv_decoder == "transpose"
    # (filters, kernel) of each transposed conv, deepest first.
    deconvs = list(zip(reversed(filters[:-1] if transpose else filters), reversed(kernels)))
    crop = layers.Cropping2D(
        ((crop_h // 2, crop_h - crop_h // 2), (crop_w // 2, crop_w - crop_w // 2)), name="crop"
    )
    last_conv = (  # the parameters' layer
        layers.Conv2DTranspose(
            channels * per_pixel, kernels[0], strides=2, padding="same", name="likelihood_params"
        )
        if transpose
        else layers.Conv2D(channels * per_pixel, kernels[0], padding="same", name="likelihood_params")
    )
    return (
        [
            hidden_layer(hidden, layers.Dense, units, name=dense_name(i, len(widths)))
            for i, units in enumerate(reversed(widths))
        ]
        + [
            hidden_layer(hidden, layers.Dense, h * w * filters[-1], name="dense_to_map"),
            layers.Reshape((h, w, filters[-1]), name="to_map"),
        ]
        + [
            hidden_layer(hidden, layers.Conv2DTranspose, f, k, strides=2, padding="same", name=f"deconv_{i}")
            for i, (f, k) in enumerate(deconvs)
        ]
        + ([last_conv, crop] if transpose else [crop, last_conv])
        + [layers.Flatten(name="flatten")]
    )


def linear_body(cfg, params_size: int) -> list:
    """z -> one affine map to the raw parameters: p(x|z) = N(Wz + b, sigma^2 I) with 'normal_fixed'."""
    return [layers.Dense(params_size, name="likelihood_params")]


# The same names as ENCODERS: a body is chosen once (`VAEConfig.encoder`) for both halves.
DECODERS: Registry = Registry("encoder", "decoder body")
for _name, _body in (("mlp", mlp_body), ("conv", conv_body), ("linear", linear_body)):
    DECODERS.register(_name, _body)


def build_decoder(cfg: VAEConfig) -> tf_keras.Sequential:
    """z [B, cfg.latent_dim] -> p(x|z) of family `cfg.likelihood` over images `cfg.input_shape`."""
    family = LIKELIHOODS[cfg.likelihood]
    with body_precision(cfg):  # the body computes in cfg.precision, the likelihood in float32
        body = DECODERS[cfg.encoder](cfg, family.params_size(cfg.input_shape, **family.options(cfg)))
    return tf_keras.Sequential(
        [layers.InputLayer(input_shape=(cfg.latent_dim,))]
        + body
        + to_float32(cfg)
        + [family.layer(cfg.input_shape, **family.options(cfg))],
        name="decoder",
    )
