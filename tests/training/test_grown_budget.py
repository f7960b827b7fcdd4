"""A step budget grown from a to b, where a ends mid-block (not a multiple of fit's 64-step block,
`tfp_vae.model.vae.STEPS_PER_EXECUTION`) and mid-epoch, trains exactly what one run to b trains:
a Bernoulli fit of binary images without dynamic binarization (the random streams then hold the
posterior draws alone), bit for bit in weights, optimizer step count and history."""

import numpy as np
import pytest
from training.test_resume import _status, _weights

import tfp_vae
from tfp_vae import VAEConfig
from tfp_vae.model.vae import STEPS_PER_EXECUTION

# mlp: the block of steps is one XLA program; conv (the study's body): a plain oneDNN graph
BODIES = {"mlp": {}, "conv": {"encoder": "conv", "conv_filters": 4, "conv_layers": 2}}


@pytest.mark.parametrize("body", list(BODIES))
def test_a_budget_grown_from_mid_block_ends_bit_identical_to_one_run(tmp_path, body):
    rng = np.random.default_rng(3)
    binary = (rng.random([200, 8, 8, 1]) < 0.4).astype("float32")  # 100 steps an epoch at batch 2
    data = ((binary, None), (binary[:20], None))
    cfg = VAEConfig(
        input_shape=(8, 8, 1), hidden_units=(8,), latent_dim=2, batch_size=2, epochs=10,
        max_steps=150, binarize=None, likelihood="bernoulli", seed=11, validation_examples=0,
        **BODIES[body],
    )  # fmt: skip
    first = 70  # one block of 64, then 6: neither a block's end nor an epoch's
    assert first % STEPS_PER_EXECUTION and cfg.max_steps % STEPS_PER_EXECUTION
    whole, whole_history = tfp_vae.train(cfg, tmp_path / "whole", data=data, verbose=0)
    tfp_vae.train(cfg.replace(max_steps=first), tmp_path / "grown", data=data, verbose=0)
    assert _status(tmp_path / "grown")["steps_done"] == first
    grown, grown_history = tfp_vae.train(cfg, tmp_path / "grown", data=data, verbose=0)
    assert _status(tmp_path / "grown")["steps_done"] == 150 == int(grown.optimizer.iterations)
    assert grown_history == whole_history and len(grown_history["loss"]) == 1  # epoch 2 unfinished
    for a, b in zip(grown.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    saved, expected = _weights(tmp_path / "grown"), _weights(tmp_path / "whole")
    for name in expected:
        np.testing.assert_array_equal(saved[name], expected[name], err_msg=name)
