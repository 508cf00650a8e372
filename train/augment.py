"""Data augmentation and normalisation, as whole-batch array ops on the training device.

The data set stays on the device as uint8 (50,000 x 3 x 32 x 32 = 150 MB); each
batch is gathered, cropped, flipped and normalised there with a handful of
NumPy/CuPy calls (``xp`` is whichever module holds the images), so no Python
loop runs over images and nothing is copied from the host per step.

The random choices (crop offsets, flips) for a whole epoch are drawn on the
host from a seed at the start of the epoch and copied to the device once; see
``EpochPlan``.
"""
from typing import NamedTuple

import numpy as np

from minicnn.backend import get_array_module, to_device

# Per-channel statistics of the CIFAR-10 training images, as fractions of 255.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

PAD = 4  # random crops of 32 from the image padded by 4 zeros on every side


class EpochPlan(NamedTuple):
    """Everything random about one epoch, as arrays of length N (the training set size).

    ``order`` is the shuffled image order; ``row[i]``, ``col[i]`` (0..2*PAD) and
    ``flip[i]`` are the crop offsets and mirroring of the i-th image *in that order*.
    """

    order: np.ndarray  # (N,) int64, a permutation
    row: np.ndarray    # (N,) int64 in [0, 2*PAD]
    col: np.ndarray    # (N,) int64 in [0, 2*PAD]
    flip: np.ndarray   # (N,) bool

    @classmethod
    def draw(cls, seed, epoch, n):
        """The plan for ``epoch`` of a run seeded with ``seed``: a function of (seed, epoch) only,
        so a resumed run draws exactly the epoch it interrupted."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
        return cls(order=rng.permutation(n), row=rng.integers(0, 2 * PAD + 1, n),
                   col=rng.integers(0, 2 * PAD + 1, n), flip=rng.random(n) < 0.5)

    def to(self, device):
        """The same plan with its arrays on ``device`` (one copy per epoch)."""
        return EpochPlan(*(to_device(array, device) for array in self))


def crop_and_flip(images, row, col, flip):
    """Crop each image at its own offset from a zero-padded copy, mirroring some left-right.

    Args:
        images: (N, C, H, W) array (any dtype) on the device.
        row, col: (N,) integer offsets in [0, 2*PAD] into the padded image;
            PAD, PAD is the uncropped centre.
        flip: (N,) bool, True to mirror that image horizontally.
    Returns:
        (N, C, H, W) array of ``images``'s dtype: out[n] = padded[n, :, row[n]:row[n]+H, col[n]:col[n]+W],
        reversed along W where flip[n].
    """
    xp = get_array_module(images)
    n, channels, height, width = images.shape
    padded = xp.pad(images, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
    rows = row[:, None] + xp.arange(height)           # (N, H): padded row read for each output row
    cols = col[:, None] + xp.arange(width)            # (N, W)
    cols = xp.where(flip[:, None], cols[:, ::-1], cols)  # mirroring = reading the columns backwards
    # One gather with broadcast index arrays: (N,1,1,1), (1,C,1,1), (N,1,H,1), (N,1,1,W) -> (N,C,H,W).
    return padded[xp.arange(n)[:, None, None, None], xp.arange(channels)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def normalize(images, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    """uint8 images (N, C, H, W) -> float32 (N, C, H, W): (x / 255 - mean[c]) / std[c] per channel.

    The constants enter as Python floats, one channel at a time, so that no small
    host array has to be copied to the GPU on every batch.
    """
    out = images.astype(np.float32)
    for channel, (m, s) in enumerate(zip(mean, std)):
        out[:, channel] *= 1.0 / (255.0 * s)
        out[:, channel] -= m / s
    return out


def training_batch(images, plan, start, stop):
    """Gather, augment and normalise the images at positions start..stop of the epoch's order.

    Args:
        images: (N, 3, 32, 32) uint8, the whole training set on the device.
        plan: EpochPlan on the same device.
    Returns:
        (index (B,), float32 batch (B, 3, 32, 32)); ``index`` selects the labels.
    """
    index = plan.order[start:stop]
    batch = crop_and_flip(images[index], plan.row[start:stop], plan.col[start:stop], plan.flip[start:stop])
    return index, normalize(batch)
