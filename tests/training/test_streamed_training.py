"""Training on images too large to hold as floats (full dSprites): streamed, bit for bit the same."""

import numpy as np

import tfp_vae
from tfp_vae.data import streamed

CONFIG = tfp_vae.VAEConfig(
    dataset="dsprites_small",
    input_shape=(64, 64, 1),
    encoder="conv",
    conv_filters=(4, 4, 8),
    conv_layers=3,
    conv_kernel=4,
    conv_dense=(16,),
    conv_decoder="transpose",
    latent_dim=2,
    batch_size=32,
    train_examples=200,
    test_fraction=0.01,
    max_steps=9,
    epochs=2,
)


def test_streamed_training_images_train_the_same_weights(monkeypatch, tmp_path):
    eager, _ = tfp_vae.train(CONFIG, verbose=0)
    monkeypatch.setattr(streamed, "MAX_FLOAT_BYTES", 1 << 20)  # dsprites_small's 10,000 images: 160 MB
    assert isinstance(tfp_vae.load_data_for(CONFIG)[0][0], streamed.ScaledImages)
    streamed_model, history = tfp_vae.train(CONFIG, out_dir=tmp_path / "run", verbose=0)
    for a, b in zip(eager.get_weights(), streamed_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    untrained = tfp_vae.build_vae(CONFIG).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(untrained, eager.get_weights()))
    assert np.isfinite(history["loss"]).all()
