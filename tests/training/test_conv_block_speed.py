"""A conv model's steps inside fit's default blocks cost about what single steps cost (issue 25).

With the block run as one XLA program, XLA's CPU backend emitted the filter-gradient convolution
inside the loop in a layout its Eigen kernel does not take, a naive loop: a 64-step block of the
disentanglement model ran >20x slower per step than single steps. Conv bodies now run their steps
as plain graphs (`ENCODERS` fact `xla=False`). A ratio, measured alternating, holds under load.
"""

import statistics
import time

import numpy as np
import tf_keras

import tfp_vae
from conftest import grey_images


def _epoch_seconds(model, x):
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=32, verbose=0, shuffle=False)
    return time.perf_counter() - start


def test_conv_block_per_step_time_is_bounded_by_single_steps():
    config = tfp_vae.VAEConfig(encoder="conv", input_shape=(32, 32, 1), conv_filters=4, conv_layers=3,
                               conv_kernel=4, conv_dense=16, latent_dim=4, seed=1)  # fmt: skip
    x = (grey_images(32 * 8, shape=(32, 32, 1), seed=2) > 0.5).astype(np.float32)  # 8 steps
    models = {}
    for steps in (8, 1):  # one block of 8 steps per epoch, against 8 single steps
        models[steps] = tfp_vae.build_vae(config)
        models[steps].compile(optimizer=tf_keras.optimizers.Adam(1e-3), steps_per_execution=steps)
        _epoch_seconds(models[steps], x)  # traces and compiles
    times = {8: [], 1: []}
    for _ in range(3):
        for steps, model in models.items():
            times[steps].append(_epoch_seconds(model, x))
    block, single = statistics.median(times[8]), statistics.median(times[1])
    assert block <= 2.0 * single, f"a block of 8 steps took {block:.2f} s, 8 single steps {single:.2f} s"
