"""ImportExampleGen whose cache key follows the content of its input files, not their mtimes.

TFX wiring only (the hashing is :func:`cyclegan_tfx.data.fingerprint.files_fingerprint`). The
stock driver of ImportExampleGen puts a fingerprint of the files' modification times into the
execution (`input_fingerprint`), so byte-identical files written again make a new Examples
artifact, and every component after it misses the cache. This driver computes the same span
and version, and a fingerprint of the bytes: identical data is a cache hit all the way to the
Pusher, changed data re-executes.

LocalDagRunner runs a component's `DRIVER_CLASS`; the Kubeflow V2 compiler does not (it runs
its own pre-cache-check command, tensorflow/tfx#6722), so `pipeline/kubeflow_runner.py` points
that command at this module: `python -m components.example_gen` is the KFP driver with this
input processor.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor

from cyclegan_tfx.data.fingerprint import files_fingerprint

COMPONENT_ID = "ImportExampleGen"
"""The node id (the stock component's), which reports and lineage look nodes up by."""


class ContentFingerprintInputProcessor(input_processor.FileBasedInputProcessor):
    """Span and version resolved as the stock processor does; the fingerprint is content."""

    def resolve_span_and_version(self):
        """Resolves span and version (checking the patterns), then fingerprints the files."""
        span, version = super().resolve_span_and_version()
        self._fingerprint = "\n".join(
            files_fingerprint(
                split.name,
                self._input_base_uri,
                self.get_pattern_for_span_version(split.pattern, span, version),
            )
            for split in self._splits
        )
        return span, version


class ContentFingerprintDriver(example_gen_driver.FileBasedDriver):
    """The ExampleGen driver with :class:`ContentFingerprintInputProcessor`."""

    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        """The content-fingerprinting input processor."""
        if not input_base_uri:
            raise ValueError("ImportExampleGen needs an input_base")
        return ContentFingerprintInputProcessor(input_base_uri, splits, range_config)


class ContentImportExampleGen(tfx.components.ImportExampleGen):
    """`tfx.components.ImportExampleGen` with :class:`ContentFingerprintDriver`."""

    DRIVER_CLASS = ContentFingerprintDriver


def _kubeflow_driver_main() -> None:
    """Kubeflow V2's ExampleGen pre-cache-check driver, with the content fingerprint."""
    from absl import app
    from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver as kfp_driver

    class _Processors:  # what the KFP driver looks up as `input_processor.<name>`
        FileBasedInputProcessor = ContentFingerprintInputProcessor

    kfp_driver.input_processor = _Processors
    app.run(kfp_driver.main, flags_parser=kfp_driver._parse_flags)


if __name__ == "__main__":
    _kubeflow_driver_main()
