"""The Beam graph: CycleGAN-layout image folders -> deterministic TFRecord shards + reports.

Over 400 lines on purpose: the whole Beam graph and its DoFns read top to bottom in one
place; the pure image functions are in :mod:`.images`.

Stages:

1. List `data_dir/{trainA,trainB,testA,testB}/**` at construction time (:func:`scan_dataset`),
   and the optional ground-truth folders `testA_truthB/`, `testB_truthA/` (paired layout, see
   :mod:`cyclegan_tfx.data.schema`).
2. Read every file (Beam `FileSystems`, so `gs://` works), hash its raw bytes (SHA-256), decode,
   convert to RGB, resize and re-encode as PNG (:mod:`.images`). Hidden files, unsupported
   extensions and undecodable files go to the `rejects` output.
3. Exact duplicates (same raw-bytes SHA-256) keep only the lexicographically smallest relative
   path, so `testA/...` wins over `trainA/...` and a test image never leaks into training; the
   others go to the `duplicates` output.
4. Ground truth (processed like the images) is joined to the kept test image of the same name
   (`truth` feature); a ground-truth file without a kept image is a reject
   (`truth_without_image`). The colour-transfer baseline is fitted on each domain's kept
   training images and applied to every test image (`colour_transfer` feature, :mod:`.colour`).
5. Each kept image becomes a `tf.train.Example` (keys in :mod:`cyclegan_tfx.data.schema`), written
   to shard `int(sha256, 16) % num_shards` of its split, sorted by SHA-256 inside the shard. Every
   shard file exists (possibly empty), and the same input gives byte-identical files whatever
   the runner's parallelism.
6. `rejects.csv`, `duplicates.csv` and the metrics JSON are written once at the end.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import io
import json
import logging
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from cyclegan_tfx.config import PreprocessConfig
from cyclegan_tfx.data import schema
from cyclegan_tfx.data.preprocess import colour, images

logger = logging.getLogger(__name__)

# Reason codes decided before decoding (decoding reasons live in `images`).
HIDDEN_FILE = "hidden_file"
UNSUPPORTED_EXTENSION = "unsupported_extension"
READ_ERROR = "read_error"
TRUTH_WITHOUT_IMAGE = "truth_without_image"

REJECTS_CSV = "rejects.csv"
DUPLICATES_CSV = "duplicates.csv"
SHARD_GLOB = "part-*-of-*.tfrecord"

LAYOUT_DIRS = tuple(schema.layout_dir(s, d) for s in schema.SPLITS for d in schema.DOMAINS)
TRUTH_DIRS = {schema.truth_dir(d): d for d in schema.DOMAINS}
"""Ground-truth folder -> the domain of the test images it belongs to."""


class DatasetLayoutError(ValueError):
    """The data folder does not follow the CycleGAN layout (or a train domain is empty)."""


class SourceFile(NamedTuple):
    """One file found under the data folder."""

    path: str  # relative POSIX path, e.g. "trainA/0001.png"
    split: str  # "train" | "test"
    domain: str  # "A" | "B" (of a ground-truth file: the domain of the image it belongs to)
    is_truth: bool = False  # a file of testA_truthB/ or testB_truthA/

    @property
    def image_path(self) -> str:
        """The image a ground-truth file belongs to (`testA_truthB/x.png` -> `testA/x.png`)."""
        name = self.path.split("/", 1)[1]
        return f"{schema.layout_dir(self.split, self.domain)}/{name}"


class ImageRecord(NamedTuple):
    """A successfully preprocessed image."""

    sha256: str  # hex SHA-256 of the source file's raw bytes
    path: str
    split: str
    domain: str
    png: bytes  # image_size x image_size RGB PNG
    truth: bytes = b""  # the true translation (same size, PNG), paired test images only
    colour_transfer: bytes = b""  # the colour-transfer baseline's translation, test images only


class TruthRecord(NamedTuple):
    """A preprocessed ground-truth image, waiting to be joined to its test image."""

    image_path: str  # e.g. "testA/0001.png"
    path: str  # e.g. "testA_truthB/0001.png"
    png: bytes


class Reject(NamedTuple):
    """A file that did not become an example (a row of rejects.csv)."""

    path: str
    reason: str
    message: str


class Duplicate(NamedTuple):
    """A file dropped because an identical file was kept (a row of duplicates.csv)."""

    path: str
    duplicate_of: str


class PreprocessOutputs(NamedTuple):
    """The pipeline's main PCollections (handy for tests)."""

    examples: beam.PCollection  # of ImageRecord, after deduplication
    rejects: beam.PCollection  # of Reject
    duplicates: beam.PCollection  # of Duplicate


def shard_path(output_dir: str, split: str, shard: int, num_shards: int) -> str:
    """Returns the path of one TFRecord shard, e.g. `out/train/part-00000-of-00002.tfrecord`."""
    name = f"part-{shard:05d}-of-{num_shards:05d}.tfrecord"
    return FileSystems.join(output_dir, split, name)


def shard_of(sha256: str, num_shards: int) -> int:
    """Returns the shard index of an image with the given hex SHA-256."""
    return int(sha256, 16) % num_shards


def normalize_extensions(extensions: Iterable[str]) -> frozenset[str]:
    """Returns lower-case extensions with a leading dot (".PNG" and "png" -> ".png")."""
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def is_hidden(relative_path: str) -> bool:
    """Whether any component of a relative POSIX path starts with a dot (`.DS_Store`, `._x`)."""
    return any(part.startswith(".") for part in relative_path.split("/"))


def scan_dataset(data_dir: str, extensions: Iterable[str]) -> list[SourceFile]:
    """Lists every file of the CycleGAN layout, sorted by relative path.

    Files of any extension are listed (the pipeline records the unusable ones as rejects).

    Args:
        data_dir: The dataset root (local path or any Beam filesystem URL).
        extensions: Accepted image extensions, used to check that train folders are not empty.

    Returns:
        The files under `data_dir/{trainA,trainB,testA,testB}/`, recursively, and those of the
        ground-truth folders `testA_truthB/`, `testB_truthA/` when they exist.

    Raises:
        DatasetLayoutError: If a layout folder is missing, or a train folder holds no file
            with an accepted extension.
    """
    accepted = normalize_extensions(extensions)
    expected = f"expected the CycleGAN layout {data_dir}/{{{','.join(LAYOUT_DIRS)}}}/<images>"
    listings: dict[tuple[str, str], list[str]] = {}
    missing = []
    for split in schema.SPLITS:
        for domain in schema.DOMAINS:
            name = schema.layout_dir(split, domain)
            folder = FileSystems.join(str(data_dir), name)
            relative = [f"{name}/{rel}" for rel in _list_files(folder)]
            if not relative and not FileSystems.exists(folder):
                missing.append(name)
            listings[split, domain] = relative
    if missing:
        raise DatasetLayoutError(f"{data_dir}: missing folder(s) {', '.join(missing)}; {expected}")
    found: list[SourceFile] = []
    for (split, domain), relative in listings.items():
        name = schema.layout_dir(split, domain)
        if not any(
            not is_hidden(p) and posixpath.splitext(p)[1].lower() in accepted for p in relative
        ):
            if split == "train":
                raise DatasetLayoutError(
                    f"{data_dir}: {name} has no image files (extensions {sorted(accepted)}); "
                    f"{expected}"
                )
            logger.warning("%s: %s has no image files", data_dir, name)
        found.extend(SourceFile(p, split, domain) for p in relative)
    for name, domain in TRUTH_DIRS.items():
        relative = [f"{name}/{rel}" for rel in _list_files(FileSystems.join(str(data_dir), name))]
        if relative:
            logger.info("%s: %d ground-truth file(s) in %s", data_dir, len(relative), name)
        found.extend(SourceFile(p, schema.TRUTH_SPLIT, domain, is_truth=True) for p in relative)
    return sorted(found)


def _list_files(folder: str) -> list[str]:
    """Relative POSIX paths of all files below `folder` (empty if it does not exist)."""
    prefix = folder.rstrip("/\\")
    (result,) = FileSystems.match([FileSystems.join(prefix, "**")])
    paths = []
    for metadata in result.metadata_list:
        path = metadata.path
        if path.endswith(("/", "\\")):  # directory placeholders of object stores
            continue
        relative = path[len(prefix) :].replace("\\", "/").lstrip("/")
        paths.append(relative)
    return sorted(paths)


class ProcessFileFn(beam.DoFn):
    """SourceFile -> ImageRecord, TruthRecord (a ground-truth file) or Reject."""

    def __init__(self, data_dir: str, image_size: int, extensions: Iterable[str]) -> None:
        self._data_dir = str(data_dir)
        self._image_size = image_size
        self._extensions = normalize_extensions(extensions)

    def process(self, source: SourceFile) -> Iterator[Any]:
        """Reads, validates and converts one file."""
        if is_hidden(source.path):
            yield Reject(source.path, HIDDEN_FILE, "hidden file (name starts with '.')")
            return
        extension = posixpath.splitext(source.path)[1].lower()
        if extension not in self._extensions:
            message = f"extension {extension or '(none)'!r} not in {sorted(self._extensions)}"
            yield Reject(source.path, UNSUPPORTED_EXTENSION, message)
            return
        full_path = FileSystems.join(self._data_dir, *source.path.split("/"))
        try:
            with FileSystems.open(full_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                data = f.read()
        except (OSError, beam.io.filesystem.BeamIOError) as error:
            yield Reject(source.path, READ_ERROR, f"cannot read: {error}")
            return
        digest = hashlib.sha256(data).hexdigest()
        try:
            png = images.process_image(data, source.path, self._image_size)
        except images.ImageRejected as rejected:
            yield Reject(source.path, rejected.reason, rejected.message)
            return
        if source.is_truth:
            yield TruthRecord(source.image_path, source.path, png)
            return
        yield ImageRecord(digest, source.path, source.split, source.domain, png)


def _keep_smallest_path(item: tuple[str, Iterable[ImageRecord]]) -> Iterator[Any]:
    """Keeps the record with the smallest path of one SHA-256 group; the rest are duplicates."""
    _, group = item
    ordered = sorted(group, key=lambda record: record.path)
    yield ordered[0]
    for record in ordered[1:]:
        yield Duplicate(record.path, ordered[0].path)


def _attach_truth(item: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """Joins one path's kept image with its ground truth; an orphaned truth is a reject."""
    image_path, group = item
    truths = sorted(group["truths"], key=lambda truth: truth.path)
    for record in group["images"]:
        yield record._replace(truth=truths[0].png) if truths else record
    if not group["images"]:
        for truth in truths:
            message = f"no kept image {image_path} for it (missing, rejected or a duplicate)"
            yield Reject(truth.path, TRUTH_WITHOUT_IMAGE, message)


def _only(records: beam.PCollection, record_type: type, label: str) -> beam.PCollection:
    """The elements of `records` that are of `record_type`."""
    return records | f"Only{label}" >> beam.Filter(lambda r: isinstance(r, record_type))


def _key_by_shard(record: ImageRecord, num_shards: int) -> tuple[tuple[str, int], ImageRecord]:
    return (record.split, shard_of(record.sha256, num_shards)), record


def to_example(record: ImageRecord) -> tf.train.Example:
    """Builds the `tf.train.Example` of one image (keys from :mod:`cyclegan_tfx.data.schema`)."""

    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        schema.IMAGE_KEY: _bytes(record.png),
        schema.DOMAIN_KEY: _bytes(record.domain.encode()),
        schema.SPLIT_KEY: _bytes(record.split.encode()),
        schema.SOURCE_SHA256_KEY: _bytes(record.sha256.encode()),
        schema.SOURCE_PATH_KEY: _bytes(record.path.encode()),
    }
    if record.truth:
        feature[schema.TRUTH_KEY] = _bytes(record.truth)
    if record.colour_transfer:
        feature[schema.COLOUR_TRANSFER_KEY] = _bytes(record.colour_transfer)
    return tf.train.Example(features=tf.train.Features(feature=feature))


class WriteShardFn(beam.DoFn):
    """Writes one (split, shard) group as a TFRecord file, records sorted by SHA-256."""

    def __init__(self, output_dir: str, num_shards: int) -> None:
        self._output_dir = str(output_dir)
        self._num_shards = num_shards

    def process(self, item: tuple[tuple[str, int], Iterable[ImageRecord | None]]) -> Iterator[Any]:
        """Writes the shard; yields (layout dir, count, with ground truth) for the metrics."""
        (split, shard), values = item
        records = sorted((v for v in values if v is not None), key=lambda r: r.sha256)
        path = shard_path(self._output_dir, split, shard, self._num_shards)
        tf.io.gfile.makedirs(FileSystems.split(path)[0])
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                # deterministic=True: sorted map keys, so identical examples give identical bytes.
                writer.write(to_example(record).SerializeToString(deterministic=True))
        counts = collections.Counter(schema.layout_dir(r.split, r.domain) for r in records)
        paired = collections.Counter(
            schema.layout_dir(r.split, r.domain) for r in records if r.truth
        )
        yield from sorted((name, count, paired[name]) for name, count in counts.items())


class WriteReportsFn(beam.DoFn):
    """Writes rejects.csv, duplicates.csv and the metrics JSON (runs once)."""

    def __init__(self, reports_dir: str, metrics_path: str, config: PreprocessConfig) -> None:
        self._reports_dir = str(reports_dir)
        self._metrics_path = str(metrics_path)
        self._image_size = config.image_size
        self._num_shards = config.num_shards

    def process(
        self,
        unused_element: Any,
        rejects: Sequence[Reject],
        duplicates: Sequence[Duplicate],
        counts: Sequence[tuple[str, int, int]],
        colour_stats: dict[str, dict[str, list[float]]],
    ) -> Iterator[dict[str, Any]]:
        """Writes the three files; yields the metrics dict."""
        reject_rows = sorted(tuple(r) for r in rejects)
        duplicate_rows = sorted(tuple(d) for d in duplicates)
        _write_text(
            FileSystems.join(self._reports_dir, REJECTS_CSV),
            _csv_text(Reject._fields, reject_rows),
        )
        _write_text(
            FileSystems.join(self._reports_dir, DUPLICATES_CSV),
            _csv_text(Duplicate._fields, duplicate_rows),
        )
        metrics = build_metrics(counts, rejects, len(duplicate_rows), self._image_size)
        metrics["num_shards"] = self._num_shards
        metrics["colour_stats_lab"] = dict(sorted(colour_stats.items()))
        _write_text(self._metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        yield metrics


def build_metrics(
    counts: Iterable[tuple[str, int, int]],
    rejects: Iterable[Reject],
    num_duplicates: int,
    image_size: int,
) -> dict[str, Any]:
    """Builds the metrics dict of one run.

    Args:
        counts: (layout dir, number of examples, how many with ground truth) triples, possibly
            several per layout dir.
        rejects: All rejected files.
        num_duplicates: Number of dropped duplicate files.
        image_size: Side length of the written images.

    Returns:
        `{"examples": {"testA": n, ...}, "examples_total": n, "paired": {"testA": n,
        "testB": n}, "rejected": n, "rejected_by_reason": {reason: n}, "duplicates": n,
        "image_size": s}`.
    """
    examples = dict.fromkeys(sorted(LAYOUT_DIRS), 0)
    paired = {schema.layout_dir(schema.TRUTH_SPLIT, d): 0 for d in schema.DOMAINS}
    for name, count, with_truth in counts:
        examples[name] += count
        if name in paired:
            paired[name] += with_truth
    by_reason = collections.Counter(r.reason for r in rejects)
    return {
        "duplicates": num_duplicates,
        "examples": examples,
        "examples_total": sum(examples.values()),
        "image_size": image_size,
        "paired": paired,
        "rejected": sum(by_reason.values()),
        "rejected_by_reason": dict(sorted(by_reason.items())),
    }


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_text(path: str, text: str) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode("utf-8"))


def build_pipeline(
    pipeline: beam.Pipeline,
    data_dir: str,
    output_dir: str,
    reports_dir: str,
    metrics_path: str,
    config: PreprocessConfig,
) -> PreprocessOutputs:
    """Adds the preprocessing job to `pipeline` (see the module docstring).

    The dataset is listed now, so layout errors surface before the pipeline runs.

    Args:
        pipeline: The pipeline to extend.
        data_dir: Dataset root in the CycleGAN layout.
        output_dir: Receives `{train,test}/part-SSSSS-of-NNNNN.tfrecord`.
        reports_dir: Receives `rejects.csv` and `duplicates.csv`.
        metrics_path: The metrics JSON file.
        config: Image size, shard count and accepted extensions.

    Returns:
        The kept examples, the rejects and the duplicates, as PCollections.

    Raises:
        DatasetLayoutError: If `data_dir` does not follow the CycleGAN layout.
    """
    data_dir, output_dir = str(data_dir), str(output_dir)
    sources = scan_dataset(data_dir, config.extensions)
    logger.info("found %d files under %s", len(sources), data_dir)
    num_shards = config.num_shards

    # Every step emits one PCollection of mixed record types, split by type with
    # `_only`: a multi-output ParDo (`with_outputs`) would be simpler, but runners differ in
    # how well they support tagged outputs (Beam's DaskRunner feeds them all to the main one).
    processed = (
        pipeline
        | "ListFiles" >> beam.Create(sources, reshuffle=True)
        | "Process" >> beam.ParDo(ProcessFileFn(data_dir, config.image_size, config.extensions))
    )
    deduplicated = (
        _only(processed, ImageRecord, "Images")
        | "KeyBySha256" >> beam.Map(lambda record: (record.sha256, record))
        | "GroupBySha256" >> beam.GroupByKey()
        | "KeepSmallestPath" >> beam.FlatMap(_keep_smallest_path)
    )
    duplicates = _only(deduplicated, Duplicate, "Duplicates")
    joined = (
        {
            "images": _only(deduplicated, ImageRecord, "Kept")
            | "KeyImageByPath" >> beam.Map(lambda r: (r.path, r)),
            "truths": _only(processed, TruthRecord, "Truths")
            | "KeyTruthByImage" >> beam.Map(lambda t: (t.image_path, t)),
        }
        | "JoinTruth" >> beam.CoGroupByKey()
        | "AttachTruth" >> beam.FlatMap(_attach_truth)
    )
    with_truth = _only(joined, ImageRecord, "WithTruth")
    colour_stats = (
        with_truth
        | "TrainOnly" >> beam.Filter(lambda r: r.split == "train")
        | "ColourSums" >> beam.Map(colour.image_sums)
        | "GroupSumsByDomain" >> beam.GroupByKey()
        | "ColourStats" >> beam.MapTuple(colour.domain_stats)
    )
    test_by_domain = (
        with_truth
        | "TestOnly" >> beam.Filter(lambda r: r.split == schema.TRUTH_SPLIT)
        | "KeyTestByDomain" >> beam.Map(lambda r: (r.domain, r))
    )
    translated = (
        {
            "records": test_by_domain,
            "stats": colour_stats | "StatsForJoin" >> beam.FlatMapTuple(colour.stats_for_join),
        }
        | "JoinColourStats" >> beam.CoGroupByKey()
        | "AttachColourTransfer" >> beam.FlatMapTuple(colour.with_colour_transfer)
    )
    kept = (
        with_truth | "NotTest" >> beam.Filter(lambda r: r.split != schema.TRUTH_SPLIT),
        translated,
    ) | "AllKept" >> beam.Flatten()
    rejects = (
        _only(processed, Reject, "FileRejects"),
        _only(joined, Reject, "TruthRejects"),
    ) | "AllRejects" >> beam.Flatten()

    all_shards = [((split, shard), None) for split in schema.SPLITS for shard in range(num_shards)]
    shard_counts = (
        (
            kept | "KeyByShard" >> beam.Map(_key_by_shard, num_shards),
            pipeline | "AllShards" >> beam.Create(all_shards),
        )
        | "WithEmptyShards" >> beam.Flatten()
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShardFn(output_dir, num_shards))
    )
    _ = (
        pipeline
        | "Once" >> beam.Create([None])
        | "WriteReports"
        >> beam.ParDo(
            WriteReportsFn(str(reports_dir), str(metrics_path), config),
            rejects=beam.pvalue.AsList(rejects),
            duplicates=beam.pvalue.AsList(duplicates),
            counts=beam.pvalue.AsList(shard_counts),
            colour_stats=beam.pvalue.AsDict(colour_stats),
        )
    )
    return PreprocessOutputs(kept, rejects, duplicates)


def run_to_completion(pipeline: beam.Pipeline) -> None:
    """Runs `pipeline`, waits for it, and releases the runner's connections.

    The DaskRunner opens a `dask.distributed` client to the scheduler and never closes it; left
    open it logs reconnection errors once the cluster goes away.

    Args:
        pipeline: The pipeline to run.

    Raises:
        Exception: Whatever the runner raises for a failed job.
    """
    result = pipeline.run()
    try:
        result.wait_until_finish()
    finally:
        client = getattr(result, "client", None)
        if client is not None:
            client.close()


def run_preprocessing(
    data_dir: str,
    output_root: str,
    config: PreprocessConfig,
    beam_args: Sequence[str] = (),
) -> None:
    """Builds and runs the job with outputs under one folder (tests, benchmarks).

    Writes `<output_root>/preprocessed/`, `<output_root>/reports/` and
    `<output_root>/metrics.json`.

    Args:
        data_dir: Dataset root in the CycleGAN layout.
        output_root: Folder of every output.
        config: The `preprocess` section.
        beam_args: Beam flags (runner and its options).
    """
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    root = output_root.rstrip("/")
    build_pipeline(
        pipeline,
        data_dir,
        f"{root}/preprocessed",
        f"{root}/reports",
        f"{root}/metrics.json",
        config,
    )
    run_to_completion(pipeline)


def delete_stale_shards(output_dir: str) -> int:
    """Deletes existing `part-*-of-*.tfrecord` files of every split under `output_dir`.

    Call it before running the pipeline, so a run with fewer shards leaves no old files.

    Args:
        output_dir: The preprocessing output folder.

    Returns:
        The number of deleted files.
    """
    patterns = [FileSystems.join(str(output_dir), split, SHARD_GLOB) for split in schema.SPLITS]
    stale = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
    if stale:
        FileSystems.delete(stale)
        logger.info("deleted %d stale shard(s) under %s", len(stale), output_dir)
    return len(stale)
