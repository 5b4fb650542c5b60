"""Translation quality on a test split: every number of the gate, the reports and the studies.

One path for every caller. The TFX Evaluator's TFMA metric (`components/quality_metrics.py`)
feeds examples batch by batch and merges partial results across Beam workers; the in-memory
scorer (:mod:`cyclegan_tfx.evaluation.scorer`: studies, curves, benchmarks) feeds a whole test
split. Both add examples to :class:`QualitySets` and end in :func:`quality_scores`, so adding a
metric means its math, its key (:mod:`.metric_keys`) and, to gate on it, the gate.

Per direction (`a2b`: the test A images translated, judged against the real test B images;
key names in :mod:`cyclegan_tfx.evaluation.metric_keys`):

- FID and KID of the translations against the real target images, their bootstrap spreads
  over the test images (:mod:`cyclegan_tfx.evaluation.fid.spreads`), N;
- doing nothing: FID of the untranslated source images (`fid_<d>_identity`) and the ratio;
- the colour-transfer baseline (:mod:`cyclegan_tfx.evaluation.colour_transfer`, written into
  the test examples by the preprocessing job): its FID and the ratio to it;
- with ground truth: FID of the true translations (the floor) and the share of the gap from
  doing nothing to it that the translation closes; MAE / PSNR / SSIM of the translation, of
  doing nothing and of colour transfer against the truth, with spreads, and the MAE ratios;
- optional absolute FID/KID bounds, applied only with the backbone they were calibrated on.

Memory does not grow with the test split: each image set holds at most one batch of waiting
images, mergeable FID sums and a bounded sample of feature rows (those of the images with the
smallest content digests, identical however the data is split). A translation, a ground truth
and a colour transfer are keyed by their source image's digest, so all samples hold the same
images, row for row; the feature cache is keyed by each image's own content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from cyclegan_tfx.config import DIRECTIONS
from cyclegan_tfx.data import schema
from cyclegan_tfx.evaluation import paired_metrics
from cyclegan_tfx.evaluation.fid.backbone import Backbone
from cyclegan_tfx.evaluation.fid.distance import (
    fid_from_rows,
    fid_from_stats,
    fid_gap_closed,
    kernel_inception_distance,
)
from cyclegan_tfx.evaluation.fid.reference import FeatureCache, StreamingFeatures, image_digest
from cyclegan_tfx.evaluation.fid.spreads import (
    bootstrap_fid_gap_closed_std,
    bootstrap_fid_ratio_std,
    bootstrap_fid_std,
    bootstrap_kid_std,
)
from cyclegan_tfx.evaluation.metric_keys import KEYS, PAIRED_METRICS, DirectionKeys

KID_SEED = 0
"""Seed of the KID subset sampling (the same for every model)."""
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap resampling (the same for every model)."""
SOURCE_DOMAIN = {"a2b": "A", "b2a": "B"}
TARGET_DOMAIN = {"a2b": "B", "b2a": "A"}
DIRECTION_OF_DOMAIN = {"A": "a2b", "B": "b2a"}


@dataclasses.dataclass(frozen=True)
class QualitySettings:
    """How the scores are computed (params.yaml `evaluate`)."""

    batch_size: int = 16
    kid_num_subsets: int = 100
    kid_subset_size: int = 1000
    kid_max_samples: int = 2000
    bootstrap_samples: int = 100
    ground_truth: bool = False
    fid_bound: dict[str, Any] = dataclasses.field(default_factory=dict)
    kid_bound: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class PairedLists:
    """Per-image ground-truth scores of one direction: translation, doing nothing, colour."""

    translated: list[paired_metrics.PairedScores] = dataclasses.field(default_factory=list)
    identity: list[paired_metrics.PairedScores] = dataclasses.field(default_factory=list)
    colour: list[paired_metrics.PairedScores] = dataclasses.field(default_factory=list)

    def merge(self, other: PairedLists) -> None:
        """Appends `other`'s scores."""
        self.translated.extend(other.translated)
        self.identity.extend(other.identity)
        self.colour.extend(other.colour)


def _sides(max_samples: int, names: tuple[str, ...]) -> dict[str, StreamingFeatures]:
    return {name: StreamingFeatures(max_samples) for name in names}


@dataclasses.dataclass
class QualitySets:
    """The image sets of a test split, fed one example at a time; mergeable.

    Attributes:
        real: The real test images per domain.
        fake: The translations per direction.
        truth: Their true translations per direction (with ground truth).
        colour: The colour-transfer baseline's images per direction.
        paired: Per-image ground-truth scores per direction.
    """

    real: dict[str, StreamingFeatures]
    fake: dict[str, StreamingFeatures]
    truth: dict[str, StreamingFeatures]
    colour: dict[str, StreamingFeatures]
    paired: dict[str, PairedLists]

    @classmethod
    def empty(cls, max_samples: int) -> QualitySets:
        """No images yet; feature samples of at most `max_samples` rows."""
        return cls(
            real=_sides(max_samples, schema.DOMAINS),
            fake=_sides(max_samples, DIRECTIONS),
            truth=_sides(max_samples, DIRECTIONS),
            colour=_sides(max_samples, DIRECTIONS),
            paired={d: PairedLists() for d in DIRECTIONS},
        )

    def add(
        self,
        real: np.ndarray,
        translated: np.ndarray,
        domain: str,
        truth: np.ndarray | None = None,
        colour: np.ndarray | None = None,
    ) -> None:
        """Adds one test example: its image, its translation, truth and colour transfer."""
        direction = DIRECTION_OF_DOMAIN[domain]
        digest = image_digest(real)
        self.real[domain].add(real, digest)
        self.fake[direction].add(translated, digest)
        if colour is not None:
            self.colour[direction].add(colour, digest, cache_key=image_digest(colour))
        if truth is None:
            return
        self.truth[direction].add(truth, digest, cache_key=image_digest(truth))
        scores = self.paired[direction]
        scores.translated.append(paired_metrics.paired_scores(translated, truth))
        scores.identity.append(paired_metrics.paired_scores(real, truth))
        if colour is not None:
            scores.colour.append(paired_metrics.paired_scores(colour, truth))

    def _fixed_sides(self) -> Iterator[StreamingFeatures]:
        """The sets whose images depend on the data only (their features can be cached)."""
        yield from self.real.values()
        yield from self.truth.values()
        yield from self.colour.values()

    def flush(
        self, backbone: Backbone, cache: FeatureCache | None, batch_size: int, force: bool
    ) -> None:
        """Runs the backbone on full batches (every waiting image with `force`)."""
        for side in self.fake.values():
            side.flush(backbone, None, batch_size, force)
        for side in self._fixed_sides():
            side.flush(backbone, cache, batch_size, force)

    def merge(self, other: QualitySets) -> None:
        """Adds `other`'s images and scores into this one, in place."""
        for name in ("real", "fake", "truth", "colour"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for key in mine:
                mine[key].merge(theirs[key])
        for direction in DIRECTIONS:
            self.paired[direction].merge(other.paired[direction])

    def cached(self) -> dict[str, str]:
        """Per domain, how many real images' features came from the cache."""
        return {d: f"{s.cached} of {s.images}" for d, s in self.real.items()}


class _Set:
    """The FID sums and feature sample of one image set, read out."""

    def __init__(self, side: StreamingFeatures) -> None:
        self.stats, self.count = side.stats, side.count()
        self.rows = side.sample.truncated().rows if side.sample is not None else None

    @property
    def complete(self) -> bool:
        """Whether the sample holds every image (FID is then computed from the rows)."""
        return self.rows is not None and len(self.rows) == self.stats.count


def _fid(a: _Set, b: _Set, settings: QualitySettings) -> tuple[float, float | None]:
    """FID and its bootstrap spread; from the rows when the samples hold every image."""
    if a.complete and b.complete:
        value = fid_from_rows(a.rows, b.rows)
    else:
        value = fid_from_stats(a.stats, b.stats)
    spread = bootstrap_fid_std(a.rows, b.rows, settings.bootstrap_samples, seed=BOOTSTRAP_SEED)
    return value, spread


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else float("inf")


def _bound(bound: dict[str, Any], direction: str, value: float, backbone: str):
    """(value / bound, 1) when a bound exists for this backbone, else (0, 0)."""
    limit = bound.get(direction)
    if limit is None or bound.get("backbone") != backbone:
        return 0.0, 0
    return value / limit, 1


def _check_complete(keys: DirectionKeys, what: str, side: _Set, fake: _Set, fix: str) -> None:
    if side.count != fake.count:
        raise ValueError(
            f"{keys.direction}: {what} for {side.count} of {fake.count} test images; the gate "
            f"needs it for every one: {fix}"
        )


def _distances(
    keys: DirectionKeys, sets: dict[str, _Set], settings: QualitySettings, backbone: str
) -> dict[str, Any]:
    fake, source, target = sets["fake"], sets["source"], sets["target"]
    samples = settings.bootstrap_samples
    fid, fid_std = _fid(fake, target, settings)
    identity, identity_std = _fid(source, target, settings)
    kid, _ = kernel_inception_distance(
        fake.rows,
        target.rows,
        num_subsets=settings.kid_num_subsets,
        subset_size=settings.kid_subset_size,
        seed=KID_SEED,
    )
    fid_vs_bound, fid_applied = _bound(settings.fid_bound, keys.direction, fid, backbone)
    kid_vs_bound, kid_applied = _bound(settings.kid_bound, keys.direction, kid, backbone)
    return {
        keys.fid: fid,
        keys.fid_std: fid_std,
        keys.num_fake: fake.count,
        keys.num_real: target.count,
        keys.backbone: backbone,
        keys.fid_identity: identity,
        keys.fid_identity_std: identity_std,
        keys.fid_vs_identity: _ratio(fid, identity),
        keys.fid_vs_identity_std: bootstrap_fid_ratio_std(
            fake.rows, source.rows, target.rows, samples, seed=BOOTSTRAP_SEED
        ),
        keys.fid_vs_bound: fid_vs_bound,
        keys.fid_bound_applied: fid_applied,
        keys.kid: kid,
        keys.kid_std: bootstrap_kid_std(fake.rows, target.rows, samples, seed=BOOTSTRAP_SEED),
        keys.kid_vs_bound: kid_vs_bound,
        keys.kid_bound_applied: kid_applied,
    }


def _colour_distances(
    keys: DirectionKeys, sets: dict[str, _Set], settings: QualitySettings, fid: float
) -> dict[str, Any]:
    fake, colour, target = sets["fake"], sets["colour"], sets["target"]
    _check_complete(keys, "colour transfer", colour, fake, "rerun the preprocessing job")
    value, spread = _fid(colour, target, settings)
    ratio_std = bootstrap_fid_ratio_std(
        fake.rows, colour.rows, target.rows, settings.bootstrap_samples, seed=BOOTSTRAP_SEED
    )
    return {
        keys.fid_colour_transfer: value,
        keys.fid_colour_transfer_std: spread,
        keys.fid_vs_colour_transfer: _ratio(fid, value),
        keys.fid_vs_colour_transfer_std: ratio_std,
    }


def _floor(
    keys: DirectionKeys, sets: dict[str, _Set], settings: QualitySettings, fid: float, identity
) -> dict[str, Any]:
    """FID of the ground truth (the floor) and the share of the gap the translation closes."""
    fake, truth = sets["fake"], sets["truth"]
    fix = "add the missing files or set evaluate.ground_truth: unpaired"
    _check_complete(keys, "ground truth", truth, fake, fix)
    fid_truth, _ = _fid(truth, sets["target"], settings)
    spread = bootstrap_fid_gap_closed_std(
        fake.rows,
        sets["source"].rows,
        truth.rows,
        sets["target"].rows,
        settings.bootstrap_samples,
        seed=BOOTSTRAP_SEED,
    )
    return {
        keys.fid_truth: fid_truth,
        keys.fid_gap_closed: fid_gap_closed(fid, identity, fid_truth),
        keys.fid_gap_closed_std: spread,
    }


def _paired(keys: DirectionKeys, scores: PairedLists, samples: int) -> dict[str, Any]:
    """Means of the ground-truth scores, their spreads and the MAE ratios."""
    values: dict[str, Any] = {keys.paired_num: len(scores.translated)}
    kinds = {"": scores.translated, "_identity": scores.identity}
    if scores.colour:
        kinds["_colour_transfer"] = scores.colour
    for metric in PAIRED_METRICS:
        for suffix, per_kind in kinds.items():
            per_image = np.array([getattr(s, metric) for s in per_kind])
            values[keys.paired(metric, suffix)] = float(per_image.mean())
            if suffix != "_identity":
                values[keys.paired(metric, f"{suffix}_std")] = paired_metrics.bootstrap_mean_std(
                    per_image, samples, seed=BOOTSTRAP_SEED
                )
    mae = values[keys.paired("mae")]
    values[keys.mae_vs_identity] = _ratio(mae, values[keys.paired("mae", "_identity")])
    if scores.colour:
        colour_mae = values[keys.paired("mae", "_colour_transfer")]
        values[keys.mae_vs_colour_transfer] = _ratio(mae, colour_mae)
    return values


def direction_scores(
    sets: QualitySets,
    direction: str,
    settings: QualitySettings,
    backbone: str | None,
) -> dict[str, Any]:
    """Every score of one direction (module docstring).

    Args:
        sets: The test split's image sets, every image's features computed (flushed), unless
            `backbone` is None.
        direction: "a2b" or "b2a".
        settings: How to compute them.
        backbone: The name of the backbone that computed the features; None: the paired
            scores only (no FID, KID).

    Raises:
        ValueError: If ground truth or colour transfer covers only some test images.
    """
    keys = KEYS[direction]
    scores = sets.paired[direction]
    values: dict[str, Any] = {}
    if backbone is not None:
        named = {
            "fake": _Set(sets.fake[direction]),
            "source": _Set(sets.real[SOURCE_DOMAIN[direction]]),
            "target": _Set(sets.real[TARGET_DOMAIN[direction]]),
            "truth": _Set(sets.truth[direction]),
            "colour": _Set(sets.colour[direction]),
        }
        values |= _distances(keys, named, settings, backbone)
        fid, identity = values[keys.fid], values[keys.fid_identity]
        if named["colour"].count:
            values |= _colour_distances(keys, named, settings, fid)
        if settings.ground_truth and scores.translated:
            values |= _floor(keys, named, settings, fid, identity)
    if settings.ground_truth and scores.translated:
        values |= _paired(keys, scores, settings.bootstrap_samples)
    return values


def quality_scores(
    sets: QualitySets, settings: QualitySettings, backbone: str | None
) -> dict[str, Any]:
    """Every score of both directions (see :func:`direction_scores`)."""
    for domain, side in sets.real.items():
        if side.count() < 2:
            raise ValueError(
                f"the evaluation needs at least 2 test images of domain {domain}, got "
                f"{side.count()}; add images to data/test{domain}"
            )
    values: dict[str, Any] = {}
    for direction in DIRECTIONS:
        values |= direction_scores(sets, direction, settings, backbone)
    return {key: value for key, value in values.items() if value is not None}
