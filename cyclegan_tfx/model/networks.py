"""ResNet generator and PatchGAN discriminator, as in the reference CycleGAN implementation.

Layer-for-layer the PyTorch reference (junyanz/pytorch-CycleGAN-and-pix2pix, `--norm instance`):
convolutions keep their bias because instance norm has no affine parameters there, so the
paper configuration has the same parameter counts (9-block generator: 11,378,179;
70x70 PatchGAN: 2,764,737).
"""

from __future__ import annotations

import keras
from keras import layers

from cyclegan_tfx.config import ModelConfig

_INIT_STDDEV = 0.02  # the reference's `init_type=normal, init_gain=0.02`


def _conv_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=_INIT_STDDEV)


def instance_norm(name: str) -> layers.Layer:
    """Instance normalisation without affine parameters (PyTorch InstanceNorm2d default)."""
    return layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5, name=name)


@keras.saving.register_keras_serializable(package="cyclegan_tfx")
class ReflectionPadding2D(layers.Layer):
    """Reflection padding of the two spatial dimensions (NHWC)."""

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, inputs):
        """Pads height and width by `padding` on each side, reflecting."""
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        """Adds 2 * padding to the spatial dimensions."""
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self):
        """Keras serialisation."""
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="cyclegan_tfx")
class ResidualOutput(layers.Layer):
    """The image plus the generator's change, clipped to the image range [-1, 1]."""

    def call(self, image, change):
        """`clip(image + change, -1, 1)`."""
        return keras.ops.clip(image + keras.ops.cast(change, image.dtype), -1.0, 1.0)


@keras.saving.register_keras_serializable(package="cyclegan_tfx")
class AttentionOutput(layers.Layer):
    """Attention-guided output (Mejjati et al. 2018): `mask * content + (1 - mask) * image`.

    The last layer's first three channels are the content (tanh), the fourth the mask
    (sigmoid): where the mask is 0 the input passes through unchanged.
    """

    def call(self, image, last):
        """Blends the content into the image where the mask says so."""
        last = keras.ops.cast(last, image.dtype)
        content = keras.ops.tanh(last[..., :3])
        mask = keras.ops.sigmoid(last[..., 3:])
        return mask * content + (1.0 - mask) * image


OUTPUT_CHANNELS = {"tanh": 3, "residual": 3, "attention": 4}
"""Channels of the generator's last layer, per `model.generator_output`."""


def _output(inputs, x, mode: str):
    """The generator's last step: tanh of the last layer, the input plus it, or a blend."""
    if mode == "residual":
        return ResidualOutput(name="out_residual", dtype="float32")(inputs, x)
    if mode == "attention":
        return AttentionOutput(name="out_attention", dtype="float32")(inputs, x)
    return layers.Activation("tanh", name="out_tanh", dtype="float32")(x)


def _residual_block(x, filters: int, name: str):
    shortcut = x
    for i in (1, 2):
        x = ReflectionPadding2D(1, name=f"{name}_pad{i}")(x)
        x = layers.Conv2D(filters, 3, kernel_initializer=_conv_init(), name=f"{name}_conv{i}")(x)
        x = instance_norm(f"{name}_norm{i}")(x)
        if i == 1:
            x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.Add(name=f"{name}_add")([shortcut, x])


def _upsample(x, filters: int, mode: str, name: str, transpose_kernel: int = 3):
    """2x upsampling: the paper's transposed convolution, or resize-convolution."""
    if mode == "transpose":
        return layers.Conv2DTranspose(
            filters,
            transpose_kernel,
            strides=2,
            padding="same",
            kernel_initializer=_conv_init(),
            name=f"{name}_conv",
        )(x)
    if mode == "resize_conv":
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
        x = ReflectionPadding2D(1, name=f"{name}_pad")(x)
        return layers.Conv2D(filters, 3, kernel_initializer=_conv_init(), name=f"{name}_conv")(x)
    raise ValueError(f"unknown upsampling {mode!r}")


def build_generator(config: ModelConfig, name: str, image_size: int | None = None) -> keras.Model:
    """Builds the generator `model.generator` names: the paper's ResNet, the U-Net, or per-pixel.

    Args:
        config: Architecture settings.
        name: Model name, e.g. "generator_ab".
        image_size: Static input size, or None for any size divisible by 4 (ResNet) or by
            2 ** `unet_downsamplings` (U-Net).

    Returns:
        A Keras model mapping float images in [-1, 1] (NHWC, 3 channels) to the same range.
    """
    if config.generator == "unet":
        return build_unet_generator(config, name, image_size)
    if config.generator == "pixelwise":
        return build_pixelwise_generator(config, name, image_size)
    return build_resnet_generator(config, name, image_size)


def build_pixelwise_generator(
    config: ModelConfig, name: str, image_size: int | None = None
) -> keras.Model:
    """A per-pixel colour mapping: `generator_blocks` 1x1 convolutions + ReLU, then the output.

    Each output pixel is a learned function of its own input pixel's colour and nothing else
    (a learned 3D lookup table, as in unpaired LUT learning, Zeng et al. 2020): it can apply any
    colour grade exactly and cannot change texture or structure, so it is for colour tasks (the
    style case), not for the rings.
    """
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    # He / Glorot, not the reference's normal(0, 0.02) (_conv_init): with no normalisation
    # between the 1x1 layers, 0.02 shrinks the signal at every layer and the change stayed near
    # 0 (MAE 30.3 / 27.7 after 40 epochs; docs/style_case.md).
    for i in range(config.generator_blocks):
        x = layers.Conv2D(
            config.generator_filters, 1, kernel_initializer="he_normal", name=f"pixel{i + 1}_conv"
        )(x)
        x = layers.ReLU(name=f"pixel{i + 1}_relu")(x)
    channels = OUTPUT_CHANNELS[config.generator_output]
    x = layers.Conv2D(channels, 1, kernel_initializer="glorot_uniform", name="pixel_out")(x)
    return keras.Model(inputs, _output(inputs, x, config.generator_output), name=name)


def _unet_down(x, filters: int, name: str, *, norm: bool, activate: bool):
    if activate:
        x = layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)
    x = layers.Conv2D(
        filters, 4, strides=2, padding="same", kernel_initializer=_conv_init(), name=f"{name}_conv"
    )(x)
    return instance_norm(f"{name}_norm")(x) if norm else x


def _unet_up(x, filters: int, mode: str, name: str):
    x = layers.ReLU(name=f"{name}_relu")(x)
    # The reference's U-Net up-convolution is ConvTranspose2d(kernel 4, stride 2, padding 1).
    return _upsample(x, filters, mode, name, transpose_kernel=4)


def build_unet_generator(
    config: ModelConfig, name: str, image_size: int | None = None
) -> keras.Model:
    """The U-Net generator of the reference code (`--netG unet_<size>`, pix2pix's generator).

    `unet_downsamplings` stride-2 4x4 convolutions (filters f, 2f, 4f, then 8f), instance norm
    and LeakyReLU(0.2) on the way down, the mirror image with ReLU on the way up, and a skip
    connection (concatenation) at every scale; tanh or residual output
    (`model.generator_output`). With 6 downsamplings a 64 px image
    reaches 1 x 1. The skips carry the input's detail straight to the output, so a colour or
    texture mapping is learned in far fewer steps than through the ResNet's bottleneck.
    """
    downs = config.unet_downsamplings
    f = config.generator_filters
    widths = [min(f * 2**i, f * 8) for i in range(downs)]
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    skips = []
    x = inputs
    for level, width in enumerate(widths):
        outermost, innermost = level == 0, level == downs - 1
        x = _unet_down(
            x, width, f"down{level + 1}", norm=not (outermost or innermost), activate=not outermost
        )
        skips.append(x)
    channels = OUTPUT_CHANNELS[config.generator_output]
    # Up-convolution widths per level: the mirror of the level below, and at the outermost
    # the output itself (or, with the input skip, features for its head).
    up_widths = [f if config.unet_input_skip else channels, *widths[:-1]]
    for level in reversed(range(downs)):
        if level < downs - 1:
            x = layers.Concatenate(name=f"skip{level + 1}")([skips[level], x])
        outermost = level == 0
        x = _unet_up(x, up_widths[level], config.upsampling, f"up{level + 1}")
        if not outermost or config.unet_input_skip:
            x = instance_norm(f"up{level + 1}_norm")(x)
    if config.unet_input_skip:
        x = _input_skip_head(inputs, x, f, channels)
    return keras.Model(inputs, _output(inputs, x, config.generator_output), name=name)


def _input_skip_head(image, x, filters: int, channels: int):
    """`model.unet_input_skip`: the input image joins the features at full resolution.

    The reference U-Net's last skip is the first downsampling's output, at half resolution, so
    every output pixel is made from 2x2-pixel features (the colour grade came out softened).
    Here the upsampled features and the image itself go through a 3x3 and a 1x1 convolution at
    full resolution: each output pixel can follow its own input pixel.
    """
    x = layers.ReLU(name="full_res_relu")(x)
    x = layers.Concatenate(name="skip0")([image, x])
    x = ReflectionPadding2D(1, name="full_res_pad")(x)
    x = layers.Conv2D(filters, 3, kernel_initializer=_conv_init(), name="full_res_conv")(x)
    x = layers.ReLU(name="full_res_conv_relu")(x)
    return layers.Conv2D(channels, 1, kernel_initializer=_conv_init(), name="full_res_out")(x)


def build_resnet_generator(
    config: ModelConfig, name: str, image_size: int | None = None
) -> keras.Model:
    """The paper's ResNet generator: c7s1-f, d2f, d4f, R4f x blocks, u2f, uf, c7s1-3, tanh."""
    filters = config.generator_filters
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = ReflectionPadding2D(3, name="in_pad")(inputs)
    x = layers.Conv2D(filters, 7, kernel_initializer=_conv_init(), name="in_conv")(x)
    x = instance_norm("in_norm")(x)
    x = layers.ReLU(name="in_relu")(x)
    for i, mult in enumerate((2, 4), start=1):
        x = layers.Conv2D(
            filters * mult,
            3,
            strides=2,
            padding="same",
            kernel_initializer=_conv_init(),
            name=f"down{i}_conv",
        )(x)
        x = instance_norm(f"down{i}_norm")(x)
        x = layers.ReLU(name=f"down{i}_relu")(x)
    for i in range(config.generator_blocks):
        x = _residual_block(x, filters * 4, name=f"res{i + 1}")
    for i, mult in enumerate((2, 1), start=1):
        x = _upsample(x, filters * mult, config.upsampling, name=f"up{i}")
        x = instance_norm(f"up{i}_norm")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = ReflectionPadding2D(3, name="out_pad")(x)
    channels = OUTPUT_CHANNELS[config.generator_output]
    x = layers.Conv2D(channels, 7, kernel_initializer=_conv_init(), name="out_conv")(x)
    return keras.Model(inputs, _output(inputs, x, config.generator_output), name=name)


def build_discriminator(
    config: ModelConfig, name: str, image_size: int | None = None
) -> keras.Model:
    """Builds the PatchGAN discriminator (70x70 receptive field with 3 layers).

    C64 (no norm) - C128 - C256 - C512 (stride 1) - 1 channel, 4x4 kernels, LeakyReLU 0.2.

    Args:
        config: Architecture settings (`discriminator_filters`, `discriminator_layers`).
        name: Model name, e.g. "discriminator_a".
        image_size: Static input size, or None.

    Returns:
        A Keras model mapping images in [-1, 1] to a map of real/fake logits (LSGAN targets).
    """
    filters = config.discriminator_filters
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.ZeroPadding2D(1, name="pad0")(inputs)
    x = layers.Conv2D(filters, 4, strides=2, kernel_initializer=_conv_init(), name="conv0")(x)
    x = layers.LeakyReLU(0.2, name="lrelu0")(x)
    mult = 1
    for i in range(1, config.discriminator_layers + 1):
        mult = min(2**i, 8)
        stride = 2 if i < config.discriminator_layers else 1
        x = layers.ZeroPadding2D(1, name=f"pad{i}")(x)
        x = layers.Conv2D(
            filters * mult, 4, strides=stride, kernel_initializer=_conv_init(), name=f"conv{i}"
        )(x)
        x = instance_norm(f"norm{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i}")(x)
    x = layers.ZeroPadding2D(1, name="pad_out")(x)
    outputs = layers.Conv2D(
        1, 4, strides=1, kernel_initializer=_conv_init(), name="conv_out", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name=name)
