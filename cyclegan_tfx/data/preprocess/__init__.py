"""Beam preprocessing job: raw CycleGAN-layout images -> validated, deduplicated TFRecords.

Run it with `python -m cyclegan_tfx.data.preprocess`. :mod:`.images` holds the pure image functions,
:mod:`.beam_pipeline` the Beam graph.
"""
