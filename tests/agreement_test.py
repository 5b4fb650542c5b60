"""`make fid-agreement` (cyclegan_tfx.experiments.agreement): FID/KID vs ground-truth metrics
over training."""

import json

import pytest
from conftest import e2e_config, synthetic_images, write_e2e_dataset, write_examples, write_params

from cyclegan_tfx.experiments import agreement


def test_rank_agreement_is_oriented_by_the_paired_metric():
    improving = [30.0, 20.0, 10.0]
    assert agreement.rank_agreement(improving, [9.0, 6.0, 3.0], "mae") == pytest.approx(1.0)
    assert agreement.rank_agreement(improving, [15.0, 20.0, 25.0], "psnr") == pytest.approx(1.0)
    assert agreement.rank_agreement(improving, [0.9, 0.8, 0.7], "ssim") == pytest.approx(-1.0)


def test_agreement_table_pools_both_directions():
    curve = [
        {"fid_a2b": f, "fid_b2a": f, "kid_a2b": k, "kid_b2a": k, **paired}
        for f, k, paired in (
            (
                30.0,
                0.3,
                {
                    "mae_a2b": 9.0,
                    "mae_b2a": 8.0,
                    "psnr_a2b": 15.0,
                    "psnr_b2a": 16.0,
                    "ssim_a2b": 0.5,
                    "ssim_b2a": 0.6,
                },
            ),
            (
                20.0,
                0.2,
                {
                    "mae_a2b": 6.0,
                    "mae_b2a": 5.0,
                    "psnr_a2b": 18.0,
                    "psnr_b2a": 19.0,
                    "ssim_a2b": 0.7,
                    "ssim_b2a": 0.8,
                },
            ),
        )
    ]
    table = agreement.agreement_table(curve)
    assert set(table) == {"a2b", "b2a", "pooled"}
    assert table["a2b"]["fid~mae"] == pytest.approx(1.0)
    assert set(table["pooled"]) == {
        f"{u}~{m}" for u in ("fid", "kid") for m in ("mae", "psnr", "ssim")
    }


@pytest.mark.slow
def test_the_command_measures_a_real_run(tmp_path, capsys):
    write_e2e_dataset(tmp_path)
    config = e2e_config(tmp_path, epochs=2.0)
    params = write_params(config, tmp_path / "params.yaml")
    assert agreement.main(["--params", str(params), "--eval-every", "1"]) == 0
    result = json.loads((tmp_path / "reports" / agreement.REPORT_JSON).read_text())
    assert result["checkpoints"] == 3  # after the first step, then every epoch
    assert result["num_test"] == {"A": 24, "B": 24}
    for row in [*result["agreement"].values(), *result["agreement_random"].values()]:
        assert all(-1.0 <= value <= 1.0 for value in row.values())
    assert result["backbone"] == "inception-2015-12-05"
    assert result["random_backbone"].startswith("fallback-")
    text = (tmp_path / "reports" / agreement.REPORT_MD).read_text()
    assert "| pooled |" in text and "fid~mae" in text and "with random features" in text
    assert text in capsys.readouterr().out


def test_missing_or_unpaired_data_is_a_clear_error(tmp_path, capsys):
    config = e2e_config(tmp_path, epochs=1.0)
    params = write_params(config, tmp_path / "params.yaml")
    assert agreement.main(["--params", str(params)]) == 2
    assert "no TFRecords" in capsys.readouterr().err
    preprocessed = tmp_path / "build" / "preprocessed"
    images = {"A": synthetic_images(4, 16, "A", 0), "B": synthetic_images(4, 16, "B", 1)}
    write_examples(preprocessed / "train" / "part.tfrecord", images)
    write_examples(preprocessed / "test" / "part.tfrecord", images, split="test")  # no truth
    assert agreement.main(["--params", str(params)]) == 2
    assert "has no ground truth" in capsys.readouterr().err
