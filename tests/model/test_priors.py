"""Learned priors (`tfp_vae.PRIORS`: mixture, vamp) and gated bodies (`hidden_activation`).

The sampled KL the encoder carries is checked against an independent Monte Carlo estimate whose
log p(z) is computed by hand in NumPy/SciPy (mixture: from the prior's variables; vamp: from the
encoder's own posteriors of the pseudo-inputs), within 5 standard errors as in test_exact_elbo.py.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from scipy.special import expit, logsumexp, softplus
from tensorflow_probability import distributions as tfd

import tfp_vae
from conftest import grey_images
from tfp_vae import ConfigError, VAEConfig
from tfp_vae.model import priors
from tfp_vae.model.hidden import Gated, hidden_layer

LATENT, COMPONENTS = 3, 4
TINY = {"latent_dim": LATENT, "hidden_units": (16,), "prior_components": COMPONENTS, "kl": "sampled"}


def _binary(n, seed):
    return (grey_images(n, seed=seed) > 0.5).astype(np.float32)


def _model(prior, style="regularizer", beta=1.0, kl_samples=2000, **kw):
    cfg = VAEConfig(prior=prior, kl_style=style, beta=beta, kl_samples=kl_samples, seed=2, **{**TINY, **kw})
    return tfp_vae.build_vae(cfg)


def _log_normal(z, loc, scale_tril):
    """log N(z; loc, L L^T) by hand: z [..., d], loc [d], scale_tril [d, d] -> [...]."""
    white = np.linalg.solve(scale_tril, (z - loc)[..., None])[..., 0]
    d = loc.shape[-1]
    return (
        -0.5 * np.sum(white**2, -1)
        - np.sum(np.log(np.abs(np.diag(scale_tril))))
        - 0.5 * d * np.log(2 * np.pi)
    )


def _mixture_log_prob(model, z):
    layer = model.prior_layer
    logits, means = layer.logits.numpy(), layer.means.numpy()
    scales = softplus(layer.raw_scales.numpy()) + 1e-5  # [K, d]
    log_pi = logits - logsumexp(logits)
    parts = [log_pi[k] + _log_normal(z, means[k], np.diag(scales[k])) for k in range(len(logits))]
    return logsumexp(np.stack(parts), axis=0)


def _vamp_log_prob(model, z):
    u = expit(model.prior_layer.raw_pseudo_inputs.numpy())  # pseudo-inputs, computed separately
    q = model.encoder(u.astype(np.float32))  # the full encoder: its posteriors q(z | u_k)
    loc, tril = q.mean().numpy(), q.scale.to_dense().numpy()
    parts = [_log_normal(z, loc[k], tril[k]) for k in range(len(u))]
    return logsumexp(np.stack(parts), axis=0) - np.log(len(u))


HAND = {"mixture": _mixture_log_prob, "vamp": _vamp_log_prob}


def _perturb_mixture(model):
    """Moves the mixture away from its initial values, so the check is not at one special point."""
    rng = np.random.default_rng(5)
    layer = model.prior_layer
    layer.logits.assign(rng.normal(size=layer.logits.shape).astype(np.float32))
    layer.means.assign(rng.normal(size=layer.means.shape).astype(np.float32))
    layer.raw_scales.assign(rng.normal(-0.5, 0.3, size=layer.raw_scales.shape).astype(np.float32))


def _independent_kl(model, x, draws=4000, seed=11):
    """Per-example E_q[log q(z|x) - log p(z)] from NumPy draws and hand-written densities, and the
    standard deviation of one draw's batch mean."""
    q = model.encoder(x)
    loc, tril = q.mean().numpy().astype(np.float64), q.scale.to_dense().numpy().astype(np.float64)
    eps = np.random.default_rng(seed).standard_normal((draws, *loc.shape))
    z = loc + np.einsum("bij,sbj->sbi", tril, eps)  # [S, B, d]
    log_q = np.stack([_log_normal(z[:, b], loc[b], tril[b]) for b in range(len(loc))], axis=1)
    ratio = log_q - HAND[model.config.prior](model, z)  # [S, B]
    return ratio.mean(0), float(np.std(ratio.mean(1)))


@pytest.mark.parametrize("style", ["regularizer", "add_loss"])
@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_sampled_kl_matches_an_independent_estimate_and_loss_is_nll_plus_beta_kl(prior, style):
    draws, beta = 1000, 0.7
    model = _model(prior, style, beta=beta, kl_samples=draws)
    if prior == "mixture":
        _perturb_mixture(model)
    x = _binary(8, seed=4)
    kl, sd = _independent_kl(model, x, draws=2000)
    terms = model.loss_terms(x)
    assert len(model.encoder.losses) == 1  # the pseudo-inputs' pass adds no second KL
    # 5 standard errors of the difference of two independent estimates (draws and 2000 draws).
    tol = 5 * sd * np.sqrt(1 / draws + 1 / 2000) + 1e-4
    penalty = float(terms["penalty"])
    assert abs(penalty / beta - kl.mean()) <= tol, (penalty / beta, kl.mean(), tol)
    # The loss is exactly mean_B[-log p(x|z)] at the decoder's draw + beta * KL_hat.
    nll = float(tf.reduce_mean(-model.decoder(terms["z"]).log_prob(x)))
    np.testing.assert_allclose(float(terms["loss"]), nll + penalty, rtol=1e-6)
    # The prior's own log_prob is the hand-written density.
    z = np.random.default_rng(1).normal(size=(50, LATENT))
    np.testing.assert_allclose(
        model.prior.log_prob(z.astype(np.float32)).numpy(), HAND[prior](model, z), rtol=1e-4, atol=1e-4
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A mixture (regularizer) and a vamp (add_loss) model after two short epochs, with the prior
    variables before training and the loss history."""
    x = _binary(128, seed=6)
    out = {}
    for prior, style in (("mixture", "regularizer"), ("vamp", "add_loss")):
        model = _model(prior, style, kl_samples=1)
        before = [v.numpy().copy() for v in model.prior_layer.trainable_weights]
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
        history = model.fit(x, epochs=2, batch_size=32, verbose=0).history  # XLA-compiled steps
        out[prior] = model, before, history
    return out, x


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_prior_trains_and_round_trips(trained, prior, tmp_path):
    models, _ = trained
    model, before, history = models[prior]
    assert history["loss"][1] < history["loss"][0]
    assert all(np.isfinite(history["kl"]))
    prior_ids = {id(v) for v in model.prior_layer.trainable_weights}
    assert prior_ids <= {id(v) for v in model.trainable_variables}
    for old, new in zip(before, model.prior_layer.trainable_weights):
        assert not np.allclose(old, new.numpy()), new.name
    z = np.random.default_rng(3).normal(size=(20, LATENT)).astype(np.float32)
    expected = model.prior.log_prob(z).numpy()
    loaded = tfp_vae.load(tfp_vae.save(model, tmp_path / "run"))
    np.testing.assert_allclose(loaded.prior.log_prob(z).numpy(), expected, rtol=1e-6)
    # The training checkpoint (tf.train.Checkpoint of the model) holds the prior too.
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = _model(prior, kl_samples=1)
    tf.train.Checkpoint(model=fresh).read(path).expect_partial()
    np.testing.assert_allclose(fresh.prior.log_prob(z).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_evaluate_with_a_learned_prior(trained, prior):
    (models, x) = trained
    model = models[prior][0]
    m = tfp_vae.evaluate(model, x[:20], num_samples=50, batch_size=10)
    assert all(np.isfinite(m[k]) for k in ("elbo", "nll", "kl", "iwae"))
    assert m["elbo"] <= m["iwae"]
    assert m["elbo"] == pytest.approx(-(m["nll"] + m["kl"]))
    assert m["kl_per_dim"] is None  # the chain-rule parts assume N(0, I)
    # The Monte Carlo KL agrees with the model's own sampled estimate (both from ~1000 draws).
    kl, sd = _independent_kl(model, x[:20], draws=1000)
    assert abs(m["kl"] - kl.mean()) <= 5 * sd * np.sqrt(2 / 1000) + 1e-4


@pytest.mark.parametrize("white_values", [2**24, 64], ids=["one-block", "row-blocks"])
def test_mixture_tril_log_prob_and_gradient_match_tfp(monkeypatch, white_values):
    """GaussianMixtureTriL (the VampPrior's mixture) against tfd.MixtureSameFamily, at unequal
    weights and full covariances, on draws shaped [S, B, d], whole and in row blocks."""
    monkeypatch.setattr(priors, "_WHITE_VALUES", white_values)  # 64 values: 5 rows per block
    rng = np.random.default_rng(8)
    k, d = 4, LATENT
    logits = tf.Variable(rng.normal(size=k).astype(np.float32))
    loc = tf.Variable(rng.normal(size=(k, d)).astype(np.float32))
    raw = np.tril(rng.normal(0, 0.4, size=(k, d, d))) + np.eye(d) * rng.uniform(0.3, 2.0, size=(k, 1, d))
    tril = tf.Variable(raw.astype(np.float32))
    z = rng.normal(0, 2, size=(3, 7, d)).astype(np.float32)

    def log_prob_and_gradient(mixture_class):
        with tf.GradientTape() as tape:
            mixture = mixture_class(
                tfd.Categorical(logits=logits),
                tfd.MultivariateNormalTriL(loc, tf.linalg.band_part(tril, -1, 0)),
            )
            values = mixture.log_prob(z)
        return values.numpy(), [g.numpy() for g in tape.gradient(values, [logits, loc, tril])]

    fast, fast_grads = log_prob_and_gradient(priors.GaussianMixtureTriL)
    stock, stock_grads = log_prob_and_gradient(tfd.MixtureSameFamily)
    assert fast.shape == (3, 7)
    np.testing.assert_allclose(fast, stock, rtol=1e-5, atol=1e-4)
    for got, want in zip(fast_grads, stock_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_mixture_tril_refuses_a_batch_of_mixtures():
    loc = np.zeros([3, 2], np.float32)
    batched = priors.GaussianMixtureTriL(
        tfd.Categorical(logits=np.zeros([4, 3], np.float32)),  # four mixtures: not one
        tfd.MultivariateNormalTriL(loc, np.broadcast_to(np.eye(2, dtype=np.float32), [3, 2, 2])),
    )
    with pytest.raises(ValueError, match=r"mixture logits \[K\].*tfd.MixtureSameFamily"):
        batched.log_prob(np.zeros([5, 2], np.float32))


def test_a_training_step_encodes_the_pseudo_inputs_once():
    model = _model("vamp", kl_samples=3)
    calls = []
    encode = model.prior_layer._encode
    object.__setattr__(model.prior_layer, "_encode", lambda u: calls.append(u) or encode(u))
    terms = model.loss_terms(_binary(4, seed=3))
    assert len(calls) == 1  # the KL penalty and the kl metric read the same prior
    assert np.all(np.isfinite(terms["kl"].numpy()))
    model.prior.log_prob(np.zeros([1, LATENT], np.float32))  # outside a step: built anew
    assert len(calls) == 2
    with model.one_prior() as outer:
        with model.one_prior() as inner:
            assert inner is outer
        assert model.prior is outer  # leaving the inner one keeps the outer one's prior
    assert len(calls) == 3


def test_vamp_prior_starts_from_training_images(tmp_path):
    x = grey_images(40, seed=9)
    cfg = VAEConfig(
        prior="vamp", prior_init="data", binarize="dynamic", epochs=1, batch_size=10, seed=4, **TINY
    )
    data = ((x, None), (_binary(10, seed=1), None))  # grey training images, drawn binary each step
    model, _ = tfp_vae.train(cfg, out_dir=tmp_path / "run", data=data, verbose=0)
    rebuilt = _model("vamp")
    priors.start_prior(rebuilt.prior_layer, cfg, x)  # what train did before its first step
    u = rebuilt.prior_layer.pseudo_inputs().numpy()
    assert u.shape == (COMPONENTS, 28, 28, 1)
    # Each pseudo-input is one of the images, clipped to [0.01, 0.99], and they are distinct.
    distances = np.abs(u[:, None] - np.clip(x, 0.01, 0.99)[None]).max(axis=(2, 3, 4))  # [K, N]
    assert np.all(distances.min(axis=1) < 1e-5)
    assert len(set(distances.argmin(axis=1))) == COMPONENTS
    # The trained run started there: one epoch of Adam at 1e-3 moves the logits little.
    trained = model.prior_layer.raw_pseudo_inputs.numpy()
    assert np.abs(trained - rebuilt.prior_layer.raw_pseudo_inputs.numpy()).max() < 0.1
    random = _model("vamp").prior_layer.pseudo_inputs().numpy()
    assert np.abs(random[:, None] - np.clip(x, 0.01, 0.99)[None]).max(axis=(2, 3, 4)).min() > 0.5


def test_standard_prior_is_the_fixed_normal():
    model = tfp_vae.build_vae(VAEConfig(latent_dim=2, hidden_units=(8,)))
    assert not model.prior_layer.weights
    assert model.prior is model.prior  # N(0, I): one distribution, the exact KL's
    z = np.zeros([1, 2], np.float32)
    assert float(model.prior.log_prob(z)[0]) == pytest.approx(-np.log(2 * np.pi))


# ---------------------------------------------------------------------------- gated bodies
def test_gated_dense_is_linear_times_sigmoid_gate():
    layer = hidden_layer("gated", tf_keras.layers.Dense, 5, name="h")
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    out = layer(x).numpy()
    w, b = layer.linear.get_weights()
    v, c = layer.gate.get_weights()
    np.testing.assert_allclose(out, (x @ w + b) * expit(x @ v + c), rtol=1e-5, atol=1e-6)


def _dense_count(sizes):
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


@pytest.mark.parametrize("activation, factor", [("relu", 1), ("gated", 2)])
def test_mlp_body_weights(activation, factor):
    """relu keeps the original layout; gated doubles every hidden layer (W, b and V, c)."""
    cfg = VAEConfig(latent_dim=2, hidden_units=(16, 8), hidden_activation=activation)
    model = tfp_vae.build_vae(cfg)
    pixels, params = 784, 2 + 3
    encoder = factor * _dense_count([pixels, 16, 8]) + _dense_count([8, params])
    decoder = factor * _dense_count([2, 8, 16]) + _dense_count([16, pixels])
    assert model.encoder.count_params() == encoder
    assert model.decoder.count_params() == decoder
    hidden = [
        layer for m in (model.encoder, model.decoder) for layer in m.layers if layer.name.startswith("dense_")
    ]
    assert len(hidden) == 4
    assert all(isinstance(layer, Gated) == (activation == "gated") for layer in hidden)
    if activation == "relu":
        assert [w.shape.as_list() for w in model.encoder.weights] == [
            [784, 16],
            [16],
            [16, 8],
            [8],
            [8, 5],
            [5],
        ]


def test_conv_body_gated_everywhere_but_the_output():
    cfg = VAEConfig(latent_dim=2, encoder="conv", conv_filters=4, conv_dense=8, hidden_activation="gated")
    relu = tfp_vae.build_vae(cfg.replace(hidden_activation="relu"))
    gated = tfp_vae.build_vae(cfg)
    for r, g in zip(relu.encoder.layers + relu.decoder.layers, gated.encoder.layers + gated.decoder.layers):
        is_hidden = r.name.startswith(("conv_", "deconv_", "dense"))
        assert isinstance(g, Gated) == is_hidden, r.name
        assert g.count_params() == (2 if is_hidden else 1) * r.count_params(), r.name
    assert gated(grey_images(2)).batch_shape.as_list() == [2]


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "fields, words",
    [
        ({"prior": "flow", "kl": "sampled"}, ["prior", "'flow'", "mixture", "standard", "vamp"]),
        ({"prior": "mixture", "kl": "sampled", "prior_components": 0}, ["prior_components", ">= 1"]),
        ({"prior": "vamp", "kl": "exact"}, ["VAEConfig.kl=", "'vamp'", "kl='sampled'"]),
        ({"prior": "mixture"}, ["VAEConfig.kl=", "no analytic KL", "kl='sampled'"]),
        ({"hidden_activation": "tanh"}, ["hidden_activation", "'tanh'", "gated", "relu"]),
        ({"prior_init": "zeros"}, ["prior_init", "'zeros'", "random", "data"]),
        ({"prior": "mixture", "kl": "sampled", "prior_init": "data"}, ["prior_init", "'mixture'", "'vamp'"]),
    ],
    ids=[
        "unknown-prior",
        "no-components",
        "vamp-exact",
        "mixture-exact",
        "unknown-activation",
        "unknown-prior-init",
        "mixture-from-data",
    ],
)
def test_bad_prior_and_body_config(fields, words):
    with pytest.raises(ConfigError) as err:
        VAEConfig(**fields)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_config_round_trips_new_fields():
    cfg = VAEConfig(
        prior="vamp", kl="sampled", prior_components=7, hidden_activation="gated", prior_init="data"
    )
    assert VAEConfig.from_json(cfg.to_json()) == cfg
