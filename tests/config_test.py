"""params.yaml loading: typed sections, validation errors that name the key."""

import dataclasses

import pytest
import yaml
from conftest import REPO_ROOT

from cyclegan_tfx.config import ConfigError, config_from_dict, load_config


def _params():
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_repo_params_load_and_round_trip():
    config = load_config(REPO_ROOT / "params.yaml")
    assert config.paths.resolve("data") == REPO_ROOT / "data"
    assert config.paths.metadata_path.name == "metadata.sqlite"
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1  # type: ignore[misc]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_a_clear_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["train"].update(batch_size="four"), r"train.batch_size: expected an integer"),
        (lambda p: p["train"].update(bogus=1), r"train: unknown key\(s\) \['bogus'\]"),
        (lambda p: p["model"].pop("generator_blocks"), r"model.generator_blocks: missing"),
        (
            lambda p: p["train"]["optimizer"]["networks"]["generator_ab"].update(schedule="step"),
            r"schedule: 'step' is not one of",
        ),
        (
            lambda p: p["train"]["optimizer"]["networks"]["discriminator_a"].update(
                learning_rate=-1
            ),
            r"learning_rate must be > 0",
        ),
        (lambda p: p["preprocess"].update(image_size=30), r"multiple of 4"),
        (
            lambda p: p["model"].update(generator="resnet") or p["preprocess"].update(image_size=8),
            r"too small for a PatchGAN",
        ),
        (lambda p: p["preprocess"].update(image_size=32), r"divisible by 2 \*\* model.unet"),
        (lambda p: p["pipeline"].update(enable_cache="yes"), r"expected true/false"),
        (lambda p: p["train"].update(generator_ema_decay=1.0), r"generator_ema_decay must be null"),
    ],
)
def test_invalid_values_name_the_key(mutate, message):
    params = _params()
    mutate(params)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(params)


def test_relative_paths_resolve_against_the_params_file(tmp_path):
    params = _params()
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    config = load_config(path)
    assert config.paths.resolve("serving") == tmp_path / "serving"


def test_overrides_change_values_and_read_numbers_as_numbers():
    config = load_config(
        REPO_ROOT / "params.yaml",
        overrides=[
            "model.unet_downsamplings=2",
            "model.unet_input_skip=true",
            "train.optimizer.networks.generator_ab.learning_rate=8e-4",
        ],
    )
    assert config.model.unet_downsamplings == 2
    assert config.model.unet_input_skip is True
    assert config.train.optimizer.networks.generator_ab.learning_rate == pytest.approx(8e-4)
    assert load_config(REPO_ROOT / "params.yaml").model.unet_input_skip is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.unet_downsamplings", r"expected key.path=value"),
        ("model.no_such_key=1", r"model: unknown key"),
        ("modle.generator=unet", r"params has no section 'modle'"),
        ("seed.deeper=1", r"params has no section 'seed'"),
        ("model.generator=transformer", r"model.generator: 'transformer' is not one of"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO_ROOT / "params.yaml", overrides=[override])
