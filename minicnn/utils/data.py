"""Datasets and batches, with PyTorch's names (``torch.utils.data``).

    from minicnn.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True)
    for x, y in loader:             # x: (64, C, H, W), y: (64,)
        ...

A :class:`Dataset` has ``__getitem__(i)`` (one sample) and ``__len__``. A
:class:`DataLoader` draws the sample order (shuffled from minicnn's CPU random
stream, so ``minicnn.manual_seed`` repeats it), groups it into batches and
collates each batch: tensors, arrays and numbers stacked into one tensor with a
new first axis, tuples, lists and dicts of them collated entry by entry.
Everything runs in the calling process.
"""
import numbers

import numpy as np

from .. import backend, random
from ..engine import Tensor


class Dataset:
    """Base class of datasets: subclasses define ``__getitem__(index)`` and ``__len__()``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples from tensors of one length: sample i is ``tuple(t[i] for t in tensors)``.

    Args:
        *tensors: Tensors (N, ...) that agree in their first dimension N.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.ndim == 0:
                what = f"shape {t.shape}" if isinstance(t, Tensor) else type(t).__name__
                raise TypeError(f"TensorDataset: tensors[{i}] must be a Tensor with a first dimension, got {what}")
            if len(t) != len(tensors[0]):
                raise ValueError(f"TensorDataset: every tensor must have the same first dimension; tensors[{i}] "
                                 f"has {len(t)}, tensors[0] has {len(tensors[0])}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


def default_collate(batch):
    """One batch from a list of samples: tensors, arrays and numbers stacked along a new first axis
    (ints as int64, floats as float64, as PyTorch's collate), tuples, lists and dicts entry by entry."""
    first = batch[0]
    if isinstance(first, Tensor) or isinstance(first, np.ndarray) or backend.is_gpu_array(first):
        arrays = [sample.array if isinstance(sample, Tensor) else sample for sample in batch]
        with backend.on_device_of(arrays[0]):
            return Tensor(backend.get_array_module(arrays[0]).stack(arrays))
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in batch):
            raise ValueError("DataLoader: every sample in a batch must have the same number of entries")
        collated = [default_collate(list(entries)) for entries in zip(*batch)]
        return collated if isinstance(first, list) else tuple(collated)
    raise TypeError(f"DataLoader: cannot collate samples of type {type(first).__name__}; give collate_fn")


class DataLoader:
    """Batches of a dataset, in order or shuffled, each collated into tensors.

    Args:
        dataset: a :class:`Dataset` (anything with ``__getitem__`` and ``__len__``).
        batch_size: samples per batch (a positive int).
        shuffle: a new random order each epoch (each ``iter``), from minicnn's CPU random stream.
        drop_last: leave out the last batch if it is smaller than ``batch_size``.
        collate_fn: list of samples -> batch (default: :func:`default_collate`).
        num_workers, pin_memory: accepted for PyTorch programs; minicnn loads in the calling process.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, num_workers=0, collate_fn=None, pin_memory=False,
                 drop_last=False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must have __getitem__ and __len__, got {type(dataset).__name__}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.num_workers, self.pin_memory = int(num_workers), pin_memory
        self.collate_fn = default_collate if collate_fn is None else collate_fn

    def __len__(self):
        """The number of batches in one epoch."""
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        n = len(self.dataset)
        order = random.cpu_generator().permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.collate_fn([self.dataset[int(i)] for i in order[start:start + self.batch_size]])


__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]
