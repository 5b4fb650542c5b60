"""The one definition of the TFX pipeline, shared by the local and Kubeflow runners.

ImportExampleGen (Beam TFRecords; cached by their content) -> Trainer (CycleGAN, four optimizers;
with `train.warm_start: blessed` a Resolver hands it the last blessed model as its base model)
-> Resolver (baseline: the newest blessed model other than the candidate)
-> Evaluator (FID/KID, identity mapping and ground-truth scores per direction, TFMA)
-> GateReporter (the gate report artifact: every check and the decision, blessed or not)
-> Pusher -> PushRecorder (only inside the blessing condition; the Pusher does not push a model
   already pushed, the PushRecorder registers the push in the destination's registry once).
"""

from __future__ import annotations

from typing import Any

from tfx import v1 as tfx

from components.baseline_resolver import CANDIDATE_KEY, LatestBlessedOtherModelStrategy
from components.example_gen import COMPONENT_ID as EXAMPLE_GEN_ID
from components.example_gen import ContentImportExampleGen
from components.gate_reporter import GateReporter
from components.push_recorder import PushRecorder
from components.pusher import Pusher
from components.trainer import trainer_custom_config
from cyclegan_tfx.config import Config
from cyclegan_tfx.registry.record import run_provenance
from pipeline.eval_config import build_eval_config, resolve_ground_truth

TRAINER_RUN_FN = "components.trainer.run_fn"
RESOLVER_ID = "latest_blessed_model_resolver"
WARM_START_RESOLVER_ID = "warm_start_model_resolver"


def create_pipeline(
    config: Config,
    *,
    pipeline_root: str | None = None,
    metadata_connection_config=None,
    beam_pipeline_args: list[str] | None = None,
    serving_directory: str | None = None,
    examples_directory: str | tfx.dsl.experimental.RuntimeParameter | None = None,
    baseline_excludes_candidate: bool = True,
    provenance: dict[str, Any] | None = None,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline.

    Args:
        config: The project configuration (params.yaml).
        pipeline_root: Artifact root; defaults to `paths.pipeline_root` (runners for remote
            orchestrators pass e.g. a gs:// root).
        metadata_connection_config: ML Metadata connection (the local runner passes SQLite;
            Kubeflow provides its own and passes None).
        beam_pipeline_args: Beam flags for ExampleGen and Evaluator; defaults to
            `pipeline.beam_args`.
        serving_directory: Pusher destination; defaults to `config.serving_dir()`.
        examples_directory: Folder of the preprocessed TFRecords (`train/`, `test/`) that
            ImportExampleGen ingests; defaults to `paths.preprocessed`. Remote runners pass a
            gs:// or s3:// folder, or a `RuntimeParameter` to choose it per run.
        baseline_excludes_candidate: The baseline is the newest blessed model other than the
            candidate (components/baseline_resolver.py), so a rerun of a cached model is all
            cache hits. False: TFX's stock strategy (the Kubeflow V2 compiler knows no other).
        provenance: What the PushRecorder records as the run's data, git commit, params hash
            and strategy; defaults to `run_provenance(config)` (the project tree now).

    Returns:
        The TFX pipeline.
    """
    root = pipeline_root or str(config.paths.resolve("pipeline_root"))
    if examples_directory is None:
        examples_directory = str(config.paths.resolve("preprocessed"))
    example_gen = ContentImportExampleGen(
        input_base=examples_directory,
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name="train", pattern="train/*.tfrecord"),
                tfx.proto.Input.Split(name="test", pattern="test/*.tfrecord"),
            ]
        ),
    ).with_id(EXAMPLE_GEN_ID)
    every_model = {
        "model": tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        "model_blessing": tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    }
    warm_start = []
    if config.train.warm_start == "blessed":  # the Trainer continues from the last blessed model
        warm_start = [
            tfx.dsl.Resolver(
                strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **every_model
            ).with_id(WARM_START_RESOLVER_ID)
        ]
    trainer = tfx.components.Trainer(
        run_fn=TRAINER_RUN_FN,
        examples=example_gen.outputs["examples"],
        base_model=warm_start[0].outputs["model"] if warm_start else None,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["test"]),
        custom_config=trainer_custom_config(config, root),
    )
    if baseline_excludes_candidate:
        baseline_resolver = tfx.dsl.Resolver(
            strategy_class=LatestBlessedOtherModelStrategy,
            **every_model,
            **{CANDIDATE_KEY: trainer.outputs["model"]},
        ).with_id(RESOLVER_ID)
    else:
        baseline_resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **every_model
        ).with_id(RESOLVER_ID)
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=build_eval_config(config.evaluate, resolve_ground_truth(config)),
        example_splits=["test"],
    )
    gate_reporter = GateReporter(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
    )
    serving_directory = serving_directory or config.serving_dir()
    blessed = evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1
    with tfx.dsl.Cond(blessed):
        pusher = Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_directory)
            ),
        )
        push_recorder = PushRecorder(
            pushed_model=pusher.outputs["pushed_model"],
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            evaluation=evaluator.outputs["evaluation"],
            examples=example_gen.outputs["examples"],
            gate_report=gate_reporter.outputs["gate_report"],
            serving_directory=serving_directory,
            model_name=config.pipeline.name,
            provenance=run_provenance(config) if provenance is None else provenance,
        )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=root,
        components=[
            example_gen,
            *warm_start,
            trainer,
            baseline_resolver,
            evaluator,
            gate_reporter,
            pusher,
            push_recorder,
        ],
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(
            config.pipeline.beam_args if beam_pipeline_args is None else beam_pipeline_args
        ),
    )
