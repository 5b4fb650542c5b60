"""The local runner's log: notices a user can do nothing about are dropped, nothing else."""

from __future__ import annotations

import logging

from pipeline.local_runner import UNACTIONABLE_NOTICES, _DropNotices


def _record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)


def test_the_known_notices_are_dropped_and_other_warnings_kept():
    beam = "apache_beam.runners.worker.data_plane"
    seen = {
        "absl": "ArtifactQuery.property_predicate is not supported.",
        beam: "Data output stream buffer size 590549339 exceeds 536870912 bytes. This is ...",
    }
    for name, message in seen.items():
        drop = _DropNotices(UNACTIONABLE_NOTICES[name])
        assert not drop.filter(_record(name, message))
        assert drop.filter(_record(name, "Data output stream closed unexpectedly"))
