"""Run directories: the files a run keeps (config, weights, history, data record) and its lock.

    files        atomic writes; save/load a model, its config, history and latents
    fingerprint  data.json: what a run was trained on, so changed data is refused later
    locks        one writer per run directory at a time

May use `tfp_vae.model`, `tfp_vae.config` and `tfp_vae.data`.
"""

import tfp_vae
from tfp_vae import quiet

quiet.import_tensorflow()  # TensorFlow's import-time C++ notices off, before its first import

from tfp_vae.runs.files import load, load_config, load_history, save
from tfp_vae.runs.locks import RunDirBusyError, run_lock

__all__ = tfp_vae.exported_by(__name__)
