"""Fréchet Inception Distance: feature statistics, distances and feature extractors.

`distance` is pure numpy (float64), `beam` runs the statistics distributed, and `backbone`
(which imports TensorFlow) provides the feature extractors. Import the submodules directly;
this package imports nothing heavy.
"""
