"""Typed configuration: `params.yaml` loaded once into frozen dataclasses.

Over 400 lines on purpose: every section of params.yaml is declared here, next to the loader
that validates it, so the schema of the configuration is one file to read.

Nothing here is read at import time. Entry points call :func:`load_config` once and pass the
resulting :class:`Config` (or one of its sections) explicitly. Components that run in another
process (the TFX Trainer, the TFMA metric) receive it serialised with :meth:`Config.to_dict` and
rebuild it with :func:`config_from_dict`.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from cyclegan_tfx.model.optimizer_strategies import NETWORKS, OptimizerStrategy
from cyclegan_tfx.uri import is_url

DEFAULT_PARAMS_FILE = "params.yaml"

NETWORK_NAMES = NETWORKS
"""The four CycleGAN networks. Paper names: G = generator_ab, F = generator_ba,
D_X = discriminator_a, D_Y = discriminator_b."""

DIRECTIONS = ("a2b", "b2a")

ScheduleName = Literal["constant", "linear_decay", "exponential", "cosine"]
UpsamplingName = Literal["transpose", "resize_conv"]
GeneratorName = Literal["resnet", "unet", "pixelwise"]
GeneratorOutputName = Literal["tanh", "residual", "attention"]
WarmStartName = Literal["none", "blessed"]


class ConfigError(ValueError):
    """Raised when params.yaml is missing, malformed or has invalid values."""


@dataclasses.dataclass(frozen=True)
class Paths:
    """Every path of the project, declared once (relative paths resolve against `root`)."""

    data: str
    preprocessed: str
    pipeline_root: str
    serving: str
    metrics: str
    plots: str
    reports: str
    dvclive: str = "dvclive"
    model: str = "model"
    # The optimizer study's second dataset (domain B far less varied than A) and its TFRecords.
    data_uneven: str = "data_uneven"
    preprocessed_uneven: str = "build/preprocessed_uneven"
    # The colour-grade dataset (the style case, `make style-case`) and its TFRecords.
    data_grade: str = "data_grade"
    preprocessed_grade: str = "build/preprocessed_grade"
    study_run: str = "study/run"  # one study run's metrics and curve (DVC experiments)
    root: str = "."

    def resolve(self, name: str) -> Path:
        """Returns the absolute path of the entry `name` (e.g. "serving")."""
        value = getattr(self, name)
        path = Path(value).expanduser()
        return path if path.is_absolute() else (Path(self.root) / path).resolve()

    @property
    def metadata_path(self) -> Path:
        """SQLite ML Metadata store used by the local runner."""
        return self.resolve("pipeline_root") / "metadata.sqlite"


RUN_OUTPUT_PATHS = ("pipeline_root", "serving", "model", "metrics", "plots", "dvclive", "reports")
"""The `paths` entries a pipeline run writes: its outputs, never its inputs."""


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Beam preprocessing: decoding, validation, resizing, sharding."""

    image_size: int
    num_shards: int
    extensions: tuple[str, ...]

    def __post_init__(self) -> None:
        _check(self.image_size >= 8, "preprocess.image_size must be >= 8")
        _check(self.image_size % 4 == 0, "preprocess.image_size must be a multiple of 4")
        _check(self.num_shards >= 1, "preprocess.num_shards must be >= 1")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """CycleGAN architecture (Zhu et al. 2017).

    `generator`: "resnet" (the paper's, `generator_blocks` residual blocks) or "unet" (the
    reference code's `--netG unet_*`: `unet_downsamplings` levels with skip connections) or
    "pixelwise" (a per-pixel colour mapping, `generator_blocks` 1x1 convolutions: for colour
    grades only, it cannot change structure).
    `upsampling`: "transpose" (the paper's fractionally-strided convolutions) or "resize_conv"
    (nearest-neighbour 2x upsampling then a 3x3 convolution; Odena et al. 2016, "Deconvolution
    and Checkerboard Artifacts": no uneven kernel overlap, hence no checkerboard pattern).
    `generator_output`: "tanh" (the paper's: the last layer is the image) or "residual" (the
    last layer is a change added to the input image, clipped to [-1, 1]: what the image keeps
    needs no learning, and an untrained generator starts near doing nothing) or "attention"
    (Mejjati et al. 2018: the last layer is an image and a mask, and the output is the image
    where the mask is 1 and the input where it is 0: background kept exactly).
    `unet_input_skip`: the U-Net also joins the input image at full resolution before its last
    convolutions (the reference's last skip is at half resolution).
    """

    generator_filters: int
    generator_blocks: int
    discriminator_filters: int
    discriminator_layers: int
    upsampling: UpsamplingName = "transpose"
    generator: GeneratorName = "resnet"
    unet_downsamplings: int = 6
    generator_output: GeneratorOutputName = "tanh"
    unet_input_skip: bool = False

    def __post_init__(self) -> None:
        _check(self.generator_filters >= 1, "model.generator_filters must be >= 1")
        _check(self.generator_blocks >= 0, "model.generator_blocks must be >= 0")
        _check(self.discriminator_filters >= 1, "model.discriminator_filters must be >= 1")
        _check(self.discriminator_layers >= 1, "model.discriminator_layers must be >= 1")
        _check(self.unet_downsamplings >= 1, "model.unet_downsamplings must be >= 1")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Adam settings and learning-rate schedule of one network."""

    learning_rate: float
    beta_1: float = 0.5
    beta_2: float = 0.999
    schedule: ScheduleName = "constant"
    clipnorm: float | None = None

    def __post_init__(self) -> None:
        _check(self.learning_rate > 0, "learning_rate must be > 0")
        _check(0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1, "betas must be in [0, 1)")
        _check(self.clipnorm is None or self.clipnorm > 0, "clipnorm must be > 0 or null")


@dataclasses.dataclass(frozen=True)
class NetworkOptimizers:
    """One optimizer configuration per network."""

    generator_ab: OptimizerConfig
    generator_ba: OptimizerConfig
    discriminator_a: OptimizerConfig
    discriminator_b: OptimizerConfig

    def for_network(self, network: str) -> OptimizerConfig:
        """Returns the optimizer configuration of `network` (one of NETWORK_NAMES)."""
        _check(network in NETWORK_NAMES, f"unknown network {network!r}")
        return getattr(self, network)


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Parameters shared by the learning-rate schedules.

    `decay_epochs` is the paper's `n_epochs_decay`: `linear_decay` keeps the rate constant for
    the first `train.epochs - decay_epochs` epochs (the paper's `n_epochs`), then decays it
    linearly to zero; a `decay_epochs` beyond `train.epochs` decays over the whole run.
    """

    decay_epochs: float = 0.0
    exponential_decay_rate: float = 0.5
    exponential_decay_steps: int = 500

    def __post_init__(self) -> None:
        _check(self.decay_epochs >= 0, "train.schedule.decay_epochs must be >= 0")
        _check(self.exponential_decay_steps >= 1, "exponential_decay_steps must be >= 1")


@dataclasses.dataclass(frozen=True)
class OptimizerSetup:
    """How the four networks are optimised (`train.optimizer`).

    `strategy` is an :class:`~cyclegan_tfx.model.optimizer_strategies.OptimizerStrategy`
    (what each one does is defined there). `networks` holds each network's settings (used by
    `independent`), `shared` the settings of the other strategies. `n_critic` discriminator
    updates are made per generator update.
    """

    strategy: OptimizerStrategy
    shared: OptimizerConfig
    networks: NetworkOptimizers
    n_critic: int = 1

    def __post_init__(self) -> None:
        _check(self.n_critic >= 1, "train.optimizer.n_critic must be >= 1")
        _check(
            self.n_critic == 1 or self.strategy.allows_n_critic,
            "train.optimizer.n_critic > 1 needs separate discriminator optimizers; "
            "it cannot be combined with strategy 'single'",
        )

    def for_network(self, network: str) -> OptimizerConfig:
        """The settings the optimizer of `network` uses under the chosen strategy."""
        if self.strategy.per_network_settings:
            return self.networks.for_network(network)
        _check(network in NETWORK_NAMES, f"unknown network {network!r}")
        return self.shared


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """CycleGAN training loop.

    Augmentation as in the paper's reference code: `random_jitter` resizes each training image
    to `jitter_scale` times its size (286/256 in the paper) and crops a random window of the
    original size; `random_flip` mirrors it left-right with probability 1/2. Evaluation and
    serving always see the deterministic, unaugmented image.

    `warm_start: blessed` continues from the last blessed model's training state
    (:mod:`cyclegan_tfx.model.warm_start`); `none` trains from scratch.

    `generator_ema_decay`: export (and score) an exponential moving average of each
    generator's weights over training instead of its last weights (Yazici et al. 2019), with
    decay `min(d, (1 + t) / (10 + t))` at step t; None: the last weights.
    """

    batch_size: int
    epochs: float
    lambda_cycle: float
    lambda_identity: float
    pool_size: int
    log_every_steps: int
    optimizer: OptimizerSetup
    schedule: ScheduleConfig
    checkpoint_every_steps: int = 100
    restart: bool = False
    mixed_precision: bool | Literal["auto"] = "auto"
    random_jitter: bool = True
    jitter_scale: float = 286 / 256
    random_flip: bool = True
    warm_start: WarmStartName = "none"
    generator_ema_decay: float | None = None

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, "train.batch_size must be >= 1")
        _check(
            self.generator_ema_decay is None or 0.0 < self.generator_ema_decay < 1.0,
            "train.generator_ema_decay must be null (off) or between 0 and 1, e.g. 0.999",
        )
        _check(self.jitter_scale >= 1.0, "train.jitter_scale must be >= 1 (1: no jitter)")
        _check(self.epochs >= 0, "train.epochs must be >= 0 (0 exports an untrained model)")
        _check(self.pool_size >= 0, "train.pool_size must be >= 0")
        _check(self.log_every_steps >= 1, "train.log_every_steps must be >= 1")
        _check(self.checkpoint_every_steps >= 1, "train.checkpoint_every_steps must be >= 1")


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """Feature extractor for FID (:func:`cyclegan_tfx.evaluation.fid.backbone.load_backbone`).

    The standard network's weights are looked for at `inception_weights`, the env var
    CYCLEGAN_TFX_INCEPTION_WEIGHTS, then in `cache_dir` (where `make setup` installs them).
    `require_standard`: without them, stop with an error instead of using the fallback
    backbone. `download` (default false) lets the loader fetch TTUR's graph into `cache_dir`
    when it is found nowhere else; when false, nothing is ever downloaded.
    """

    inception_weights: str = ""
    cache_dir: str = "~/.cache/cyclegan_tfx"
    fallback_seed: int = 0
    download: bool = False
    require_standard: bool = False


@dataclasses.dataclass(frozen=True)
class OptionalDirectionBounds:
    """A number or null (no bound) per translation direction."""

    a2b: float | None = None
    b2a: float | None = None

    def for_direction(self, direction: str) -> float | None:
        """Returns the value for `direction` ("a2b" or "b2a"), None when unset."""
        _check(direction in DIRECTIONS, f"unknown direction {direction!r}")
        return getattr(self, direction)


@dataclasses.dataclass(frozen=True)
class BackboneBounds(OptionalDirectionBounds):
    """Absolute bounds on a backbone-specific metric (FID, KID) and the backbone they fit.

    FID and KID values depend on the feature network, so a bound calibrated on one backbone
    means nothing for another: it is applied only when the evaluation's backbone is `backbone`
    (e.g. `fallback-inceptionv3-random-seed0`, or `inception-2015-12-05` for the standard one).
    """

    backbone: str | None = None

    def __post_init__(self) -> None:
        has_bound = self.a2b is not None or self.b2a is not None
        _check(
            not has_bound or bool(self.backbone),
            "an absolute FID/KID bound needs `backbone`: the feature network it was calibrated on",
        )

    def to_metric_config(self) -> dict[str, Any]:
        """The form the quality metric takes (`{"backbone": ..., "a2b": ..., "b2a": ...}`)."""
        return {"backbone": self.backbone, "a2b": self.a2b, "b2a": self.b2a}


GroundTruthMode = Literal["auto", "paired", "unpaired"]


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """The default checks of the gate, per direction (see README "The gate").

    Attributes:
        fid_gap_closed_min: With ground truth, FID's check: the translation must close at
            least this share of the FID gap from doing nothing to the ground truth,
            (FID(identity) - FID) / (FID(identity) - FID(truth)) >= this; 1 is what the true
            translations score, 0 doing nothing.
        fid_vs_identity_max: Without ground truth, FID's check: FID(translated, target) <= this
            x FID(untranslated source, target). Without ground truth nothing tells how low a
            perfect translation would score (test A and test B show different content, which
            FID measures too), so this only asks for a clear improvement on doing nothing.
        mae_vs_identity_max: With ground truth: MAE(translated, truth) <= this x MAE(source
            as it is, truth); catches wrong-direction and untrained models.
        mae_vs_colour_transfer_max: With ground truth: MAE <= this x the colour-transfer
            baseline's MAE (:mod:`cyclegan_tfx.evaluation.colour_transfer`): a model that learned
            only colour does not pass as a translation. None: not checked.
        fid_vs_colour_transfer_max: Without ground truth: FID <= this x the baseline's FID.
        fid_max_relative_increase: Without ground truth, once a blessed baseline exists: FID
            at most this much (relative) worse than the baseline's.
        mae_max_increase: With ground truth and a baseline: MAE at most this many grey levels
            worse than the baseline's (FID is then not compared with the baseline).
    """

    fid_gap_closed_min: float = 0.2
    fid_vs_identity_max: float = 0.9
    mae_vs_identity_max: float = 0.8
    mae_vs_colour_transfer_max: float | None = 0.95
    fid_vs_colour_transfer_max: float | None = 0.95
    fid_max_relative_increase: float = 0.25
    mae_max_increase: float = 1.0

    def __post_init__(self) -> None:
        for name in ("fid_vs_identity_max", "mae_vs_identity_max"):
            _check(getattr(self, name) > 0, f"evaluate.gate.{name} must be > 0")
        _check(self.fid_gap_closed_min <= 1, "evaluate.gate.fid_gap_closed_min must be <= 1")
        for name in ("mae_vs_colour_transfer_max", "fid_vs_colour_transfer_max"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"evaluate.gate.{name} must be > 0 or null")
        for name in ("fid_max_relative_increase", "mae_max_increase"):
            _check(getattr(self, name) >= 0, f"evaluate.gate.{name} must be >= 0")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """The Evaluator: translation quality metrics and the gate that blesses a model.

    `ground_truth`: "paired" reads each test example's true translation and gates on it (FID's
    floor and MAE; a test image without it then fails the evaluation, saying so); "unpaired"
    ignores it; "auto" is "paired" when the preprocessing job found ground truth for every test
    image of both domains (`metrics/preprocess.json`), else "unpaired" (warned when partial).

    KID (Binkowski et al. 2018) needs feature rows, not just sums: at most `kid_max_samples`
    rows per image set are kept (a deterministic, order-independent sample: the rows of the
    images with the smallest content hashes); FID's bootstrap spread resamples the same rows.
    `cache_reference_stats` caches the real test images' feature rows per (backbone, image
    content hash) under `<backbone.cache_dir>/fid_stats/`, so only the translations run
    through the backbone after the first evaluation of a data version.
    """

    backbone: BackboneConfig
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    ground_truth: GroundTruthMode = "auto"
    fid_upper_bound: BackboneBounds = dataclasses.field(default_factory=BackboneBounds)
    kid_upper_bound: BackboneBounds = dataclasses.field(default_factory=BackboneBounds)
    mae_upper_bound: OptionalDirectionBounds = dataclasses.field(
        default_factory=OptionalDirectionBounds
    )
    psnr_lower_bound: OptionalDirectionBounds = dataclasses.field(
        default_factory=OptionalDirectionBounds
    )
    ssim_lower_bound: OptionalDirectionBounds = dataclasses.field(
        default_factory=OptionalDirectionBounds
    )
    bootstrap_samples: int = 100
    batch_size: int = 16
    kid_num_subsets: int = 100
    kid_subset_size: int = 1000
    kid_max_samples: int = 2000
    cache_reference_stats: bool = True

    def __post_init__(self) -> None:
        _check(self.bootstrap_samples >= 0, "evaluate.bootstrap_samples must be >= 0")
        _check(self.batch_size >= 1, "evaluate.batch_size must be >= 1")
        _check(self.kid_num_subsets >= 1, "evaluate.kid_num_subsets must be >= 1")
        _check(self.kid_subset_size >= 2, "evaluate.kid_subset_size must be >= 2")
        _check(self.kid_max_samples >= 2, "evaluate.kid_max_samples must be >= 2")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """TFX pipeline settings."""

    name: str
    enable_cache: bool = True
    beam_args: tuple[str, ...] = ()


StudyDataset = Literal["sample", "uneven", "grade"]
STUDY_DATASETS: dict[str, str] = {
    "sample": "preprocessed",
    "uneven": "preprocessed_uneven",
    "grade": "preprocessed_grade",
}
"""Study dataset name -> the `paths` entry of its TFRecords."""


@dataclasses.dataclass(frozen=True)
class StudyRunConfig:
    """One run of the optimizer study (`study_run`; the grid is study.yaml, `make study`).

    The run trains `train` (with `seed`, `model`) for `epochs`, the schedules decaying over the
    last `decay_epochs`, on `dataset`, and scores it on the test split every
    `eval_every_epochs` and at the end.
    """

    dataset: StudyDataset = "sample"
    epochs: float = 20.0
    decay_epochs: float = 10.0
    eval_every_epochs: float = 5.0

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "study_run.epochs must be > 0")
        _check(
            0 <= self.decay_epochs <= self.epochs,
            "study_run.decay_epochs must be in [0, study_run.epochs]",
        )
        _check(self.eval_every_epochs > 0, "study_run.eval_every_epochs must be > 0")


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
    """Compilation of the pipeline for Kubeflow Pipelines v2 / Vertex AI (`kubeflow`).

    Remote locations (`pipeline_root`, `examples_root`, `serving_directory`) must be URIs the
    cluster can reach (gs://, s3://, ...) or absolute paths of a volume mounted in every pod;
    `output_dir` is local (relative to params.yaml).
    """

    image: str = "gcr.io/my-project/cyclegan-tfx:latest"
    pipeline_root: str = "gs://my-bucket/cyclegan/tfx"
    examples_root: str = "gs://my-bucket/cyclegan/preprocessed"
    serving_directory: str = "gs://my-bucket/cyclegan/serving/cyclegan"
    beam_args: tuple[str, ...] = ()
    gpus: int = 0
    gpu_type: str = "NVIDIA_TESLA_T4"
    cpu_limit: float | None = None
    memory_limit_gb: float | None = None
    output_dir: str = "build/kubeflow"

    def __post_init__(self) -> None:
        _check(bool(self.image.strip()), "kubeflow.image must not be empty")
        for key in ("pipeline_root", "examples_root", "serving_directory"):
            value = getattr(self, key)
            _check(
                is_url(value) or value.startswith("/"),
                f"kubeflow.{key} must be a URI the cluster can reach (gs://..., s3://...) or an "
                f"absolute path on a mounted volume, got {value!r}",
            )
        _check(self.gpus >= 0, "kubeflow.gpus must be >= 0")
        _check(
            self.gpus == 0 or bool(self.gpu_type.strip()),
            "kubeflow.gpu_type must name the accelerator when kubeflow.gpus > 0",
        )
        _check(self.cpu_limit is None or self.cpu_limit > 0, "kubeflow.cpu_limit must be > 0")
        _check(
            self.memory_limit_gb is None or self.memory_limit_gb > 0,
            "kubeflow.memory_limit_gb must be > 0",
        )


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole of params.yaml."""

    seed: int
    paths: Paths
    preprocess: PreprocessConfig
    model: ModelConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    pipeline: PipelineConfig
    kubeflow: KubeflowConfig = dataclasses.field(default_factory=KubeflowConfig)
    study_run: StudyRunConfig = dataclasses.field(default_factory=StudyRunConfig)

    def __post_init__(self) -> None:
        size, downs = self.preprocess.image_size, self.model.unet_downsamplings
        _check(
            self.model.generator != "unet" or size % 2**downs == 0,
            f"preprocess.image_size {size} must be divisible by 2 ** model.unet_downsamplings "
            f"({2**downs}) for the U-Net generator",
        )
        layers = self.model.discriminator_layers
        smallest = 3 * 2**layers
        _check(
            self.preprocess.image_size >= smallest,
            f"preprocess.image_size {self.preprocess.image_size} is too small for a PatchGAN with "
            f"model.discriminator_layers={layers}: it needs at least {smallest}",
        )

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict that :func:`config_from_dict` turns back."""
        return _to_plain(dataclasses.asdict(self))

    def serving_dir(self) -> str:
        """The Pusher's destination and the model registry: `<paths.serving>/<pipeline.name>`.

        `paths.serving` may be a TensorFlow filesystem URI (`gs://...`, `ram://...`), kept as
        it is; a local path is made absolute.
        """
        if is_url(self.paths.serving):
            return f"{self.paths.serving.rstrip('/')}/{self.pipeline.name}"
        return str(self.paths.resolve("serving") / self.pipeline.name)

    def replace(self, **sections: Any) -> Config:
        """Returns a copy with whole sections replaced (e.g. `train=...`)."""
        return dataclasses.replace(self, **sections)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _to_plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


T = TypeVar("T")


def build_section(cls: type[T], data: Any, where: str) -> T:
    """Builds dataclass `cls` from plain data, with errors naming the offending key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'params'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or 'params'}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ConfigError(f"{key}: missing")
            continue
        kwargs[name] = _coerce(hints[name], data[name], key)
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{where or 'params'}: {error}") from None


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build_section(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        alternatives = [a for a in args if a is not type(None)]
        if len(alternatives) == 1:
            return _coerce(alternatives[0], value, key)
        problems = []
        for alternative in alternatives:  # e.g. `bool | Literal["auto"]`: the first that fits
            try:
                return _coerce(alternative, value, key)
            except ConfigError as error:
                problems.append(str(error).removeprefix(f"{key}: "))
        raise ConfigError(f"{key}: {value!r} fits none of: " + "; ".join(problems))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        names = [member.value for member in hint]
        if value not in names:
            raise ConfigError(f"{key}: {value!r} is not one of {names}")
        return hint(value)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(hint))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(get_args(hint)[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover - programming error


def config_from_dict(data: dict[str, Any], root: str | Path | None = None) -> Config:
    """Builds a :class:`Config` from plain data (as in params.yaml).

    Args:
        data: The parsed params.
        root: Directory that relative paths resolve against; defaults to `data['paths']['root']`
            or the current directory.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: On missing, unknown or invalid keys.
    """
    data = dict(data)
    if isinstance(data.get("paths"), dict):
        paths = dict(data["paths"])
        if root is not None:
            paths["root"] = str(Path(root).resolve())
        paths.setdefault("root", str(Path.cwd()))
        data["paths"] = paths
    return build_section(Config, data, "")


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Params with `key.path=value` overrides applied (as `dvc exp run -S`).

    Args:
        data: The parsed params (not modified).
        overrides: E.g. `["model.unet_downsamplings=2", "train.epochs=40"]`; each value is
            read as YAML (`true`, `null`, `[1, 2]`), and `8e-4` as a number.

    Returns:
        A copy of `data` with the values replaced.

    Raises:
        ConfigError: On an override without `=` or whose section is not in the params.
    """
    data = copy.deepcopy(data)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r}: expected key.path=value")
        *parents, leaf = key.split(".")
        node = data
        for depth, part in enumerate(parents):
            if not isinstance(node.get(part), dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(f"override {override!r}: params has no section {where!r}")
            node = node[part]
        node[leaf] = _override_value(text)  # a key the section does not know: load says so
    return data


def _override_value(text: str) -> Any:
    value = yaml.safe_load(text)
    if isinstance(value, str):  # YAML 1.1 reads 8e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path: str | Path = DEFAULT_PARAMS_FILE, overrides: Sequence[str] = ()) -> Config:
    """Loads and validates params.yaml.

    Args:
        path: The params file; relative paths inside it resolve against its directory.
        overrides: `key.path=value` changes to the file's values (:func:`apply_overrides`).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: If the file is missing, is not YAML, or has invalid values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path.resolve()}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return config_from_dict(apply_overrides(data, overrides), root=path.resolve().parent)
