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


def _residual_block(x, filters: int, name: str):
    shortcut = x
    for i in (1, 2):
        x = ReflectionPadding2D(1, name=f"{name}_pad{i}")(x)
        x = layers.Conv2D(filters, 3, kernel_initializer=_conv_init(), name=f"{name}_conv{i}")(x)
        x = instance_norm(f"{name}_norm{i}")(x)
        if i == 1:
            x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.Add(name=f"{name}_add")([shortcut, x])


def build_generator(config: ModelConfig, name: str, image_size: int | None = None) -> keras.Model:
    """Builds the ResNet generator: c7s1-f, d2f, d4f, R4f x blocks, u2f, uf, c7s1-3, tanh.

    Args:
        config: Architecture settings (filters `f`, residual `blocks`).
        name: Model name, e.g. "generator_ab".
        image_size: Static input size, or None for any size divisible by 4.

    Returns:
        A Keras model mapping float images in [-1, 1] (NHWC, 3 channels) to the same range.
    """
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
        x = layers.Conv2DTranspose(
            filters * mult,
            3,
            strides=2,
            padding="same",
            kernel_initializer=_conv_init(),
            name=f"up{i}_conv",
        )(x)
        x = instance_norm(f"up{i}_norm")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = ReflectionPadding2D(3, name="out_pad")(x)
    x = layers.Conv2D(3, 7, kernel_initializer=_conv_init(), name="out_conv")(x)
    outputs = layers.Activation("tanh", name="out_tanh", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


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
