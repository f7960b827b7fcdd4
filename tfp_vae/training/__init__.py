"""Training: the run protocol around `VAE.fit`, checkpoints, reproducibility, distribution.

    trainer       `train(config, out_dir)`: a resumable run into a run directory
    protocol      validation criterion, early stopping, learning-rate schedules
    checkpoint    a commit per epoch and `status.json`
    reproducible  the stateless data order; deterministic kernels
    distribute    tf.distribute strategies by name
    warm_start    starting from another run's trained encoder and decoder
    tensorboard   the `--tensorboard` callback

May use `tfp_vae.evaluation`, `tfp_vae.runs`, `tfp_vae.model`, `tfp_vae.config`, `tfp_vae.data`.
"""

import tfp_vae
from tfp_vae import quiet

quiet.import_tensorflow()  # TensorFlow's import-time C++ notices off, before its first import

from tfp_vae.training.distribute import make_strategy
from tfp_vae.training.protocol import LRSchedule
from tfp_vae.training.reproducible import op_determinism
from tfp_vae.training.tensorboard import TensorBoardLogs
from tfp_vae.training.trainer import load_data_for, make_optimizer, train

__all__ = tfp_vae.exported_by(__name__)
