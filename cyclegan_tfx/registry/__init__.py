"""Model registry of the pushed CycleGAN versions (TF Serving layout).

- :mod:`cyclegan_tfx.registry.store`: `serving/<name>/registry.json` (what each version is and
  where it came from), the `production` pointer, the TF Serving model config, promotion and
  rollback.
- :mod:`cyclegan_tfx.registry.provenance`: data version (data.dvc), git commit, params hash.
- :mod:`cyclegan_tfx.registry.lineage`: a served version back to its TFX artifacts and
  executions in ML Metadata.
- :mod:`cyclegan_tfx.registry.gittags`: GTO-style git tags for registrations and stages.

The command line is `python -m cyclegan_tfx.models`.
"""
