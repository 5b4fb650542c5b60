"""The colour-transfer baseline in the Beam job: fitted on the training split, applied to test.

Each domain's Lab statistics are summed over its training images: :func:`image_sums` per image,
grouped by domain, and :func:`domain_stats` adds them in SHA-256 order, so the statistics (and
the files) are the same bits whatever the runner's parallelism. Then every test image gets the
baseline's translation into the other domain as its `colour_transfer` feature
(:func:`with_colour_transfer`), which the Evaluator scores like a model
(:mod:`cyclegan_tfx.evaluation.colour_transfer`). The statistics reach the test images by a
join on the domain (CoGroupByKey), not a side input: with an `AsDict` side input, Beam 2.74's
DaskRunner gave the test images statistics that were not the domain's (tests/dask_test.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cyclegan_tfx.data import schema
from cyclegan_tfx.evaluation.colour_transfer import ChannelStats, ChannelSums, transfer
from cyclegan_tfx.image_grid import decode_png, png_bytes


def image_sums(record: Any) -> tuple[str, tuple[str, ChannelSums]]:
    """A training record -> (its domain, (its SHA-256, its Lab sums))."""
    return record.domain, (record.sha256, ChannelSums().add(decode_png(record.png)))


def domain_stats(domain: str, sums: Iterable[tuple[str, ChannelSums]]) -> tuple[str, dict]:
    """A domain's per-image sums -> (domain, its :class:`ChannelStats` as a dict).

    Summed in SHA-256 order, so the result is the same bits whatever the runner's partitions.
    """
    total = ChannelSums()
    for _, image in sorted(sums, key=lambda item: item[0]):
        total = total.merge(image)
    return domain, total.stats().to_dict()


def stats_for_join(domain: str, stats: dict) -> list[tuple[str, tuple[str, dict]]]:
    """A domain's statistics, keyed for the join: its own images' source, the other's target."""
    return [(domain, ("source", stats)), (schema.other_domain(domain), ("target", stats))]


def with_colour_transfer(domain: str, grouped: dict[str, Iterable]) -> Iterator[Any]:
    """One domain's test records and statistics (a CoGroupByKey) -> the records, translated.

    Without statistics (a domain with no training images, which the Trainer refuses) the
    records pass unchanged.
    """
    ends = dict(grouped["stats"])
    for record in grouped["records"]:
        if "source" not in ends or "target" not in ends:
            yield record
            continue
        source, target = (
            ChannelStats.from_dict(ends["source"]),
            ChannelStats.from_dict(ends["target"]),
        )
        translated = transfer(decode_png(record.png), source, target)
        yield record._replace(colour_transfer=png_bytes(translated))
