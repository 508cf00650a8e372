"""GoogLeNet (Inception v1): Szegedy et al., "Going deeper with convolutions", CVPR 2015.

A stem of plain convolutions, nine inception blocks in three stages separated
by max pooling, average pooling, dropout and one linear layer. In training, two
auxiliary classifiers on the outputs of blocks 4a and 4d add their losses
(weighted 0.3, see :func:`googlenet_loss`) to push gradient into the middle of
the network; in evaluation they are not run.

Stems (``stem=``):
    "imagenet"  the paper's, for 224x224 images. The stages run at 28, 14 and 7
                pixels: conv 7x7/2 and four max pools 3x3/2 take 224 -> 112 -> 56
                -> 28 -> 14 -> 7. The pools round up (ceil mode), as Caffe did;
                rounding down would give 112 -> 55.
    "cifar"     for 32x32 images: the stem keeps 32x32, so the stages run at 32,
                16 and 8 (max pools 3x3/2 with padding 1), and global average
                pooling ends the network.

Normalisation (``norm=``):
    "lrn"  the paper: every convolution is conv + ReLU, and the stem has two
           local response normalisations (size 5, alpha 1e-4, beta 0.75, k 1).
    "bn"   the batch-norm re-implementation (as in torchvision): every conv is
           conv without bias + BatchNorm2d (eps 1e-3) + ReLU, and no LRN.

Initialisation: He normal (``kaiming_normal``: std = sqrt(2 / fan_in)) for
every conv and linear weight, zero biases. The LRN network has no batch norm to
rescale its activations, so it needs weights that keep their variance steady
through the ReLUs to train at all. The exception is the last linear layer of
each head (:meth:`GoogLeNet.classifiers`: ``fc``, ``aux1.fc2``, ``aux2.fc2``),
whose weights start at zero, as in many reference implementations: every head
then predicts 1/num_classes for every class, so the first loss is exactly
ln 10 = 2.303 per head on CIFAR-10. He-initialised, these layers turned the
LRN network's large features into large random logits (losses of the main
and the two aux heads 5.4, 4.5 and 6.1 at width 0.25, 6.3, 5.6 and 6.4 at width
1, on the first 128 CIFAR-10 training images after ``manual_seed(0)``) that
training first had to unlearn. Zero weights still learn at the first step (their gradient is the
features times the softmax error); the layers below get gradient from the
second step on. Choose another scheme after construction:
``nn.init.initialize(model, "xavier_uniform")`` (it re-initialises every layer).

``width`` multiplies every channel count (rounded half up, at least 1),
the auxiliary heads' 128 and 1024 included but not ``num_classes``, so that
tests and CPU demos can run the same topology small.

Usage::

    model = GoogLeNet(num_classes=10, stem="cifar")
    logits, aux1, aux2 = model(images)                 # training mode
    loss = googlenet_loss((logits, aux1, aux2), labels)
    model.eval()
    logits = model(images)                             # the aux heads do not run
"""
import math
import numbers
from typing import NamedTuple

import minicnn.functional as F
from minicnn import Tensor, is_grad_enabled, nn
from minicnn.nn.utils.fusion import fuse_conv_bn_weights


# -- Table 1 of the paper, as data -------------------------------------------------------
class InceptionSpec(NamedTuple):
    """The output channels of each branch of one inception block.

    A row of Table 1 of Szegedy et al. (2015), whose columns are
    #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5 and pool proj.
    """

    n1x1: int          # branch 1: 1x1 conv
    n3x3_reduce: int   # branch 2: 1x1 conv ...
    n3x3: int          #           ... then 3x3 conv
    n5x5_reduce: int   # branch 3: 1x1 conv ...
    n5x5: int          #           ... then 5x5 conv
    pool_proj: int     # branch 4: 3x3 max pool, then 1x1 conv

    @property
    def out_channels(self):
        """Channels of the concatenated output: the last layer of each branch."""
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj

    def scaled(self, width):
        """This row with every channel count multiplied by ``width`` (see :func:`scale_channels`)."""
        return InceptionSpec(*(scale_channels(channels, width) for channels in self))


# The inception rows of Table 1 ("GoogLeNet incarnation of the Inception architecture").
# A block's input is the previous block's output (the stem gives 3a 192 channels),
# so the table needs no input column: it stays right when ``width`` rounds channels.
INCEPTION_TABLE = {
    #                   #1x1  #3x3 reduce  #3x3  #5x5 reduce  #5x5  pool proj    in -> out (width 1)
    "3a": InceptionSpec(64,   96,          128,  16,          32,   32),       # 192 -> 256
    "3b": InceptionSpec(128,  128,         192,  32,          96,   64),       # 256 -> 480
    "4a": InceptionSpec(192,  96,          208,  16,          48,   64),       # 480 -> 512
    "4b": InceptionSpec(160,  112,         224,  24,          64,   64),       # 512 -> 512
    "4c": InceptionSpec(128,  128,         256,  24,          64,   64),       # 512 -> 512
    "4d": InceptionSpec(112,  144,         288,  32,          64,   64),       # 512 -> 528
    "4e": InceptionSpec(256,  160,         320,  32,          128,  128),      # 528 -> 832
    "5a": InceptionSpec(256,  160,         320,  32,          128,  128),      # 832 -> 832
    "5b": InceptionSpec(384,  192,         384,  48,          128,  128),      # 832 -> 1024
}

STEMS = ("imagenet", "cifar")
NORMS = ("lrn", "bn")
INPUT_SIZES = {"imagenet": 224, "cifar": 32}  # the image side each stem is built for


def scale_channels(channels, width):
    """round(channels * width), halves rounded up, at least 1."""
    return max(1, math.floor(channels * width + 0.5))


# -- Building blocks ---------------------------------------------------------------------
class ConvReLU(nn.Module):
    """The paper's unit: convolution (with bias), then ReLU.

    The ReLU runs inside the convolution's op (``relu=True``): the same values,
    taken while each block of the product is still in cache, instead of a pass
    of its own over the output forward and backward.

    x: Tensor (N, in_channels, H, W) -> (N, out_channels, OH, OW).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x):
        return self.conv(x, relu=True)


class ConvBNReLU(nn.Module):
    """The batch-norm unit: convolution without bias (BN's shift replaces it), BatchNorm2d, ReLU.

    The ReLU runs inside the batch norm's op (``relu=True``): the same values, and on a
    GPU one kernel launch fewer forward and backward.

    Inference folds the batch norm into the convolution (minicnn's; PyTorch's eager
    evaluation does not): when the batch norm uses its running statistics (eval mode),
    gradient recording is off (``minicnn.no_grad()``) and neither ``conv`` nor ``bn`` has
    hooks, the unit is one ``conv2d(x, w', b', relu=True)`` with the weights of
    :func:`minicnn.nn.utils.fusion.fuse_conv_bn_weights`, and no batch-norm pass. The
    outputs agree with the unfolded path's up to float32 rounding. The folded weights are
    kept and made again when a tensor they come from is replaced or changed in place
    (its ``_version``: an optimizer step, a ``load_state_dict``, training-mode statistics).

    x: Tensor (N, in_channels, H, W) -> (N, out_channels, OH, OW).
    """

    _fold = None  # of the last fold: (the tensors and arrays read, eps and their versions, (weight, bias))

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x):
        if not self._folds():
            return self.bn(self.conv(x), relu=True)
        weight, bias = self._folded_weights()
        return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding, relu=True)

    def _folds(self):
        """Whether this call may fold: inference with running statistics, the layers as built, no hooks to call."""
        conv, bn = self.conv, self.bn
        return (not bn.training and not is_grad_enabled() and type(conv) is nn.Conv2d
                and type(bn) in (nn.BatchNorm2d, nn.SyncBatchNorm) and not conv._hooks and not bn._hooks
                and bn.running_mean is not None and bn.running_var is not None)

    def _folded_weights(self):
        """(weight (O, I, kh, kw), bias (O,)) of the folded conv: the kept ones while nothing they come from changed."""
        conv, bn = self.conv, self.bn
        tensors = (conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias)
        sources = [t for t in tensors if t is not None] + [t.array for t in tensors if t is not None]
        versions = [bn.eps] + [None if t is None else t._version for t in tensors]
        kept = self._fold
        if kept is None or kept[1] != versions or any(a is not b for a, b in zip(kept[0], sources)):
            folded = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                          bn.weight, bn.bias)
            self._fold = kept = (sources, versions, folded)
        return kept[2]


CONV_UNITS = {"lrn": ConvReLU, "bn": ConvBNReLU}


def paper_lrn(norm):
    """The stem's local response normalisation as a list of layers: one in the paper, none with BN."""
    return [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)] if norm == "lrn" else []


class Inception(nn.Module):
    """An inception block: four branches side by side, concatenated along the channels.

        branch1: 1x1 conv                                       -> spec.n1x1
        branch2: 1x1 conv (spec.n3x3_reduce), 3x3 conv pad 1    -> spec.n3x3
        branch3: 1x1 conv (spec.n5x5_reduce), 5x5 conv pad 2    -> spec.n5x5
        branch4: 3x3/1 max pool pad 1, 1x1 conv                 -> spec.pool_proj

    The 1x1 "reduce" convolutions shrink the channels before the expensive 3x3
    and 5x5 ones; every branch keeps H and W, so the outputs can be stacked.

    x: Tensor (N, in_channels, H, W) -> (N, spec.out_channels, H, W).
    """

    def __init__(self, in_channels, spec, unit=ConvReLU):
        self.in_channels, self.out_channels = in_channels, spec.out_channels
        self.branch1 = unit(in_channels, spec.n1x1, 1)
        self.branch2 = nn.Sequential(unit(in_channels, spec.n3x3_reduce, 1),
                                     unit(spec.n3x3_reduce, spec.n3x3, 3, padding=1))
        self.branch3 = nn.Sequential(unit(in_channels, spec.n5x5_reduce, 1),
                                     unit(spec.n5x5_reduce, spec.n5x5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     unit(in_channels, spec.pool_proj, 1))

    def forward(self, x):
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return F.concat([branch(x) for branch in branches], dim=1)


def inception_blocks(in_channels, width=1.0, unit=ConvReLU):
    """The nine blocks of :data:`INCEPTION_TABLE` scaled by ``width``, each fed by the one before.

    Returns:
        dict "3a" ... "5b" -> Inception; the input of "3a" has ``in_channels``.
    """
    blocks = {}
    for name, spec in INCEPTION_TABLE.items():
        blocks[name] = Inception(in_channels, spec.scaled(width), unit)
        in_channels = blocks[name].out_channels
    return blocks


class AuxHead(nn.Module):
    """Auxiliary classifier, read off the output of block 4a or 4d during training.

    avg pool 5x5/3 -> 1x1 conv (128) + ReLU (``unit``: with batch norm in the BN
    variant) -> linear (1024) + ReLU -> dropout 0.7 -> linear (num_classes). The
    pool turns the 14x14 (ImageNet) or 16x16 (CIFAR) map into 4x4, so the first
    linear layer sees 128 * 4 * 4 values.

    x: Tensor (N, in_channels, 14 or 16, 14 or 16) -> logits (N, num_classes).
    """

    pooled_size = 4

    def __init__(self, in_channels, num_classes, unit=ConvReLU, conv_channels=128, hidden=1024, dropout=0.7):
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv = unit(in_channels, conv_channels, 1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(conv_channels * self.pooled_size ** 2, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.flatten(self.conv(self.pool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# -- Stems and the pools between stages ----------------------------------------------------
def imagenet_stem(unit, norm, c64, c192):
    """The paper's stem. x: (N, 3, 224, 224) -> (N, c192, 28, 28)."""
    return nn.Sequential(
        unit(3, c64, 7, stride=2, padding=3),         # 224 -> 112
        nn.MaxPool2d(3, stride=2, ceil_mode=True),    # 112 -> 56
        *paper_lrn(norm),
        unit(c64, c64, 1),
        unit(c64, c192, 3, padding=1),
        *paper_lrn(norm),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),    # 56 -> 28
    )


def cifar_stem(unit, norm, c64, c192):
    """The paper's stem without its downsampling. x: (N, 3, 32, 32) -> (N, c192, 32, 32)."""
    return nn.Sequential(
        unit(3, c64, 3, padding=1),
        *paper_lrn(norm),
        unit(c64, c64, 1),
        unit(c64, c192, 3, padding=1),
        *paper_lrn(norm),
    )


def stage_pool(stem):
    """Max pool 3x3/2 that halves the map between stages: 28 -> 14 -> 7, or 32 -> 16 -> 8."""
    if stem == "imagenet":
        return nn.MaxPool2d(3, stride=2, ceil_mode=True)  # Caffe's rounding up: 28 -> 14, not 13
    return nn.MaxPool2d(3, stride=2, padding=1)


# -- The network ---------------------------------------------------------------------------
def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"GoogLeNet: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_dropout(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"GoogLeNet: {name} must be a dropout probability in [0, 1), got {value!r}")


def _check_arguments(num_classes, stem, aux, norm, dropout, aux_dropout, width):
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"GoogLeNet: num_classes must be an int >= 1, got {num_classes!r}")
    _check_choice("stem", stem, STEMS)
    if not isinstance(aux, bool):
        raise ValueError(f"GoogLeNet: aux must be True or False, got {aux!r}")
    _check_choice("norm", norm, NORMS)
    _check_dropout("dropout", dropout)
    _check_dropout("aux_dropout", aux_dropout)
    if (not isinstance(width, numbers.Real) or isinstance(width, bool)
            or not math.isfinite(width) or width <= 0):
        raise ValueError(f"GoogLeNet: width must be a finite number > 0, got {width!r}")


class GoogLeNet(nn.Module):
    """GoogLeNet / Inception v1 (see the module docs for the stems, norms and width).

    The paper's network (Table 1 of Szegedy et al., 2015), on a 224x224 image;
    every convolution is followed by ReLU:

        layer                      patch/stride   output (H x W x C)
        conv                       7x7/2          112 x 112 x 64
        max pool                   3x3/2           56 x 56 x 64
        LRN
        conv (3x3 reduce)          1x1/1           56 x 56 x 64
        conv                       3x3/1           56 x 56 x 192
        LRN
        max pool                   3x3/2           28 x 28 x 192
        inception 3a, 3b                           28 x 28 x 256, 480
        max pool                   3x3/2           14 x 14 x 480
        inception 4a ... 4e                        14 x 14 x 512, 512, 512, 528, 832
        max pool                   3x3/2            7 x 7 x 832
        inception 5a, 5b                            7 x 7 x 832, 1024
        avg pool                   7x7/1            1 x 1 x 1024
        dropout (40%)
        linear                                      num_classes    (softmax: in the loss)

    Auxiliary heads (:class:`AuxHead`) read the outputs of 4a and 4d.

    Args:
        num_classes: outputs of the classifiers (1000 for ImageNet).
        stem: "imagenet" (224x224 inputs, the paper's) or "cifar" (32x32 inputs).
        aux: build the two auxiliary classifiers (named aux1 and aux2).
        norm: "lrn" (the paper's) or "bn" (batch norm after every convolution).
        dropout: dropout probability before the final linear layer (0.4 in the paper).
        aux_dropout: dropout probability in the auxiliary heads (0.7 in the paper).
        width: multiplier of every channel count (1.0: the paper's network).

    Attributes:
        input_size: the image side the stem is built for (224 or 32).
    """

    def __init__(self, num_classes=1000, stem="imagenet", aux=True, norm="lrn", dropout=0.4,
                 aux_dropout=0.7, width=1.0):
        _check_arguments(num_classes, stem, aux, norm, dropout, aux_dropout, width)
        self.num_classes, self.aux, self.norm, self.width = int(num_classes), aux, norm, float(width)
        self.input_size = INPUT_SIZES[stem]
        unit = CONV_UNITS[norm]

        def c(channels):
            return scale_channels(channels, width)

        build_stem = imagenet_stem if stem == "imagenet" else cifar_stem
        self.stem = build_stem(unit, norm, c(64), c(192))
        block = inception_blocks(c(192), width, unit)
        self.inception3a = block["3a"]
        self.inception3b = block["3b"]
        self.maxpool3 = stage_pool(stem)
        self.inception4a = block["4a"]
        self.inception4b = block["4b"]
        self.inception4c = block["4c"]
        self.inception4d = block["4d"]
        self.inception4e = block["4e"]
        self.maxpool4 = stage_pool(stem)
        self.inception5a = block["5a"]
        self.inception5b = block["5b"]
        # 7x7 -> 1x1 for the paper's 224 inputs; global for CIFAR's 8x8 (the same op at those sizes).
        self.avgpool = nn.AvgPool2d(7, stride=1) if stem == "imagenet" else nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(block["5b"].out_channels, num_classes)
        self.aux1 = self.aux2 = None
        if aux:
            self.aux1 = AuxHead(block["4a"].out_channels, num_classes, unit, c(128), c(1024), aux_dropout)
            self.aux2 = AuxHead(block["4d"].out_channels, num_classes, unit, c(128), c(1024), aux_dropout)
        nn.init.initialize(self, "kaiming_normal")
        for classifier in self.classifiers():
            nn.init.zeros_(classifier.weight)  # every head starts out predicting 1/num_classes: see the module docs

    def classifiers(self):
        """The last linear layer of every head: ``fc``, and ``aux1.fc2`` and ``aux2.fc2`` if built."""
        return [self.fc] + [aux.fc2 for aux in (self.aux1, self.aux2) if aux is not None]

    def forward(self, x):
        """x: Tensor (N, 3, 224, 224) for the "imagenet" stem, (N, 3, 32, 32) for "cifar".

        Returns:
            logits (N, num_classes); in training mode with aux heads, the tuple
            (logits, aux1_logits, aux2_logits), each (N, num_classes).
        """
        run_aux = self.training and self.aux
        x = self.stem(x)
        x = self.inception3b(self.inception3a(x))
        x = self.maxpool3(x)
        x = self.inception4a(x)
        aux1 = self.aux1(x) if run_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if run_aux else None
        x = self.inception4e(x)
        x = self.maxpool4(x)
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(self.flatten(self.avgpool(x))))
        return (logits, aux1, aux2) if run_aux else logits


# -- The training loss ---------------------------------------------------------------------
def googlenet_loss(outputs, target, aux_weight=0.3, label_smoothing=0.0):
    """Cross-entropy of the main classifier plus ``aux_weight`` times that of each auxiliary one.

    The paper: "during training, their loss gets added to the total loss of the
    network with a discount weight (the losses of the auxiliary classifiers were
    weighted by 0.3)".

    Args:
        outputs: the model's output: logits Tensor (N, C), or in training the
            tuple (logits, aux1, aux2) of Tensors (N, C).
        target: integer class labels (N,) (anything F.cross_entropy takes).
        aux_weight: weight of the auxiliary losses (a number >= 0).
        label_smoothing: passed to every F.cross_entropy.
    Returns:
        scalar Tensor: CE(logits) + aux_weight * (CE(aux1) + CE(aux2)).
    """
    if not isinstance(aux_weight, numbers.Real) or isinstance(aux_weight, bool) or not aux_weight >= 0:
        raise ValueError(f"googlenet_loss: aux_weight must be a number >= 0, got {aux_weight!r}")
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    if not isinstance(outputs, (tuple, list)) or not outputs or not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError("googlenet_loss: outputs must be a logits Tensor or a tuple (logits, aux1, aux2) "
                        f"of Tensors, got {type(outputs).__name__}")
    main, *auxiliary = (F.cross_entropy(logits, target, label_smoothing) for logits in outputs)
    if not auxiliary:
        return main
    aux_total = auxiliary[0]
    for loss in auxiliary[1:]:
        aux_total = aux_total + loss
    return main + aux_total * float(aux_weight)
