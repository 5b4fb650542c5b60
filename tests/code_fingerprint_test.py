"""Code fingerprints: which files a component runs, and that a change to one changes the key."""

import shutil

import pytest
from conftest import REPO_ROOT

from components import quality_metrics, trainer
from components.trainer import TRAINER_MODULE, trainer_custom_config
from cyclegan_tfx.code_fingerprint import CONFIG_KEY as CODE_FINGERPRINT_KEY
from cyclegan_tfx.code_fingerprint import StaleCodeError, code_fingerprint, module_closure
from cyclegan_tfx.config import load_config
from pipeline.eval_config import QUALITY_METRIC_MODULE, build_eval_config


@pytest.fixture
def project_copy(tmp_path):
    for package in ("cyclegan_tfx", "components", "pipeline"):
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def _names(paths, root=REPO_ROOT):
    return {path.relative_to(root).as_posix() for path in paths}


def test_trainer_closure_is_the_training_code():
    files = _names(module_closure(TRAINER_MODULE))
    assert {
        "components/trainer.py",
        "components/__init__.py",
        "cyclegan_tfx/config.py",
        "cyclegan_tfx/model/networks.py",
        "cyclegan_tfx/model/train.py",
        "cyclegan_tfx/model/export.py",
        "cyclegan_tfx/model/__init__.py",
    } <= files
    assert not {f for f in files if f.startswith(("cyclegan_tfx/evaluation/fid/", "pipeline/"))}
    assert "components/quality_metrics.py" not in files


def test_metric_closure_is_the_metric_code():
    files = _names(module_closure(QUALITY_METRIC_MODULE))
    assert {"components/quality_metrics.py", "cyclegan_tfx/evaluation/fid/distance.py"} <= files
    assert "cyclegan_tfx/evaluation/paired_metrics.py" in files
    assert "cyclegan_tfx/evaluation/fid/backbone.py" in files
    # No training code: of model/, only the optimizer strategy enum, which the config reads
    # (`train.optimizer.strategy`; it was `cyclegan_tfx/strategies.py`, in this closure too).
    model_files = {f for f in files if f.startswith("cyclegan_tfx/model/")}
    assert model_files == {
        "cyclegan_tfx/model/__init__.py",
        "cyclegan_tfx/model/optimizer_strategies.py",
    }


def test_a_change_in_the_closure_changes_the_fingerprint(project_copy):
    before = code_fingerprint(TRAINER_MODULE, root=project_copy)
    assert before == code_fingerprint(TRAINER_MODULE)  # the copy is the same code
    networks = project_copy / "cyclegan_tfx/model/networks.py"
    networks.write_text(networks.read_text().replace("_INIT_STDDEV = 0.02", "_INIT_STDDEV = 0.05"))
    after = code_fingerprint(TRAINER_MODULE, root=project_copy)
    assert after.digest != before.digest and after.files == before.files
    # The metric does not run the networks: its key is unchanged.
    assert code_fingerprint(QUALITY_METRIC_MODULE, root=project_copy) == code_fingerprint(
        QUALITY_METRIC_MODULE
    )


def test_code_outside_the_closure_does_not_count(project_copy):
    before = code_fingerprint(TRAINER_MODULE, root=project_copy)
    explain = project_copy / "pipeline/explain_gate.py"
    explain.write_text(explain.read_text() + "\n# changed\n")
    assert code_fingerprint(TRAINER_MODULE, root=project_copy) == before


def test_relative_imports_are_followed(project_copy):
    helper = project_copy / "cyclegan_tfx/model/helper_for_test.py"
    helper.write_text("VALUE = 1\n")
    train = project_copy / "cyclegan_tfx/model/train.py"
    train.write_text("from .helper_for_test import VALUE  # noqa\n" + train.read_text())
    files = _names(module_closure(TRAINER_MODULE, project_copy), project_copy)
    assert "cyclegan_tfx/model/helper_for_test.py" in files


def test_unknown_module_is_an_error():
    with pytest.raises(ModuleNotFoundError):
        code_fingerprint("cyclegan_tfx.no_such_module")


def test_pipeline_passes_the_fingerprints_as_execution_properties(tmp_path):
    config = load_config(REPO_ROOT / "params.yaml")
    custom = trainer_custom_config(config, str(tmp_path))
    assert custom[CODE_FINGERPRINT_KEY] == code_fingerprint(TRAINER_MODULE).digest
    eval_config = build_eval_config(config.evaluate, ground_truth=True)
    metric_configs = [m.config for spec in eval_config.metrics_specs for m in spec.metrics]
    expected = code_fingerprint(QUALITY_METRIC_MODULE).digest
    assert metric_configs and all(expected in text for text in metric_configs)


def test_trainer_refuses_to_run_other_code_than_it_was_compiled_with(tmp_path):
    from tfx import v1 as tfx

    config = load_config(REPO_ROOT / "params.yaml")
    custom = trainer_custom_config(config, str(tmp_path))
    custom[CODE_FINGERPRINT_KEY] = "sha256:" + "0" * 64
    fn_args = tfx.components.FnArgs(custom_config=custom, train_files=[])
    # `run_fn` through the module: TFX's Trainer reloads `components.trainer` when it imports
    # `run_fn` (tfx/utils/import_utils.py), so a name imported from it here could be stale.
    with pytest.raises(StaleCodeError, match="rebuild the pipeline image"):
        trainer.run_fn(fn_args)


def test_metric_refuses_to_run_other_code_than_it_was_compiled_with():
    quality_metrics.check_code_fingerprint(code_fingerprint(QUALITY_METRIC_MODULE).digest)
    quality_metrics.check_code_fingerprint(None)
    with pytest.raises(StaleCodeError, match="recompile"):
        quality_metrics.TranslationQuality(code_fingerprint="sha256:0").computations()
