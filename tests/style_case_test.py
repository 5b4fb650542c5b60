"""`make style-case`: the report's table and verdict, `--set`, and its errors."""

import pytest
from conftest import REPO_ROOT

from cyclegan_tfx.config import DIRECTIONS, load_config
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.experiments import style_case


def _result(model_mae, colour_mae, overrides=()):
    scores = {}
    for direction in DIRECTIONS:
        keys = KEYS[direction]
        scores[keys.paired("mae")] = model_mae
        scores[keys.paired("mae", "_colour_transfer")] = colour_mae
        scores[keys.paired("mae", "_identity")] = 35.0
        scores[keys.fid] = 180.0
    return {
        "scores": scores,
        "steps": 1200,
        "wall_seconds": 100.0,
        "backbone": "inception-2015-12-05",
        "machine": "x86_64, cpu",
        "overrides": list(overrides),
    }


def test_the_verdict_follows_the_numbers():
    assert "is below colour transfer's" in style_case.markdown(_result(4.0, 5.0))
    text = style_case.markdown(_result(6.0, 5.0))
    assert "is NOT below colour transfer's" in text
    assert "| a2b | model | 6.00 | - | - | 180.0 |" in text
    assert "| a2b | colour transfer | 5.00 |" in text


def test_the_report_names_the_overrides():
    text = style_case.markdown(_result(6.0, 5.0, ["model.unet_downsamplings=2"]))
    assert "params.yaml's model with model.unet_downsamplings=2 trained 1200 steps" in text
    assert "params.yaml's model trained 1200 steps" in style_case.markdown(_result(6.0, 5.0))


def test_grade_config_trains_on_the_colour_grade_data():
    config = load_config(REPO_ROOT / "params.yaml")
    graded = style_case.grade_config(config)
    assert graded.paths.preprocessed == config.paths.preprocessed_grade
    assert graded.model == config.model and graded.train == config.train


@pytest.mark.parametrize("bad", ["model.no_such_key=1", "train.epochs"])
def test_a_bad_set_is_an_error_without_traceback(bad, capsys):
    code = style_case.main(["--params", str(REPO_ROOT / "params.yaml"), "--set", bad])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
