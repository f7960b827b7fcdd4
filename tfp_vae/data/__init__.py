"""Where images come from: files, sources and their scaling for a likelihood family (numpy only).

    idx       Fashion-MNIST and MNIST from their IDX files (`DATASETS`, `load_uint8`)
    dsprites  the dSprites grid of five known factors, rendered here
    sources   registry `SOURCES`: built-in, dSprites, .npz/.npy files, folders of images
    pixels    scaling, binarizing and support checks for a family (`scale_images`, `check_images`)
    load      data sets scaled for a family (`load_dataset`, `load_fashion_mnist`, `prepare`)

Uses only `tfp_vae.errors`, `tfp_vae.registry` and `tfp_vae.choices`; TensorFlow is never imported.
"""

import tfp_vae
from tfp_vae.data.dsprites import DSprites, load_dsprites
from tfp_vae.data.idx import CLASS_NAMES, DATASETS, FILES, Splits, load_uint8
from tfp_vae.data.load import load_dataset, load_fashion_mnist, load_mnist, prepare
from tfp_vae.data.pixels import SCALINGS, SUPPORTS, binarize_images, check_images, check_labels, scale_images
from tfp_vae.data.sources import SOURCES, load_raw

__all__ = [*tfp_vae.exported_by(__name__), "FILES", "SCALINGS", "SUPPORTS", "Splits", "load_raw", "prepare"]
