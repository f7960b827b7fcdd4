"""A step budget grown from a to b, where a ends mid-block (not a multiple of fit's 64-step block,
`tfp_vae.model.vae.STEPS_PER_EXECUTION`) and mid-epoch, trains exactly what one run to b trains,
bit for bit in weights, optimizer step count and history: a Bernoulli fit of binary images (the
random streams hold the posterior draws alone) and of grey images binarized afresh every block
(`binarize="dynamic"`: the block's draw is continued where the budget ended inside it)."""

import numpy as np
import pytest
from training.test_resume import _status, _weights

import tfp_vae
from tfp_vae import VAEConfig
from tfp_vae.model.vae import STEPS_PER_EXECUTION

# conv (the study's body): the block of steps is a plain oneDNN graph; mlp: one XLA program.
BODIES = {"conv": {"encoder": "conv", "conv_filters": 4, "conv_layers": 2}, "mlp": {}}
# The XLA body's grown runs were 1 ulp (7.5e-9) apart in an Adam moment or a weight until
# 2026-12-03: XLA compiled `update_block` once per step count (a block of 64, the 1 or 11 steps
# before or after a budget's end), and the programs rounded differently. One program for every
# count (`tests/model/test_block_program.py`) ends both bodies bit-identical.


@pytest.mark.parametrize("binarize", [None, "dynamic"])
@pytest.mark.parametrize(
    ("body", "first"),
    [pytest.param(b, first, id=f"{b}-{first}") for b in BODIES for first in (65, 1)],
)
def test_a_budget_grown_from_mid_block_ends_bit_identical_to_one_run(tmp_path, body, first, binarize):
    rng = np.random.default_rng(3)
    images = rng.random([140, 8, 8, 1]).astype("float32")  # 70 steps an epoch at batch 2
    if binarize is None:
        images = (images < 0.4).astype("float32")
    data = ((images, None), ((images[:20] > 0.5).astype("float32"), None))
    cfg = VAEConfig(
        input_shape=(8, 8, 1), hidden_units=(8,), latent_dim=2, batch_size=2, epochs=10,
        max_steps=75, binarize=binarize, likelihood="bernoulli", seed=11, validation_examples=0,
        **BODIES[body],
    )  # fmt: skip
    # 65: one block of 64, then 1; 1: inside the first block. Neither a block's end nor an epoch's.
    assert first % STEPS_PER_EXECUTION and cfg.max_steps % STEPS_PER_EXECUTION
    whole, whole_history = tfp_vae.train(cfg, tmp_path / "whole", data=data, verbose=0)
    tfp_vae.train(cfg.replace(max_steps=first), tmp_path / "grown", data=data, verbose=0)
    assert _status(tmp_path / "grown")["steps_done"] == first
    grown, grown_history = tfp_vae.train(cfg, tmp_path / "grown", data=data, verbose=0)
    assert _status(tmp_path / "grown")["steps_done"] == 75 == int(grown.optimizer.iterations)
    assert grown_history == whole_history and len(grown_history["loss"]) == 1  # epoch 2 unfinished
    for a, b in zip(grown.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    saved, expected = _weights(tmp_path / "grown"), _weights(tmp_path / "whole")
    for name in expected:
        np.testing.assert_array_equal(saved[name], expected[name], err_msg=name)
