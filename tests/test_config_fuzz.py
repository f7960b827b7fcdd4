"""Config fuzzing (Hypothesis): random JSON thrown at `VAEConfig.from_dict` and at
`tfp-vae train --config` gives a valid config or a `ConfigError` naming a field, never another
exception, and never a started run."""

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tfp_vae import ConfigError, VAEConfig
from tfp_vae.cli import flag, main

FIELDS = [f.name for f in dataclasses.fields(VAEConfig)]
# Values of every JSON type, names that are valid somewhere (so some configs are valid and the
# cross-field checks run), extreme numbers, and nesting where a name or a number belongs.
NAMES = st.sampled_from(
    [
        "mlp",
        "conv",
        "bernoulli",
        "normal",
        "vamp",
        "mixture",
        "sampled",
        "dynamic",
        "static",
        "plateau",
        "warmup",
        "capacity",
        "data",
        "gated",
        "mnist",
        "",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
    | NAMES
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
CONFIGS = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), VALUES, max_size=6)


def _config_or_error(data):
    """The config of `data` (through JSON, as a file holds it), or the ConfigError it raised."""
    try:
        return VAEConfig.from_json(json.dumps(data))
    except ConfigError as err:
        return err


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(CONFIGS)
def test_random_json_gives_a_config_or_a_config_error_naming_a_field(data):
    got = _config_or_error(data)  # any other exception fails the test
    if isinstance(got, VAEConfig):
        assert VAEConfig.from_json(got.to_json()) == got  # valid: and it round-trips
        assert all(type(getattr(got, k)) is not list for k in FIELDS)  # hashable, comparable
        hash(got)
    elif got.field is None:  # only an unknown key goes without a field: it names the key
        unknown = sorted(set(data) - set(FIELDS))
        assert unknown and str(unknown) in str(got)
    else:
        assert got.field in FIELDS and f"VAEConfig.{got.field}=" in str(got)


@pytest.mark.parametrize(
    "data", [{"likelihood": [0, 0, 0]}, {"input_shape": [28, 28, True]}, {"seed": 2**40}]
)
def test_values_that_once_slipped_through(data):
    with pytest.raises(ConfigError) as err:
        VAEConfig.from_dict(data)
    assert err.value.field == next(iter(data))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(CONFIGS)
def test_train_with_a_random_config_file_names_the_field_and_starts_nothing(tmp_path_factory, data):
    got = _config_or_error(data)
    assume(isinstance(got, ConfigError))  # a valid config would train; that is tested elsewhere
    folder = tmp_path_factory.mktemp("fuzz")
    path, out = folder / "config.json", folder / "run"
    path.write_text(json.dumps(data))
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", "--config", str(path), "--out", str(out), "--verbose", "0"])
    assert code == 2
    line = err.getvalue().strip()
    assert line.startswith(f"tfp-vae train: error: --config {path}: ") and len(line.splitlines()) == 1
    assert (
        (got.field is None and "unknown VAEConfig field" in line)
        or f"VAEConfig.{got.field}=" in line
        or flag(got.field) in line
    )
    assert not out.exists()  # never a started run
