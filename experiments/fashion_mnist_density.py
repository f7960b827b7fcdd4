"""The standard Fashion-MNIST density-estimation benchmark, resumable under a wall-clock budget.

Setting (as in the literature, e.g. Exemplar VAE, Norouzi et al. 2020, Gaussian-prior VAE:
-228.70 nats): dynamically binarized training images, binarized test images, MLP encoder and
decoder with two hidden layers of 300 units, z = 40, Bernoulli decoder, N(0, I) prior, and test
log p(x) estimated with 5,000 importance samples. Our posterior is a full-covariance Gaussian.

Protocol:
  * the last 10,000 training images are a validation split (binarized once, seed fixed); the model
    trains on the other 50,000, re-binarized every step;
  * early stopping on the validation negative ELBO (patience in epochs); the run directory always
    holds the best weights so far (config.json + model.weights.h5, loadable with tfp_vae.load);
  * optional linear KL warm-up (beta from 0 to 1 over the first epochs);
  * a full checkpoint (weights, optimizer, counters) after every epoch in RUN_DIR/checkpoint/, so
    a run stopped by its time budget (or killed) resumes where it stopped when started again with
    the same --out;
  * when training has finished (early stop or --max-epochs), or with --evaluate-now, and
    --num-samples > 0, the best model is evaluated on the 10,000 test images in resumable shards of
    500 (RUN_DIR/eval_K<k>/, running summary in metrics_partial.json) and RUN_DIR/metrics.json is
    written. K = 5000 costs about 50M decoder passes: ~35-55 min on 2 shared CPU cores.

    PYTHONPATH=. python experiments/fashion_mnist_density.py --out runs/fmnist_density \
        --budget-minutes 60            # train for an hour; run again to continue
    PYTHONPATH=. python experiments/fashion_mnist_density.py --out runs/fmnist_density \
        --budget-minutes 0 --num-samples 5000   # stop training here and evaluate the best model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

import tfp_vae
from tfp_vae import runs
from tfp_vae.data import binarize_images
from tfp_vae.evaluate import posterior_means

STATE_FILE = "training_state.json"
VALIDATION_SIZE = 10_000


def benchmark_config(args) -> tfp_vae.VAEConfig:
    return tfp_vae.VAEConfig(
        latent_dim=40, encoder="mlp", hidden_units=(300, 300), likelihood="bernoulli",
        binarize="dynamic", kl="exact", beta=1.0, batch_size=args.batch_size,
        epochs=args.max_epochs, learning_rate=args.learning_rate, seed=args.seed,
    )


def split(config, data_dir):
    """(x_train grey [50000], x_val binary [10000], x_test binary [10000])."""
    (x, _), (x_test, _) = tfp_vae.load_data_for(config, data_dir)
    x_train, x_val = x[:-VALIDATION_SIZE], x[-VALIDATION_SIZE:]
    return x_train, binarize_images(x_val, config.seed + 2), x_test


class WarmUp(tf_keras.callbacks.Callback):
    """Sets beta = min(1, (epoch + step fraction) / warmup_epochs) on the model's KL divergence."""

    def __init__(self, beta: tf.Variable, warmup_epochs: int, steps_per_epoch: int, epoch: int):
        super().__init__()
        self.beta, self.warmup, self.steps, self.epoch = beta, warmup_epochs, steps_per_epoch, epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.warmup > 0:
            self.beta.assign(min(1.0, (self.epoch + batch / self.steps) / self.warmup))


def train(args) -> dict:
    out = Path(args.out)
    config = benchmark_config(args)
    x_train, x_val, x_test = split(config, args.data_dir)

    model = tfp_vae.build_vae(config)
    if not (out / runs.LATENTS_BEFORE).is_file():
        # build_vae seeds from the config, so this is the untrained model even when resuming.
        index = np.arange(runs.LATENT_EXAMPLES)
        runs.save_latents(posterior_means(model, x_test[index]), index, out)
    # The KL weight becomes a variable so warm-up can change it between steps; at 1.0 the loss is
    # exactly the negative ELBO (the validation figures are always reported at beta = 1 below).
    beta = tf.Variable(1.0, trainable=False, name="beta")
    model.encoder.get_layer("posterior").activity_regularizer.divergence.beta = beta
    optimizer = tf_keras.optimizers.Adam(config.learning_rate)
    model.compile(optimizer=optimizer)

    state = {"epoch": 0, "best_val_loss": float("inf"), "best_epoch": -1, "wait": 0,
             "seconds": 0.0, "done": False, "history": {}}
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(out / "checkpoint"), max_to_keep=1)
    if manager.latest_checkpoint and (out / STATE_FILE).is_file():
        # Build the optimizer's slots first so restore fills them rather than deferring.
        model.fit(x_train[:config.batch_size], epochs=1, batch_size=config.batch_size, verbose=0)
        ckpt.restore(manager.latest_checkpoint).assert_consumed()
        state = json.loads((out / STATE_FILE).read_text())
        print(f"resumed at epoch {state['epoch']} (best val loss {state['best_val_loss']:.2f} "
              f"at epoch {state['best_epoch']}, {state['seconds'] / 60:.1f} min so far)")
    else:
        runs.save_config(config, out)

    started = time.time()
    budget = args.budget_minutes * 60
    steps = int(np.ceil(len(x_train) / config.batch_size))
    while not state["done"] and state["epoch"] < config.epochs:
        spent = time.time() - started
        per_epoch = state["seconds"] / state["epoch"] if state["epoch"] else 0.0
        if spent + per_epoch > budget:
            print(f"time budget reached after {spent / 60:.1f} min this session; rerun to resume.")
            break
        t0 = time.time()
        epoch = state["epoch"]
        warm = WarmUp(beta, args.warmup_epochs, steps, epoch)
        fit = model.fit(x_train, epochs=epoch + 1, initial_epoch=epoch, batch_size=config.batch_size,
                        shuffle=True, verbose=0, callbacks=[warm])
        beta.assign(1.0)
        val = model.evaluate(x_val, batch_size=1000, verbose=0, return_dict=True)
        record = {**{k: v[-1] for k, v in fit.history.items()},
                  **{f"val_{k}": v for k, v in val.items()}}
        for k, v in record.items():
            state["history"].setdefault(k, []).append(float(v))
        state["epoch"] = epoch + 1
        state["seconds"] += time.time() - t0
        warming = epoch + 1 < args.warmup_epochs
        if val["loss"] < state["best_val_loss"] and not warming:
            state.update(best_val_loss=float(val["loss"]), best_epoch=epoch, wait=0)
            runs.save(model, out)
        elif not warming:
            state["wait"] += 1
            state["done"] = state["wait"] >= args.patience
        manager.save()
        runs.save_history(state["history"], out)
        runs.atomic_write_text(out / STATE_FILE, json.dumps(state, indent=1))
        print(f"epoch {epoch + 1}: loss {record['loss']:.2f} val_loss {val['loss']:.2f} "
              f"(nll {val['nll']:.2f}, kl {val['kl']:.2f}) best epoch {state['best_epoch'] + 1} "
              f"[{time.time() - t0:.0f}s]", flush=True)
    if state["epoch"] >= config.epochs:
        state["done"] = True
    return state


EVAL_SHARD = 500  # test images per resumable evaluation shard


def evaluate_best(args, state) -> dict:
    """Evaluates the best model on the test images in shards of EVAL_SHARD, each saved as it ends
    (RUN_DIR/eval_K<k>/shard_<i>.json), so a stopped evaluation resumes; a running summary of the
    shards done so far is in RUN_DIR/metrics_partial.json, the final one in metrics.json."""
    from tfp_vae.evaluate import active_units, evaluate, posterior_means

    out = Path(args.out)
    model = tfp_vae.load(out)
    _, _, x_test = split(model.config, args.data_dir)
    shard_dir = out / f"eval_K{args.num_samples}"
    shard_dir.mkdir(exist_ok=True)
    starts = range(0, len(x_test), EVAL_SHARD)
    t0 = time.time()
    for i, start in enumerate(starts):
        path = shard_dir / f"shard_{i:03d}.json"
        if path.is_file():
            continue
        ts = time.time()
        xs = x_test[start:start + EVAL_SHARD]
        metrics = evaluate(model, xs, num_samples=args.num_samples, batch_size=args.eval_batch_size)
        record = {k: np.asarray(v).tolist() for k, v in metrics.items()}
        record.update(images=len(xs), seconds=time.time() - ts)
        runs.atomic_write_text(path, json.dumps(record))
        summary = _combine(shard_dir)
        runs.atomic_write_text(out / "metrics_partial.json", json.dumps(summary, indent=2))
        print(f"shard {i + 1}/{len(starts)}: iwae so far {summary['iwae']:.2f} "
              f"+- {summary['iwae_standard_error']:.2f} on {summary['test_images']} images "
              f"[{record['seconds']:.0f}s]", flush=True)
    summary = _combine(shard_dir)
    seconds = summary.pop("seconds")
    pixels = int(np.prod(model.config.input_shape))
    report = {  # the layout of `tfp-vae evaluate`'s metrics.json, plus the training record
        **summary,
        "bits_per_dim": -summary["iwae"] / (pixels * np.log(2)),
        "active_units": active_units(posterior_means(model, x_test)),
        "num_samples": args.num_samples,
        "epochs_trained": state["epoch"],
        "best_epoch": state["best_epoch"] + 1,
        "training_minutes": round(state["seconds"] / 60, 1),
        "evaluation_minutes": round(seconds / 60, 1),
        "early_stopped": bool(state["done"]),
    }
    runs.atomic_write_text(out / runs.METRICS_FILE, json.dumps(report, indent=2))
    print(f"test log p(x) (IWAE, K={args.num_samples}): {report['iwae']:.2f} nats; "
          f"ELBO {report['elbo']:.2f}; active units {report['active_units']}; "
          f"best epoch {state['best_epoch'] + 1} of {state['epoch']}; "
          f"training {state['seconds'] / 60:.1f} min, evaluation {(time.time() - t0) / 60:.1f} min")
    return report


def _combine(shard_dir: Path) -> dict:
    """Image-weighted means of the shards' per-example means; the IWAE's standard error from the
    spread of the shard means."""
    shards = [json.loads(p.read_text()) for p in sorted(shard_dir.glob("shard_*.json"))]
    n = np.array([s["images"] for s in shards], float)
    mean = {k: np.average([np.asarray(s[k]) for s in shards], axis=0, weights=n)
            for k in ("elbo", "nll", "kl", "iwae", "kl_per_dim")}
    iwae = np.array([s["iwae"] for s in shards])
    spread = np.sqrt(np.average((iwae - mean["iwae"]) ** 2, weights=n) / max(len(shards) - 1, 1))
    return {**{k: np.asarray(v).tolist() for k, v in mean.items()},
            "iwae_standard_error": float(spread), "test_images": int(n.sum()),
            "seconds": float(sum(s["seconds"] for s in shards))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/fmnist_density", help="run directory (resumed if it exists)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: $TFP_VAE_DATA_DIR)")
    parser.add_argument("--budget-minutes", type=float, default=120,
                        help="wall-clock training budget of this session; no epoch starts that would overrun it")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--patience", type=int, default=30, help="epochs without validation improvement before stopping")
    parser.add_argument("--warmup-epochs", type=int, default=0, help="linear KL warm-up length (0: none)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=5000,
                        help="importance samples for the test log-likelihood (0: skip evaluation)")
    parser.add_argument("--eval-batch-size", type=int, default=50,
                        help="test images per evaluation chunk (memory ~ batch x samples x 784 floats)")
    parser.add_argument("--evaluate-now", action="store_true",
                        help="evaluate the best model so far even if training has not finished")
    args = parser.parse_args(argv)
    # The training images are grey on purpose: the model re-binarizes them every step.
    warnings.filterwarnings("ignore", message="Bernoulli likelihood on non-binary")
    state = train(args)
    if args.num_samples > 0 and (state["done"] or args.evaluate_now):
        evaluate_best(args, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
