"""Starting calm and fast, as a user meets it: each check is a fresh Python subprocess.

`tfp-vae --help`, `tfp-vae COMMAND --help` and argument errors answer without importing TensorFlow
(the 1.5 s bound is several times what they take on an idle machine, so a busy one passes too; an
import of TensorFlow alone takes 3-5 s here). `import tfp_vae` writes nothing to stderr, nor does
building a model, unless the user chose a C++ log level.
"""

import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO

START_LIMIT = 1.5  # seconds, wall clock, for a process that must not import TensorFlow
# Prints whether TensorFlow (or another heavy library) was imported by the time the process ends.
REPORT_IMPORTS = (
    "import atexit, sys; atexit.register(lambda: print('IMPORTED', "
    "sorted(m for m in ('tensorflow', 'matplotlib', 'sklearn', 'PIL', 'pandas') if m in sys.modules), "
    "file=sys.stderr))"
)


def _env(**extra):
    """A new user's environment: no TF_CPP_MIN_LOG_LEVEL (conftest sets one for the suite)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def _python(code: str, *args: str, **env):
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, time.perf_counter() - start


def _cli(*args: str):
    """`tfp-vae ARGS` as the console script runs it, reporting its heavy imports on stderr."""
    code = f"{REPORT_IMPORTS}; sys.argv[0] = 'tfp-vae'; from tfp_vae.cli import main; sys.exit(main())"
    return _python(code, *args)


def _imported(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("IMPORTED"))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("train", "--help"),
        ("sweep", "--help"),
        ("evaluate", "--help"),
        ("show", "--help"),
        ("study", "--help"),
        ("export", "--help"),
    ],
)
def test_help_answers_without_tensorflow(args):
    done, seconds = _cli(*args)
    assert done.returncode == 0, done.stderr
    assert "usage: tfp-vae" in done.stdout
    assert _imported(done.stderr) == "IMPORTED []"
    assert seconds < START_LIMIT, f"tfp-vae {' '.join(args)} took {seconds:.2f} s"


def test_help_lists_every_choice():
    done, _ = _cli("train", "--help")
    assert "{bernoulli,beta,continuous_bernoulli,discretized_logistic,normal,normal_fixed}" in done.stdout
    assert "{default,mirrored,multiworker}" in done.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        # a bad choice: the flag, the near names and every name, in one line
        (
            ("train", "--out", "r", "--likelihood", "gaussian"),
            "argument --likelihood: 'gaussian': unknown likelihood family (did you mean 'normal' or "
            "'normal_fixed'?); choose one of ['bernoulli', 'beta', 'continuous_bernoulli', "
            "'discretized_logistic', 'normal', 'normal_fixed'].",
        ),
        (("train", "--out", "r", "--encoder", "cnv"), "(did you mean 'conv'?)"),
        (("train", "--out", "r", "--strategy", "mirror"), "(did you mean 'mirrored'?)"),
        (("train", "--out", "r", "--kl", "sample"), "unknown KL mode (did you mean 'sampled'?)"),
        # a value VAEConfig refuses: named by the flag the user typed
        (("train", "--out", "r", "--latent-dim", "0"), "--latent-dim 0: must be an integer >= 1."),
        (("train", "--out", "r", "--prior", "vamp"), "--kl 'exact': the 'vamp' prior has no analytic KL"),
        (("train", "--out", "r", "--latent-dim", "two"), "argument --latent-dim: invalid int value: 'two'"),
        (("train",), "the following arguments are required: --out"),
        (("trian",), "argument command: invalid choice: 'trian'"),
    ],
)
def test_argument_errors_are_one_short_line_without_tensorflow(tmp_path, args, says):
    done, seconds = _cli(*args)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("IMPORTED")]
    assert says in errors[0], done.stderr
    assert len(errors) <= 2 and "usage:" not in done.stderr, done.stderr  # no usage dump
    assert _imported(done.stderr) == "IMPORTED []"
    assert seconds < START_LIMIT, f"tfp-vae {' '.join(args)} took {seconds:.2f} s"
    assert not (tmp_path / "r").exists()


def test_import_is_silent_and_light():
    done, seconds = _python(f"{REPORT_IMPORTS}; import tfp_vae; tfp_vae.VAEConfig(latent_dim=3)")
    assert done.returncode == 0
    assert done.stderr.splitlines() == ["IMPORTED []"]
    assert seconds < START_LIMIT


def test_building_and_using_a_model_is_silent():
    code = (
        "import numpy as np, tfp_vae\n"
        "model = tfp_vae.build_vae(tfp_vae.VAEConfig(latent_dim=2, hidden_units=(8,)))\n"
        "x = np.random.default_rng(0).random([4, 28, 28, 1]).astype('float32')\n"  # grey levels: warns
        "for _ in range(3):\n"
        "    model.compile(optimizer='adam'); model.fit(x, epochs=2, verbose=0)\n"
        "print(tfp_vae.evaluate(model, x, num_samples=2)['elbo'] < 0)\n"
    )
    done, _ = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    lines = done.stderr.strip().splitlines()
    # Nothing from TensorFlow's C++ side; the toolkit's one warning about grey levels, once.
    assert [line for line in lines if "NonBinaryBernoulliWarning" in line] == [lines[0]], done.stderr
    assert len(lines) == 2, done.stderr  # the warning and the source line it points at


def test_a_chosen_log_level_brings_the_notices_back():
    done, _ = _python("import tfp_vae; tfp_vae.build_vae()", TF_CPP_MIN_LOG_LEVEL="0")
    assert done.returncode == 0
    # TensorFlow's C++ log lines ("I0000 00:00:..."); which notices appear depends on the CPU
    # (the oneDNN notice is printed on some machines only)
    assert re.search(r"^[IWE]\d{4} \d\d:\d\d:", done.stderr, re.MULTILINE), done.stderr


@pytest.mark.parametrize("package", ["model", "runs", "evaluation", "training", "studies", "plots"])
def test_every_subpackage_imports_tensorflow_quietly(package):
    done, _ = _python(f"import tfp_vae.{package}")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
