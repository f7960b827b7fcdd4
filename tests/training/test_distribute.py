"""tf.distribute: the loss stays the per-example mean over the global batch under every strategy.

Each test runs in fresh subprocesses: logical devices and multi-worker collectives must be set up
before TensorFlow starts, which the test process has long done.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from conftest import REPO

ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "TF_CPP_MIN_LOG_LEVEL": "3"}

# Two logical CPUs; the posterior's tensor value is its mean, so that one device and two replicas
# see the same z and their losses and updates must agree to float rounding.
MIRRORED = textwrap.dedent("""
    import functools, json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np, tensorflow_probability as tfp, tf_keras
    import tfp_vae, tfp_vae.model.posterior
    from conftest import grey_images
    tfp_vae.model.posterior.PosteriorTriL = functools.partial(
        tfp_vae.model.posterior.PosteriorTriL, convert_to_tensor_fn=tfp.distributions.Distribution.mean)
    CFG = tfp_vae.VAEConfig(hidden_units=(8,), likelihood="beta", beta=0.5, seed=1)
    TWO = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    ONE = tf.distribute.get_strategy()
    out = {"replicas": TWO.num_replicas_in_sync}

    def one_epoch(strategy, n, batch, clip):
        x = grey_images(n, likelihood="beta")
        with strategy.scope():
            model = tfp_vae.build_vae(CFG)
            model.compile(optimizer=tf_keras.optimizers.SGD(1e-2, global_clipnorm=clip))
        before = [v.numpy() for v in model.trainable_variables]
        exact = float(model.loss_terms(x)["loss"])  # one device, initial weights
        hist = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(batch), epochs=1, verbose=0)
        after = [v.numpy() for v in model.trainable_variables]
        return {"loss": hist.history["loss"][0], "exact": exact,
                "update": [(a - b).tolist() for a, b in zip(after, before)]}

    # 41 in one batch: replicas of 21 and 20; 33 in batches of 32: the second batch (1 image)
    # leaves one replica empty.
    for name, n, batch, clip in [("uneven", 41, 41, None), ("clipped", 41, 41, 1.0),
                                 ("empty_replica", 33, 32, None)]:
        out[name] = {"one": one_epoch(ONE, n, batch, clip), "two": one_epoch(TWO, n, batch, clip)}

    data = ((grey_images(50, likelihood="beta"), None), (grey_images(10, seed=1, likelihood="beta"), None))
    cfg = CFG.replace(epochs=1, batch_size=16)
    runs = {}
    for name, strategy in (("one", ONE), ("two", TWO)):
        model, history = tfp_vae.train(cfg, sys.argv[1] + "/" + name, data=data, verbose=0,
                                       strategy=strategy)
        runs[name] = {"history": history, "weights": [v.numpy().tolist() for v in model.trainable_variables]}
    out["train"] = runs
    print("RESULT" + json.dumps(out))
""")


def _result(stdout):
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


def _assert_same_update(one, two):
    for a, b in zip(one, two):
        a, b = np.asarray(a), np.asarray(b)
        # atol: elements a thousand times smaller than the largest are sums of cancelling terms,
        # which two replicas add in another order (seen 0.4e-8 apart at 3e-8 on one CPU)
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * np.abs(a).max() + 1e-9)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    run = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path_factory.mktemp("mirrored"))],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return _result(run.stdout)


@pytest.mark.parametrize("case", ["uneven", "clipped", "empty_replica"])
def test_mirrored_step_equals_one_device(mirrored, case):
    assert mirrored["replicas"] == 2
    one, two = mirrored[case]["one"], mirrored[case]["two"]
    # Equal up to float32 summation order (an XLA-compiled step sums in shape-dependent order);
    # weighting the replicas 1/2 each instead of 21/41 and 20/41 would be off by ~1e-3.
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    if case != "empty_replica":  # a single step: the loss is the global mean at the initial weights
        np.testing.assert_allclose(one["loss"], one["exact"], rtol=1e-5)
    _assert_same_update(one["update"], two["update"])
    assert max(np.abs(np.asarray(u)).max() for u in one["update"]) > 1e-4  # a real update


def test_mirrored_training_run_equals_one_device(mirrored):
    one, two = mirrored["train"]["one"], mirrored["train"]["two"]
    assert one["history"].keys() == two["history"].keys()
    for key in one["history"]:
        np.testing.assert_allclose(two["history"][key], one["history"][key], rtol=1e-5, err_msg=key)
    _assert_same_update(one["weights"], two["weights"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_an_epoch_and_agree(tmp_path, data_dir):
    hosts = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "tfp_vae.cli",
        "train",
        "--strategy",
        "multiworker",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--train-examples",
        "200",
        "--batch-size",
        "50",
        "--hidden-units",
        "8",
        "--epochs",
        "1",
        "--verbose",
        "0",
    ]
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        workers.append(
            subprocess.Popen(
                command,
                env={**ENV, "TF_CONFIG": json.dumps(config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [w.communicate(timeout=400) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (_, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-4000:]
    chief, other = out / "model.weights.h5", out / "workers" / "worker-1" / "model.weights.h5"
    with h5py.File(chief, "r") as a, h5py.File(other, "r") as b:
        names = []
        a.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert len(names) >= 8
        for name in names:
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "complete" and status["epochs_done"] == 1
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
