"""PyTorch's dtype names, as NumPy dtypes: ``minicnn.float32``, ``minicnn.long``, ``minicnn.bool``...

Every ``dtype=`` in minicnn takes these (and any NumPy dtype, type or name), and
``tensor.dtype == minicnn.float32`` compares as in PyTorch. ``minicnn.float`` is
float32 and ``minicnn.double`` float64, PyTorch's meanings (NumPy's ``float`` is float64).
"""
import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 (PyTorch's name)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)  # noqa: A001 (PyTorch's name)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 (PyTorch's name)

__all__ = ["bool", "double", "float", "float16", "float32", "float64", "half", "int", "int16", "int32", "int64",
           "int8", "long", "short", "uint8"]
