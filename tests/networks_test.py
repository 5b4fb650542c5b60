"""Architecture tests: shapes and the reference implementation's parameter counts."""

import dataclasses

import numpy as np
import pytest
from conftest import REPO_ROOT

from cyclegan_tfx.config import ConfigError, ModelConfig, load_config
from cyclegan_tfx.model.networks import build_discriminator, build_generator

PAPER = ModelConfig(
    generator_filters=64, generator_blocks=9, discriminator_filters=64, discriminator_layers=3
)


def test_paper_generator_has_reference_parameter_count():
    # pytorch-CycleGAN-and-pix2pix, resnet_9blocks, instance norm: 11,378,179 parameters.
    assert build_generator(PAPER, "generator_ab").count_params() == 11_378_179


def test_paper_patchgan_has_reference_parameter_count():
    # pytorch-CycleGAN-and-pix2pix, basic (70x70 PatchGAN) n_layers=3: 2,764,737 parameters.
    assert build_discriminator(PAPER, "discriminator_a").count_params() == 2_764_737


def test_patchgan_output_is_30x30_for_256_inputs():
    discriminator = build_discriminator(PAPER, "discriminator_b")
    assert discriminator(np.zeros((1, 256, 256, 3), np.float32)).shape == (1, 30, 30, 1)


@pytest.mark.parametrize("size", [32, 64])
def test_generator_keeps_shape_and_range(size):
    config = ModelConfig(8, 2, 8, 3)
    generator = build_generator(config, "generator_ab")
    images = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    out = np.asarray(generator(images))
    assert out.shape == (2, size, size, 3)
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_blocks_and_filters_change_the_generator():
    small = build_generator(ModelConfig(8, 1, 8, 3), "g").count_params()
    more_blocks = build_generator(ModelConfig(8, 3, 8, 3), "g").count_params()
    wider = build_generator(ModelConfig(16, 1, 8, 3), "g").count_params()
    assert small < more_blocks and small < wider


@pytest.mark.parametrize("upsampling", ["transpose", "resize_conv"])
def test_unet_generator_keeps_shape_and_range(upsampling):
    config = ModelConfig(8, 0, 8, 2, upsampling=upsampling, generator="unet", unet_downsamplings=5)
    generator = build_generator(config, "generator_ab", 32)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    out = np.asarray(generator(images))
    assert out.shape == (2, 32, 32, 3) and np.abs(out).max() <= 1.0
    # A skip connection at every scale but the outermost.
    skips = [layer for layer in generator.layers if layer.name.startswith("skip")]
    assert len(skips) == 4


def test_resize_convolution_replaces_every_transposed_convolution():
    def transposed(config):
        generator = build_generator(config, "generator_ab", 32)
        return [layer for layer in generator.layers if "Transpose" in type(layer).__name__]

    assert len(transposed(ModelConfig(8, 1, 8, 2))) == 2  # the paper's two up-convolutions
    assert transposed(ModelConfig(8, 1, 8, 2, upsampling="resize_conv")) == []


def test_unet_needs_an_image_size_divisible_by_its_depth():
    config = load_config(REPO_ROOT / "params.yaml")
    model = dataclasses.replace(config.model, generator="unet", unet_downsamplings=7)
    with pytest.raises(ConfigError, match=r"divisible by 2 \*\* model.unet_downsamplings"):
        config.replace(model=model)


def _last_layer(generator):
    """The generator's output convolution."""
    names = {layer.name for layer in generator.layers}
    return generator.get_layer("out_conv" if "out_conv" in names else "up1_conv")


@pytest.mark.parametrize("generator", ["unet", "resnet"])
def test_attention_output_keeps_the_input_where_the_mask_is_zero(generator):
    config = ModelConfig(
        4, 1, 4, 2, generator=generator, unet_downsamplings=4, generator_output="attention"
    )
    network = build_generator(config, "generator_ab", 16)
    last = _last_layer(network)
    kernel, bias = last.get_weights()
    assert bias.shape == (4,)  # three content channels and the mask
    bias[3] = -100.0  # mask sigmoid(-100) = 0: the input passes through
    last.set_weights([np.zeros_like(kernel), bias])
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    assert np.allclose(np.asarray(network(images)), images, atol=1e-6)
    bias[3] = 100.0  # mask 1: the content (tanh of the content channels, here 0)
    last.set_weights([np.zeros_like(kernel), bias])
    assert np.allclose(np.asarray(network(images)), np.tanh(bias[:3]), atol=1e-6)


def test_residual_output_adds_the_change_to_the_input():
    config = ModelConfig(
        4, 1, 4, 2, generator="unet", unet_downsamplings=4, generator_output="residual"
    )
    network = build_generator(config, "generator_ab", 16)
    last = _last_layer(network)
    kernel, _ = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array([0.5, 0.0, -3.0], np.float32)])
    images = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    out = np.asarray(network(images))
    expected = np.clip(images + np.array([0.5, 0.0, -3.0]), -1.0, 1.0)
    assert np.allclose(out, expected, atol=1e-6)


def test_unet_input_skip_joins_the_image_at_full_resolution():
    base = ModelConfig(8, 0, 8, 2, generator="unet", unet_downsamplings=2, upsampling="resize_conv")
    plain = build_generator(base, "generator_ab", 16)
    skipped = build_generator(dataclasses.replace(base, unet_input_skip=True), "generator_ab", 16)
    assert "skip0" not in {layer.name for layer in plain.layers}
    join = skipped.get_layer("skip0")
    assert join.input[0] is skipped.input  # the image itself, not a feature map
    assert tuple(join.output.shape) == (None, 16, 16, 3 + 8)
    assert tuple(skipped.get_layer("full_res_out").output.shape) == (None, 16, 16, 3)
    images = np.random.default_rng(3).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    out = np.asarray(skipped(images))
    assert out.shape == images.shape and np.abs(out).max() <= 1.0


def test_pixelwise_generator_maps_each_pixel_by_its_own_colour():
    config = ModelConfig(
        16, 3, 8, 2, generator="pixelwise", generator_output="residual", upsampling="resize_conv"
    )
    generator = build_generator(config, "generator_ab")
    images = np.random.default_rng(4).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    out = np.asarray(generator(images))
    assert out.shape == images.shape and np.abs(out).max() <= 1.0
    assert np.abs(out - images).max() > 1e-3  # He-initialised: it does change the colours
    # The same colour gives the same output wherever it is: shuffled pixels, shuffled outputs.
    order = np.random.default_rng(5).permutation(64)
    shuffled = images.reshape(2, 64, 3)[:, order].reshape(images.shape)
    expected = out.reshape(2, 64, 3)[:, order].reshape(out.shape)
    assert np.allclose(np.asarray(generator(shuffled)), expected, atol=1e-6)
    # 3 -> 16 -> 16 -> 16 -> 3, 1x1 convolutions with bias.
    assert generator.count_params() == (3 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 3 + 3)
