"""The `kubeflow` section of params.yaml: defaults, values, errors that name the key."""

import pytest
import yaml
from conftest import REPO_ROOT

from cyclegan_tfx.config import ConfigError, KubeflowConfig, config_from_dict, load_config


def _params():
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_repo_params_have_a_kubeflow_section():
    kubeflow = load_config(REPO_ROOT / "params.yaml").kubeflow
    assert kubeflow.image
    assert "://" in kubeflow.pipeline_root
    assert kubeflow.gpus >= 0
    assert any(arg.startswith("--runner=") for arg in kubeflow.beam_args)


def test_section_is_optional():
    params = _params()
    del params["kubeflow"]
    assert config_from_dict(params).kubeflow == KubeflowConfig()


def test_round_trips_through_to_dict():
    config = load_config(REPO_ROOT / "params.yaml")
    assert config_from_dict(config.to_dict()).kubeflow == config.kubeflow


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pipeline_root": "build/tfx"}, r"kubeflow.pipeline_root must be a URI"),
        ({"serving_directory": "serving"}, r"kubeflow.serving_directory must be a URI"),
        ({"examples_root": ""}, r"kubeflow.examples_root must be a URI"),
        ({"gpus": -1}, r"kubeflow.gpus must be >= 0"),
        ({"gpus": 1, "gpu_type": " "}, r"kubeflow.gpu_type must name the accelerator"),
        ({"gpus": "two"}, r"kubeflow.gpus: expected an integer"),
        ({"image": ""}, r"kubeflow.image must not be empty"),
        ({"cpu_limit": 0}, r"kubeflow.cpu_limit must be > 0"),
        ({"memory_limit_gb": -4}, r"kubeflow.memory_limit_gb must be > 0"),
        ({"beam_args": "--runner=DataflowRunner"}, r"kubeflow.beam_args: expected a list"),
        ({"gpu": 1}, r"kubeflow: unknown key\(s\) \['gpu'\]"),
    ],
)
def test_invalid_values_are_clear_errors(values, message):
    params = _params()
    params["kubeflow"].update(values)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(params)


def test_absolute_paths_and_other_schemes_are_accepted():
    params = _params()
    params["kubeflow"].update(
        pipeline_root="s3://bucket/tfx", serving_directory="/mnt/models/cyclegan", gpus=0
    )
    kubeflow = config_from_dict(params).kubeflow
    assert kubeflow.pipeline_root == "s3://bucket/tfx"
    assert kubeflow.serving_directory == "/mnt/models/cyclegan"
