"""minicnn.utils: PyTorch's ``torch.utils`` helpers; so far ``minicnn.utils.data`` (datasets and batches)."""
from . import data

__all__ = ["data"]
