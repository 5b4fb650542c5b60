"""The baseline resolver: the newest blessed model other than the candidate."""

from __future__ import annotations

from conftest import e2e_config
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.types import standard_artifacts

from components.baseline_resolver import CANDIDATE_KEY, LatestBlessedOtherModelStrategy
from pipeline import kubeflow_runner
from pipeline.pipeline import RESOLVER_ID, create_pipeline


def _model(model_id: int) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.id = model_id
    return model


def _blessing(model_id: int, blessed: bool) -> standard_artifacts.ModelBlessing:
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _resolve(models, blessings, candidate):
    inputs = {"model": models, "model_blessing": blessings, CANDIDATE_KEY: candidate}
    return LatestBlessedOtherModelStrategy().resolve_artifacts(None, inputs)


def test_a_blessed_candidate_is_not_its_own_baseline():
    models = [_model(1), _model(2)]
    resolved = _resolve(models, [_blessing(1, True), _blessing(2, True)], [models[1]])
    assert [m.id for m in resolved["model"]] == [1]
    assert resolved["model_blessing"][0].get_int_custom_property("current_model_id") == 1
    assert resolved[CANDIDATE_KEY] == [models[1]]


def test_the_only_blessed_model_being_the_candidate_gives_no_baseline():
    models = [_model(1)]
    resolved = _resolve(models, [_blessing(1, True)], models)
    assert resolved["model"] == [] and resolved["model_blessing"] == []


def test_the_newest_blessed_other_model_wins_and_unblessed_ones_are_skipped():
    models = [_model(i) for i in (1, 2, 3, 4)]
    blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False)]
    resolved = _resolve(models, blessings, [models[3]])
    assert [m.id for m in resolved["model"]] == [2]


def test_a_new_candidate_gets_the_newest_blessed_model_as_the_stock_strategy_does():
    models = [_model(1), _model(2), _model(3)]
    blessings = [_blessing(1, True), _blessing(2, True)]
    resolved = _resolve(models, blessings, [models[2]])
    assert [m.id for m in resolved["model"]] == [2]


def test_no_blessing_yet_gives_no_baseline():
    models = [_model(1)]
    resolved = _resolve(models, [], models)
    assert resolved["model"] == [] and resolved["model_blessing"] == []


def test_the_local_pipeline_uses_it_and_kubeflow_the_stock_strategy(tmp_path):
    config = e2e_config(tmp_path, epochs=0.0)
    local = _resolver(create_pipeline(config))
    # TFX 1.16 keeps a Resolver's strategy in `_strategy_class` (no public accessor).
    assert local._strategy_class is LatestBlessedOtherModelStrategy
    assert set(local.outputs) == {"model", "model_blessing", CANDIDATE_KEY}
    kubeflow = _resolver(kubeflow_runner.build_pipeline(config))
    assert kubeflow._strategy_class is LatestBlessedModelStrategy


def _resolver(pipeline):
    return next(node for node in pipeline.components if node.id == RESOLVER_ID)
