"""Studies: grids of runs (beta x seeds x any field) and tables of runs side by side.

    grid    `sweep`: train and evaluate every point of a grid, resumable and shardable; results.csv
    table   `runs_table`: run directories side by side (`tfp-vae show`)
    beta_study  `study_table`, `study_summary`: the β-VAE study's metrics by milestone (`tfp-vae study`);
                `study_kl_per_dim`: the rate of each latent per run
    families  `family_table`: likelihood families ranked in bits per dimension of 8-bit images
    export    `export_run`: a run directory made shippable, without the optimizer's state (`tfp-vae export`)

May use `tfp_vae.training` and everything below it.
"""

import tfp_vae
from tfp_vae import quiet

quiet.import_tensorflow()  # TensorFlow's import-time C++ notices off, before its first import

from tfp_vae.studies.beta_study import study_kl_per_dim, study_summary, study_table
from tfp_vae.studies.export import export_run
from tfp_vae.studies.families import family_table
from tfp_vae.studies.grid import SweepPoint, grid_points, load_results, shard_points, sweep
from tfp_vae.studies.table import runs_table

__all__ = tfp_vae.exported_by(__name__)
