"""Hidden layers of the encoder and decoder bodies: registry `HIDDEN_ACTIVATIONS`, keyed by
`VAEConfig.hidden_activation`.

Each entry maps (layer class, its arguments) to one hidden layer:
  relu   the layer with activation="relu" (the bodies' original architecture and weights);
  gated  `Gated`: h = (W x + b) * sigmoid(V x + c), two linear copies of the layer, the gated
         units of the published VAE density models (Dauphin et al. 2017; Tomczak & Welling 2018).

>>> import numpy as np
>>> layer = hidden_layer("gated", tf_keras.layers.Dense, 3, name="h")
>>> layer(np.zeros([2, 5], np.float32)).shape.as_list(), len(layer.weights)
([2, 3], 4)
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras

from tfp_vae.choices import HIDDEN_ACTIVATIONS


class Gated(tf_keras.layers.Layer):
    """(W x + b) * sigmoid(V x + c): `linear` and `gate` are `layer_class(*args, **kwargs)` with no
    activation (Dense, Conv2D, Conv2DTranspose, ...), so the output has their shape."""

    def __init__(self, layer_class: type, *args: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name)
        self.linear = layer_class(*args, name="linear", **kwargs)
        self.gate = layer_class(*args, name="gate", **kwargs)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.linear(x) * tf.sigmoid(self.gate(x))


def _relu(layer_class, *args, **kwargs):
    return layer_class(*args, activation="relu", **kwargs)


HIDDEN_ACTIVATIONS.register("relu", _relu)
HIDDEN_ACTIVATIONS.register("gated", Gated)


def hidden_layer(activation: str, layer_class, *args, **kwargs) -> tf_keras.layers.Layer:
    """One hidden layer `layer_class(*args, **kwargs)` with the nonlinearity `activation`."""
    return HIDDEN_ACTIVATIONS[activation](layer_class, *args, **kwargs)
