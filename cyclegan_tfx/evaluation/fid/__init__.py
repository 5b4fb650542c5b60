"""Fréchet Inception Distance and Kernel Inception Distance.

`distance` is pure numpy (float64: statistics, FID, KID), `beam` runs the statistics
distributed, `reference` computes and caches the statistics of an image set, `backbone` (which
imports TensorFlow lazily) provides the feature extractors and `download` the opt-in download
of the standard weights. `python -m cyclegan_tfx.evaluation.fid DIR_A DIR_B` compares two
image folders. Import the submodules directly; this package imports nothing heavy.
"""
