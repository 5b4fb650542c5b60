"""train.mixed_precision: true / false / auto (detected from the hardware, logged)."""

import logging

import pytest
import yaml
from conftest import REPO_ROOT

from cyclegan_tfx.config import ConfigError, TrainConfig, build_section
from cyclegan_tfx.model.precision import bfloat16_support, cpu_flags, resolve_mixed_precision


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nflags : x\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    ("gpus", "flags", "expected", "reason"),
    [
        ([], {"avx512f", "avx512_bf16"}, True, "CPU with avx512_bf16"),
        ([], {"amx_bf16"}, True, "CPU with amx_bf16"),
        ([], {"avx2"}, False, "CPU without avx512_bf16 or amx_bf16"),
        ([(8, 0)], set(), True, "GPU compute capability 8.0"),
        ([(7, 5)], {"avx512_bf16"}, False, "GPU compute capability 7.5 (bfloat16 needs 8.0+)"),
        ([(9, 0), (7, 0)], set(), False, "GPU compute capability 7.0"),
    ],
)
def test_bfloat16_support(gpus, flags, expected, reason):
    supported, why = bfloat16_support(gpus, flags)
    assert supported is expected
    assert why.startswith(reason)


def test_auto_follows_the_hardware_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="cyclegan_tfx.model.precision"):
        assert resolve_mixed_precision("auto", (True, "CPU with avx512_bf16")) is True
        assert resolve_mixed_precision("auto", (False, "CPU without avx512_bf16")) is False
        assert resolve_mixed_precision(False, (True, "ignored")) is False
        assert resolve_mixed_precision(True, (False, "ignored")) is True
    assert "bfloat16 mixed precision: CPU with avx512_bf16" in caplog.text
    assert "float32: CPU without avx512_bf16" in caplog.text
    assert "train.mixed_precision: false" in caplog.text


def test_the_setting_takes_true_false_or_auto():
    data = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["train"]
    for value in (True, False, "auto"):
        section = build_section(TrainConfig, {**data, "mixed_precision": value}, "train")
        assert section.mixed_precision == value
    with pytest.raises(ConfigError, match=r"train.mixed_precision: 'yes' fits none of"):
        build_section(TrainConfig, {**data, "mixed_precision": "yes"}, "train")
