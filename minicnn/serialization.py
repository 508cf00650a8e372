"""``minicnn.save`` and ``minicnn.load``: tensors and nested containers of them in a file, safely.

    minicnn.save(model.state_dict(), "model.pt")
    model.load_state_dict(minicnn.load("model.pt"))

The file is a zip archive: ``structure.json`` describes the object (dicts,
lists, tuples, strings, numbers, None, bools), and each tensor or array in it is
one ``arrays/<n>.npy`` file. Loading runs no code from the file (NumPy reads the
arrays with ``allow_pickle=False``, and JSON holds only data), so a file from
anyone is safe to load, unlike a pickle. Other objects (a Module, a function)
are refused when saving: save ``model.state_dict()``, as PyTorch recommends.
A path is written atomically (a temporary file beside it, then renamed): a
crash leaves the old file whole.
"""
import io
import json
import os
import zipfile

import numpy as np

from . import backend
from .engine import Tensor
from .files import write_atomically

FORMAT = "minicnn.save/1"


def _encode(value, arrays, where):
    """``value`` as JSON data, its arrays appended to ``arrays``; ``where`` names it in errors."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, float) or np.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return _encode(value.item(), arrays, where)
    if isinstance(value, Tensor):
        arrays.append(backend.as_numpy(value.array))
        return {"tensor": len(arrays) - 1, "device": str(backend.device_of(value.array)),
                "requires_grad": value.requires_grad}
    if isinstance(value, np.ndarray) or backend.is_gpu_array(value):
        arrays.append(backend.as_numpy(value))
        return {"ndarray": len(arrays) - 1}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, arrays, f"{where} key"), _encode(v, arrays, f"{where}[{k!r}]")]
                         for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"list": items} if isinstance(value, list) else {"tuple": items}
    hint = "; save its state_dict() instead" if hasattr(value, "state_dict") else ""
    raise TypeError(f"save: {where} is a {type(value).__name__}, which minicnn.save cannot store (it stores "
                    f"tensors, arrays, numbers, strings, None, and dicts, lists and tuples of them){hint}")


def save(obj, f):
    """Write ``obj`` (tensors, arrays, numbers, strings, None, in dicts, lists and tuples) to ``f``.

    Args:
        obj: e.g. ``model.state_dict()``, or ``{"model": ..., "optimizer": ..., "epoch": 3}``.
        f: a path (written atomically), or a binary file object open for writing.
    """
    arrays = []
    structure = {"format": FORMAT, "object": _encode(obj, arrays, "obj")}
    if not isinstance(f, (str, os.PathLike)):
        _write(f, structure, arrays)
        return
    content = io.BytesIO()  # the whole file in memory first, then written in one step
    _write(content, structure, arrays)
    write_atomically(f, content.getvalue())


def _write(file, structure, arrays):
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr("structure.json", json.dumps(structure))
        for index, array in enumerate(arrays):
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(f"arrays/{index}.npy", buffer.getvalue())


def _decode(data, archive, map_location):
    if not isinstance(data, dict):
        return [_decode(v, archive, map_location) for v in data] if isinstance(data, list) else data
    (kind, body), = [(k, v) for k, v in data.items() if k not in ("device", "requires_grad")]
    if kind == "float":
        return float(body)
    if kind == "dict":
        return {_decode(k, archive, map_location): _decode(v, archive, map_location) for k, v in body}
    if kind in ("list", "tuple"):
        items = [_decode(v, archive, map_location) for v in body]
        return items if kind == "list" else tuple(items)
    with archive.open(f"arrays/{body}.npy") as file:
        array = np.load(io.BytesIO(file.read()), allow_pickle=False)
    if kind == "ndarray":
        return array
    device = data["device"] if map_location is None else map_location
    return Tensor(backend.to_device(array, device), requires_grad=data["requires_grad"])


def load(f, map_location=None, weights_only=True):
    """Read what :func:`save` wrote.

    Args:
        f: a path, or a binary file object open for reading.
        map_location: where to put the tensors ("cpu", "cuda:0", a minicnn.device); by default the
            device each was saved from (a GPU one needs that GPU: pass map_location="cpu" without it).
        weights_only: PyTorch's switch to refuse arbitrary pickled objects; minicnn never loads
            them, so only True (the default) is accepted.
    Returns:
        the saved object: dicts, lists, tuples, numbers, strings, None; Tensors (keeping
        requires_grad) and NumPy arrays where they were saved.
    """
    if weights_only is not True:
        raise ValueError(f"load: weights_only must be True (minicnn loads only data, never pickled objects), "
                         f"got {weights_only!r}")
    if map_location is not None:
        backend.parse_device(map_location)  # a wrong name is reported before anything is read
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"load: {f!r} is not a file written by minicnn.save ({error}); files written "
                         "by torch.save are pickles, which minicnn does not load") from None
    with archive:
        try:
            structure = json.loads(archive.read("structure.json"))
        except KeyError:
            raise ValueError(f"load: {f!r} is a zip file, but not one written by minicnn.save "
                             "(it has no structure.json)") from None
        if structure.get("format") != FORMAT:
            raise ValueError(f"load: {f!r} has format {structure.get('format')!r}, expected {FORMAT!r}")
        return _decode(structure["object"], archive, map_location)
