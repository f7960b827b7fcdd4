"""`evaluate` against a model whose log p(x) is known in closed form.

Probabilistic PCA: p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I), so p(x) = N(b, W W^T + sigma^2 I),
and the exact posterior is N(A (x - b), S) with S = (I + W^T W / sigma^2)^-1, A = S W^T / sigma^2.
A 'linear' encoder (posterior parameters affine in x) with a 'normal_fixed' decoder can hold these
weights exactly; perturbing the encoder gives a strict gap elbo < iwae < log p(x).
"""

import importlib
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_vae
from tfp_vae.evaluation.elbo import evaluate

tfd, tfb = tfp.distributions, tfp.bijectors

SHAPE = (4, 4, 1)
D, LATENT, SIGMA = 16, 3, 0.5


def _ppca(seed=0, beta=1.0):
    """(model with the exact posterior, W [D, d], b [D])."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(D, LATENT))
    b = rng.normal(size=D)
    cfg = tfp_vae.VAEConfig(
        encoder="linear",
        likelihood="normal_fixed",
        normal_sigma=SIGMA,
        latent_dim=LATENT,
        input_shape=SHAPE,
        beta=beta,
        seed=seed,
    )
    model = tfp_vae.build_vae(cfg)
    model.decoder.get_layer("likelihood_params").set_weights([w.T, b])
    _set_posterior(model, w, b)
    return model, w, b


def _set_posterior(model, w, b, loc_shift=0.0, scale_factor=1.0, dead_dim=None):
    """Encoder weights giving q(z|x) = N(A (x - b) + loc_shift, (scale_factor^2) S)."""
    s = np.linalg.inv(np.eye(LATENT) + w.T @ w / SIGMA**2)
    a = s @ w.T / SIGMA**2  # [d, D]
    if dead_dim is not None:
        a[dead_dim] = 0.0  # E_q[z_dead] no longer depends on x: an inactive unit
    tril = tfb.FillScaleTriL(diag_shift=np.float64(1e-5)).inverse(scale_factor * np.linalg.cholesky(s))
    kernel = np.concatenate([a.T, np.zeros((D, tril.shape[0]))], axis=1)
    bias = np.concatenate([-a @ b + loc_shift, tril.numpy()])
    model.encoder.get_layer("posterior_params").set_weights([kernel, bias])


def _data(w, b, n=200, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, LATENT)) @ w.T + b + SIGMA * rng.normal(size=(n, D))
    return x.reshape(n, *SHAPE).astype(np.float32)


def _exact_log_px(w, b, x):
    """Mean over x of log N(x; b, W W^T + sigma^2 I), float64."""
    cov = w @ w.T + SIGMA**2 * np.eye(D)
    marginal = tfd.MultivariateNormalTriL(loc=b, scale_tril=np.linalg.cholesky(cov))
    return float(np.mean(marginal.log_prob(x.reshape(len(x), D).astype(np.float64))))


def test_exact_posterior_makes_every_bound_tight():
    """With q = p(z|x) every log-weight equals log p(x): elbo = iwae = log p(x), even for K = 1."""
    model, w, b = _ppca()
    x = _data(w, b)
    exact = _exact_log_px(w, b, x)
    for k in (1, 7):
        m = evaluate(model, x, num_samples=k, batch_size=64)
        assert abs(m["iwae"] - exact) < 2e-3, (k, m["iwae"], exact)
    # The ELBO's parts are Monte Carlo (nll) + analytic (kl); with 2000 draws they add up to log p(x).
    m = evaluate(model, x, num_samples=2000, batch_size=64)
    assert abs(m["elbo"] - exact) < 0.02, (m["elbo"], exact)


def test_iwae_lies_between_elbo_and_log_px_and_converges():
    model, w, b = _ppca()
    _set_posterior(model, w, b, loc_shift=0.4, scale_factor=1.6)
    x = _data(w, b)
    exact = _exact_log_px(w, b, x)
    tf.random.set_seed(0)
    small = evaluate(model, x, num_samples=5, batch_size=50)
    large = evaluate(model, x, num_samples=2000, batch_size=50)
    gap = exact - large["elbo"]
    assert gap > 0.5  # the perturbed posterior is visibly wrong
    # ELBO is K-independent up to Monte Carlo noise of its nll part.
    assert abs(small["elbo"] - large["elbo"]) < 0.05 * gap
    assert large["elbo"] < small["iwae"] < large["iwae"]
    assert large["iwae"] <= exact + 0.01
    # Most of the gap is closed by K = 2000.
    assert exact - large["iwae"] < 0.1 * gap, (exact, large["iwae"], large["elbo"])


def test_parts_add_up_and_match_independent_computations():
    model, w, b = _ppca()
    _set_posterior(model, w, b, loc_shift=0.2, scale_factor=1.3)
    x = _data(w, b, n=40)
    m = evaluate(model, x, num_samples=50, batch_size=16)
    q = model.encoder(x)
    assert m["kl"] == pytest.approx(float(tf.reduce_mean(tfd.kl_divergence(q, model.prior))), rel=1e-5)
    assert m["elbo"] == pytest.approx(-(m["nll"] + m["kl"]), rel=1e-6)
    assert m["kl_per_dim"].shape == (LATENT,)
    assert np.all(m["kl_per_dim"] >= 0)
    assert float(np.sum(m["kl_per_dim"])) == pytest.approx(m["kl"], rel=1e-5)
    # Real-valued images are no discrete images: no bits per dimension on the 8-bit scale.
    assert m["bits_per_dim"] is None and m["bits_per_dim_kind"] == "not applicable"
    # nll is E_q[-log p(x|z)]: for a Gaussian decoder it is known in closed form.
    mean, cov = q.mean().numpy(), q.covariance().numpy()
    resid = x.reshape(-1, D) - (mean @ w.T + b)
    trace = np.einsum("ij,njk,ik->n", w, cov, w)  # tr(W Sigma W^T)
    nll = np.mean(
        (np.sum(resid**2, 1) + trace) / (2 * SIGMA**2) + D * math.log(SIGMA * math.sqrt(2 * math.pi))
    )
    assert m["nll"] == pytest.approx(nll, rel=0.02)


def test_kl_per_dim_is_the_usual_one_for_a_diagonal_posterior():
    """With a diagonal covariance the chain-rule parts are the per-dimension KLs of the marginals."""
    model, w, b = _ppca()
    _set_posterior(model, w, b, loc_shift=0.3)
    layer = model.encoder.get_layer("posterior_params")
    kernel, bias = layer.get_weights()
    n_tril = bias.size - LATENT
    off_diagonal = np.ones(n_tril, bool)
    off_diagonal[np.array(tfb.FillTriangular().inverse(np.eye(LATENT))) == 1] = False
    bias[LATENT:][off_diagonal] = 0.0  # off-diagonal Cholesky entries of a constant posterior scale
    layer.set_weights([kernel, bias])
    x = _data(w, b, n=30)
    m = evaluate(model, x, num_samples=3, batch_size=30)
    q = model.encoder(x)
    assert np.allclose(q.scale.to_dense().numpy()[:, 1, 0], 0.0)
    marginals = tfd.Normal(q.mean(), q.stddev())
    per_dim = tf.reduce_mean(tfd.kl_divergence(marginals, tfd.Normal(0.0, 1.0)), axis=0)
    np.testing.assert_allclose(m["kl_per_dim"], per_dim, rtol=1e-5, atol=1e-6)


def test_active_units_counts_dimensions_whose_mean_varies_with_x():
    model, w, b = _ppca()
    x = _data(w, b)
    assert evaluate(model, x, num_samples=2)["active_units"] == LATENT
    _set_posterior(model, w, b, dead_dim=1)
    assert evaluate(model, x, num_samples=2)["active_units"] == LATENT - 1


def test_chunking_and_training_beta_do_not_change_the_result(monkeypatch):
    """Batches of 7 or 200, sample blocks of 1 or all draws, and beta = 4: same figures."""
    # The module, not the function `tfp_vae.evaluation.elbo` that shadows it as a package attribute.
    module = importlib.import_module("tfp_vae.evaluation.elbo")
    model, w, b = _ppca()
    x = _data(w, b)
    reference = evaluate(model, x, num_samples=9, batch_size=200)  # exact posterior: no MC noise
    other, _, _ = _ppca(beta=4.0)
    monkeypatch.setattr(module, "DRAWS_PER_CHUNK", 7)  # one draw per block at batch_size 7
    calls = []
    original = module._log_weights
    monkeypatch.setattr(module, "_log_weights", lambda *a, **k: calls.append(a[4]) or original(*a, **k))
    chunked = evaluate(other, x, num_samples=9, batch_size=7)
    assert len(calls) == 9 * math.ceil(200 / 7) and set(calls) == {1}
    for key in ("iwae", "kl"):
        assert chunked[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-4), key
    np.testing.assert_allclose(chunked["kl_per_dim"], reference["kl_per_dim"], rtol=1e-5)
    assert chunked["active_units"] == reference["active_units"]


def test_trained_bernoulli_model_runs_and_orders_its_bounds(fashion_bernoulli):
    """A real (briefly trained) MLP VAE on binarized Fashion-MNIST: iwae above elbo, all finite."""
    (x, _), (xt, _) = fashion_bernoulli
    xb = tfp_vae.binarize_images(x[:2000], seed=0)
    model = tfp_vae.build_vae(latent_dim=4, hidden_units=(64,), seed=0)
    model.compile(optimizer="adam")
    model.fit(xb, epochs=1, batch_size=100, verbose=0)
    xt = tfp_vae.binarize_images(xt[:30], seed=1)
    m = evaluate(model, xt, num_samples=200, batch_size=30)
    assert all(np.isfinite(m[k]) for k in ("elbo", "nll", "kl", "iwae", "bits_per_dim"))
    assert m["elbo"] < m["iwae"] < 0
    # Binarized images: the Bernoulli's exact bits per dimension of that data set, not of 8-bit ones.
    assert m["bits_per_dim"] == pytest.approx(-m["iwae"] / (784 * math.log(2)), rel=1e-6)
    assert m["bits_per_dim_kind"] == "exact" and m["bits_per_dim_data"].startswith("binarized")
    assert 0 < m["kl"] and 0 <= m["active_units"] <= 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_samples": 0}, "num_samples=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    model, w, b = _ppca()
    with pytest.raises(tfp_vae.TfpVaeError, match=match):
        evaluate(model, _data(w, b, n=4), **kwargs)


def test_images_of_the_wrong_shape_are_refused():
    model, w, b = _ppca()
    with pytest.raises(tfp_vae.DataError, match="expects"):
        evaluate(model, np.zeros((3, 5, 5, 1), np.float32), num_samples=2)
