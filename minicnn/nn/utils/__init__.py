"""minicnn.nn.utils: PyTorch's ``torch.nn.utils`` helpers; so far the conv + batch-norm fold (:mod:`.fusion`)."""
from . import fusion
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fusion"]
