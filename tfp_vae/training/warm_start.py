"""Warm start: a new run's encoder and decoder begin at another run's trained weights.

`VAEConfig.init_from` names the source run directory (e.g. a model shipped under
`experiments/results/`). `train` checks it before loading any data (`source_model`) and copies
the weights into a run that starts at epoch 0 (`copy_body`); a resumed run continues from its own
checkpoint. A learned prior is copied too when the source has the same one (same `prior`, same
variable shapes): the run then continues the whole model, e.g. at a lower learning rate. Otherwise
(a VampPrior on top of a trained N(0, I) model) the new prior starts as `prior_init` says.

>>> import tempfile, numpy as np, tfp_vae
>>> small = dict(input_shape=(8, 8, 1), hidden_units=(16,), latent_dim=3)
>>> source = tfp_vae.save(tfp_vae.build_vae(**small, seed=1), tempfile.mkdtemp())
>>> config = tfp_vae.VAEConfig(**small, prior="mixture", kl="sampled", init_from=str(source))
>>> model = tfp_vae.build_vae(config)
>>> copy_body(source_model(config), model)  # True would mean the prior was copied too
False
>>> trained = tfp_vae.load(source).decoder.get_weights()
>>> all(np.array_equal(a, b) for a, b in zip(model.decoder.get_weights(), trained))
True
"""

from __future__ import annotations

from pathlib import Path

from tfp_vae.config import VAEConfig
from tfp_vae.errors import ConfigError, RunDirError
from tfp_vae.model.vae import VAE, build_vae
from tfp_vae.runs import files as runs

BODIES = ("encoder", "decoder")  # the parts always copied; the prior only if it is the same


def source_model(config: VAEConfig) -> VAE | None:
    """The trained model of `config.init_from` (None if ''); `ConfigError` naming init_from if it
    is not a loadable run directory or its encoder or decoder has other weight shapes."""
    if not config.init_from:
        return None
    where = f"VAEConfig.init_from={config.init_from!r}"
    if not Path(config.init_from).is_dir():
        raise ConfigError(
            f"{where}: no such directory (relative paths start from the current directory, "
            f"{Path.cwd()}); give the run directory to start from, or '' for random weights."
        )
    try:
        source = runs.load(config.init_from)
    except RunDirError as err:
        raise ConfigError(f"{where}: cannot load its model: {err}") from err
    target = build_vae(config)
    for body in BODIES:
        if _shapes(getattr(source, body)) != _shapes(getattr(target, body)):
            differences = runs.config_differences(source.config, config.replace(init_from=""))
            raise ConfigError(
                f"{where}: its {body} has other weight shapes than this config's ({differences}); "
                f"warm starting needs the same input_shape, encoder, hidden_units, "
                f"hidden_activation, latent_dim and likelihood."
            )
    return source


def copy_body(source: VAE | None, model: VAE) -> bool:
    """Sets `model`'s encoder and decoder weights to `source`'s (a no-op for None), and its prior's
    when both have the same prior with the same shapes; returns whether the prior is the source's
    (True also for two N(0, I) priors, which have nothing to copy)."""
    if source is None:
        return False
    for body in BODIES:
        getattr(model, body).set_weights(getattr(source, body).get_weights())
    same_prior = source.config.prior == model.config.prior and _shapes(source.prior_layer) == _shapes(
        model.prior_layer
    )
    if same_prior:
        model.prior_layer.set_weights(source.prior_layer.get_weights())
    return same_prior


def _shapes(layer) -> list[tuple[int, ...]]:
    return [tuple(w.shape) for w in layer.weights]
