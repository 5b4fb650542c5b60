"""Reads the weights of a TorchScript archive with numpy alone (no PyTorch).

A TorchScript file (`torch.jit.save`) is a zip: `<name>/data.pkl` pickles the module tree,
each module an object of a `__torch__.*` class whose state is a dict of its attributes, and
each tensor a call `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
whose storage is a *persistent id* `("storage", torch.FloatStorage, key, device, numel)`
naming the raw little-endian bytes at `<name>/data/<key>`. :func:`read_torchscript` resolves
those ids to numpy arrays over the raw storages and returns the tree flattened to dotted
names, e.g. `net.layers.mixed_4.tower.conv_1.weight` (an array) or `...conv_1.padding`
(`[0, 3]`), plus each module's class under `<path>.__class__`.

Only what a module of tensors, ints, floats, bools and int lists needs is understood; anything
else (code objects, other globals) raises :class:`TorchScriptError`, never runs: the pickle is
read with a restricted unpickler, so a hostile file cannot execute code here.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

CLASS_KEY = "__class__"
"""Suffix of the flattened entry that names a module's TorchScript class."""

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "BoolStorage": np.dtype("?"),
}
_SKIPPED_ATTRIBUTES = {"training", "_is_full_backward_hook"}


class TorchScriptError(ValueError):
    """The file is not a TorchScript archive this reader understands."""


class _Module:
    """A pickled `__torch__.*` module: its class name and its attributes."""

    qualname = ""

    def __init__(self, *_: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> np.ndarray:
    """`torch._utils._rebuild_tensor_v2`: a (copied) strided view of a storage."""
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]
    )
    return view.copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return type(name, (_Module,), {"qualname": f"{module}.{name}"})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise TorchScriptError(f"unsupported object in the pickle: {module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise TorchScriptError(f"unsupported persistent id {pid!r}")
        _, dtype, key, _, numel = pid
        try:
            raw = self._archive.read(f"{self._prefix}data/{key}")
        except KeyError as error:
            raise TorchScriptError(f"storage {key} missing from the archive") from error
        if len(raw) < numel * dtype.itemsize:
            raise TorchScriptError(f"storage {key} is truncated: {len(raw)} bytes")
        return np.frombuffer(raw, dtype=dtype, count=numel)


def _flatten(module: _Module, prefix: str, out: dict[str, Any]) -> None:
    out[f"{prefix}{CLASS_KEY}"] = module.qualname
    for name, value in module.state.items():
        if name in _SKIPPED_ATTRIBUTES:
            continue
        if isinstance(value, _Module):
            _flatten(value, f"{prefix}{name}.", out)
        else:
            out[f"{prefix}{name}"] = value


def read_torchscript(path: str | Path) -> dict[str, Any]:
    """The module tree of a TorchScript file, flattened to dotted names.

    Args:
        path: The `.pt` file written by `torch.jit.save`.

    Returns:
        {dotted attribute name: numpy array | int | float | bool | list}, and
        {`<module path>.__class__`: the module's TorchScript class} (the root module's entry is
        `__class__`).

    Raises:
        TorchScriptError: If the file is not a zip with one `data.pkl`, or holds objects this
            reader does not understand.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise TorchScriptError(f"{path}: expected one */data.pkl, found {pickles}")
            prefix = pickles[0][: -len("data.pkl")]
            root = _Unpickler(archive.read(pickles[0]), archive, prefix).load()
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, OSError) as error:
        raise TorchScriptError(f"{path}: not a readable TorchScript archive: {error}") from error
    if not isinstance(root, _Module):
        raise TorchScriptError(f"{path}: the pickle's root is not a module")
    flat: dict[str, Any] = {}
    _flatten(root, "", flat)
    return flat
