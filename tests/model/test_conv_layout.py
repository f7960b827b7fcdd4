"""The conv body by configuration (issue 25): filters, kernels and dense widths per layer, and the
decoder's layout; disentanglement_lib's reference model; the int form unchanged."""

import json
from pathlib import Path

import numpy as np
import pytest

import tfp_vae
from tfp_vae import ConfigError, VAEConfig
from tfp_vae.cli import build_parser, config_from_args

REFERENCE = Path(__file__).resolve().parents[2] / "experiments" / "dsprites_beta_vae.json"


def _shapes(model):
    return [(v.name, tuple(v.shape)) for v in model.trainable_variables]


def test_the_int_form_builds_the_layers_it_always_built():
    """VAEConfig(encoder="conv"): filters 32 doubling, kernel 3, dense 256, the 'mirror' decoder
    (shapes recorded from the code before issue 25), so existing runs' weights load unchanged."""
    assert _shapes(tfp_vae.build_vae(VAEConfig(encoder="conv"))) == [
        ("conv_0/kernel:0", (3, 3, 1, 32)), ("conv_0/bias:0", (32,)),
        ("conv_1/kernel:0", (3, 3, 32, 64)), ("conv_1/bias:0", (64,)),
        ("dense/kernel:0", (3136, 256)), ("dense/bias:0", (256,)),
        ("posterior_params/kernel:0", (256, 5)), ("posterior_params/bias:0", (5,)),
        ("dense/kernel:0", (2, 256)), ("dense/bias:0", (256,)),
        ("dense_to_map/kernel:0", (256, 3136)), ("dense_to_map/bias:0", (3136,)),
        ("deconv_0/kernel:0", (3, 3, 64, 64)), ("deconv_0/bias:0", (64,)),
        ("deconv_1/kernel:0", (3, 3, 32, 64)), ("deconv_1/bias:0", (32,)),
        ("likelihood_params/kernel:0", (3, 3, 32, 1)), ("likelihood_params/bias:0", (1,)),
    ]  # fmt: skip


def test_the_reference_experiment_is_disentanglement_libs_model():
    """experiments/dsprites_beta_vae.json: encoder conv 32-32-64-64 (4x4, stride 2) -> dense 256 ->
    posterior; decoder dense 256 -> 1024 -> 4x4x64 -> transposed convs 64-32-32-1 (4x4, stride 2)."""
    config = VAEConfig.from_json(REFERENCE.read_text())
    assert (config.dataset, config.latent_dim, config.likelihood, config.batch_size) == (
        "dsprites",
        10,
        "bernoulli",
        64,
    )
    assert config.learning_rate == 1e-4 and config.posterior == "diagonal"
    model = tfp_vae.build_vae(config.replace(dataset="dsprites_small"))
    kernels = [s for n, s in _shapes(model) if n.endswith("kernel:0")]
    assert kernels == [
        (4, 4, 1, 32),
        (4, 4, 32, 32),
        (4, 4, 32, 64),
        (4, 4, 64, 64),
        (1024, 256),
        (256, 20),  # the diagonal posterior: 10 means, 10 scales
        (10, 256),
        (256, 1024),
        (4, 4, 64, 64),
        (4, 4, 32, 64),
        (4, 4, 32, 32),
        (4, 4, 1, 32),
    ]  # fmt: skip  (Conv2DTranspose kernels are [k, k, out, in])
    p = model(np.zeros([3, 64, 64, 1], np.float32))
    assert p.batch_shape.as_list() == [3] and p.event_shape.as_list() == [64, 64, 1]
    # Forward multiply-adds per image: the reference model's ~16 M (issue 25), not the 125 M of
    # the mirror decoder at 16 doubling filters.
    spatial = {
        "conv_0": 32,
        "conv_1": 16,
        "conv_2": 8,
        "conv_3": 4,
        "deconv_0": 4,
        "deconv_1": 8,
        "deconv_2": 16,
        "likelihood_params": 32,
    }  # fmt: skip  (input side for deconvs)
    macs = sum(
        int(np.prod(s)) * (spatial[n.split("/")[0]] ** 2 if n.split("/")[0] in spatial else 1)
        for n, s in _shapes(model)
        if n.endswith("kernel:0")
    )
    assert 15e6 < macs < 17e6


def test_per_layer_kernels_dense_widths_and_a_cropped_transpose_decoder():
    config = VAEConfig(
        encoder="conv", conv_filters=(4, 8, 8), conv_layers=3, conv_kernel=(5, 3, 2),
        conv_dense=(32, 16), conv_decoder="transpose", likelihood="beta",
    )  # fmt: skip
    model = tfp_vae.build_vae(config)
    shapes = dict(_shapes(model.encoder))
    assert [shapes[f"conv_{i}/kernel:0"] for i in range(3)] == [(5, 5, 1, 4), (3, 3, 4, 8), (2, 2, 8, 8)]
    assert shapes["dense_0/kernel:0"] == (128, 32) and shapes["dense_1/kernel:0"] == (32, 16)
    decoder = dict(_shapes(model.decoder))
    assert decoder["dense_0/kernel:0"] == (2, 16) and decoder["dense_1/kernel:0"] == (16, 32)
    assert [decoder[f"deconv_{i}/kernel:0"] for i in range(2)] == [(2, 2, 8, 8), (3, 3, 4, 8)]
    assert decoder["likelihood_params/kernel:0"] == (5, 5, 2, 4)  # beta: 2 parameters per pixel
    p = model(np.full([2, 28, 28, 1], 0.5, np.float32))  # 4 -> 8 -> 16 -> 32, cropped to 28
    assert p.event_shape.as_list() == [28, 28, 1]
    assert np.isfinite(p.log_prob(np.full([2, 28, 28, 1], 0.5, np.float32)).numpy()).all()


@pytest.mark.parametrize(
    "changes, field, words",
    [
        (dict(conv_filters=(32, 32, 64, 64)), "conv_filters", "conv_layers=4"),
        (dict(conv_filters=(32, 0), conv_layers=2), "conv_filters", "integer >= 1"),
        (dict(conv_filters=()), "conv_filters", "non-empty tuple"),
        (dict(conv_kernel=(4, 4, 2)), "conv_kernel", "conv_layers=3"),
        (dict(conv_kernel=2.5), "conv_kernel", "integer >= 1"),
        (dict(conv_dense=(256, True)), "conv_dense", "integer >= 1"),
        (dict(conv_decoder="reference"), "conv_decoder", "'transpose'"),
        (dict(precision="float16"), "precision", "'mixed_bfloat16'"),
    ],
)
def test_bad_conv_fields_name_themselves(changes, field, words):
    with pytest.raises(ConfigError, match=words) as info:
        VAEConfig(**changes)
    assert info.value.field == field and f"VAEConfig.{field}=" in str(info.value)


def test_tuples_round_trip_through_json_and_the_int_form_stays_an_int():
    config = VAEConfig(encoder="conv", conv_filters=(8, 8, 16), conv_layers=3, conv_kernel=(4, 4, 2),
                       conv_dense=(64,), conv_decoder="transpose", precision="mixed_bfloat16")  # fmt: skip
    again = VAEConfig.from_json(config.to_json())
    assert again == config and again.conv_filters == (8, 8, 16) and again.conv_dense == (64,)
    assert json.loads(VAEConfig().to_json())["conv_filters"] == 32
    assert VAEConfig.from_json(VAEConfig().to_json()).conv_filters == 32


def test_command_line_takes_one_value_or_one_per_layer():
    parser = build_parser()
    base = ["train", "--out", "runs/x", "--encoder", "conv", "--conv-layers", "4"]
    one = config_from_args(parser.parse_args([*base, "--conv-filters", "16"]))
    per_layer = config_from_args(parser.parse_args([*base, "--conv-filters", "32", "32", "64", "64"]))
    assert one.conv_filters == 16 and per_layer.conv_filters == (32, 32, 64, 64)
