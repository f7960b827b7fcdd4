import numpy as np
import pytest
import tensorflow as tf

import tfp_vae
from conftest import grey_images


@pytest.mark.parametrize(
    "encoder, likelihood, style",
    [
        ("mlp", "bernoulli", "regularizer"),
        ("conv", "beta", "add_loss"),
    ],
)
def test_save_load_gives_identical_distributions(tmp_path, encoder, likelihood, style):
    cfg = tfp_vae.VAEConfig(encoder=encoder, likelihood=likelihood, kl_style=style, latent_dim=3, seed=3)
    model = tfp_vae.build_vae(cfg)
    x = grey_images(6, likelihood=likelihood)
    model.compile()
    model.fit(x, epochs=1, batch_size=3, verbose=0)  # move the weights off their initial values
    tfp_vae.save(model, tmp_path / "run")
    again = tfp_vae.load(tmp_path / "run")
    assert again.config == cfg
    q1, q2 = model.encoder(x), again.encoder(x)
    np.testing.assert_array_equal(q1.loc, q2.loc)
    np.testing.assert_array_equal(q1.scale.to_dense(), q2.scale.to_dense())
    z = tf.random.stateless_normal([6, 3], seed=[1, 2])
    p1, p2 = model.decoder(z), again.decoder(z)
    np.testing.assert_array_equal(p1.mean(), p2.mean())
    np.testing.assert_array_equal(p1.log_prob(x), p2.log_prob(x))


def test_history_loads_from_its_csv_alone(tmp_path):
    history = {"loss": [3.5, 2.25], "val_kl": [1.0, 0.125]}
    tfp_vae.runs.files.save_history(history, tmp_path)
    (tmp_path / "history.json").unlink()  # a shipped run keeps only history.csv
    assert tfp_vae.load_history(tmp_path) == history
    (tmp_path / "history.csv").unlink()
    with pytest.raises(tfp_vae.RunDirError, match="history.json is missing"):
        tfp_vae.load_history(tmp_path)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(tfp_vae.RunDirError, match="config.json is missing"):
        tfp_vae.load(tmp_path)
    model = tfp_vae.build_vae(tfp_vae.VAEConfig(latent_dim=2))
    tfp_vae.save(model, tmp_path)
    (tmp_path / "model.weights.h5").unlink()
    with pytest.raises(tfp_vae.RunDirError, match="model.weights.h5 is missing"):
        tfp_vae.load(tmp_path)


def test_only_the_fields_that_may_grow_may_change_and_only_upwards():
    from tfp_vae.runs.files import MAY_GROW, grown_only, same_run

    saved = tfp_vae.VAEConfig(epochs=5)
    assert "epochs" in MAY_GROW
    assert grown_only(saved, saved) and grown_only(saved, saved.replace(epochs=10))
    assert not grown_only(saved, saved.replace(epochs=3))  # shorter is another run
    assert not grown_only(saved, saved.replace(epochs=10, beta=2.0))  # and so is any other change
    assert not grown_only(saved, saved.replace(batch_size=64))
    # max_steps 0 is no step budget: longer than any budget, so a budget may be lifted, not set
    budget = saved.replace(max_steps=700)
    assert grown_only(budget, budget.replace(max_steps=1400)) and grown_only(budget, saved)
    assert not grown_only(budget, budget.replace(max_steps=300)) and not grown_only(saved, budget)
    # a weights file stamped at 5 epochs belongs to the run config.json now records at 10
    assert same_run(saved.replace(epochs=10), saved) and not same_run(saved, saved.replace(seed=1))
