"""`VAE.update_block` is one XLA program whatever the number of steps it runs: the count (and the
row a grown budget's block resumes from) are run-time values, so an epoch's short last block, a
block cut by max_steps or the rest of a resumed block do not compile it again (each compilation of
the density MLP's block costs 3.5 to 5 s on 2 cores)."""

import pytest
import tensorflow as tf
import tf_keras

import tfp_vae


@pytest.mark.parametrize("first", [None, 1])  # a fresh block; the rest of one, from a row
def test_the_block_programs_hlo_does_not_depend_on_its_step_count(first):
    config = tfp_vae.VAEConfig(input_shape=(4, 4, 1), hidden_units=(4,), latent_dim=2, binarize="dynamic")
    model = tfp_vae.build_vae(config)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    block = model._xla("update_block")
    xs = tf.random.stateless_uniform([8, 2, 4, 4, 1], seed=[0, 1])
    row = None if first is None else tf.constant(first)
    three, five = (
        block.experimental_get_compiler_ir(xs, tf.constant(count), row)(stage="hlo") for count in (3, 5)
    )
    assert three == five
