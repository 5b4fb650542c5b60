"""The model registry: everything about pushed versions, in one package.

- :mod:`~cyclegan_tfx.registry.store`: `serving/<name>/registry.json` (what each version is and
  where it came from), the `production` pointer, promotion and rollback.
- :mod:`~cyclegan_tfx.registry.tfserving`: TF Serving's model config (its protos) and its
  status API (a label moves only once the version is loaded).
- :mod:`~cyclegan_tfx.registry.record`: recording the version a run pushed (and registering
  versions after the fact) from ML Metadata.
- :mod:`~cyclegan_tfx.registry.lineage`: a served version back to its TFX artifacts and
  executions in ML Metadata.
- :mod:`~cyclegan_tfx.registry.provenance`: data version (data.dvc), git commit, params hash.
- :mod:`~cyclegan_tfx.registry.tags`: registrations and stage assignments as GTO git tags.
- :mod:`~cyclegan_tfx.registry.cli`: the command line (`cyclegan-tfx models ...`).
"""
