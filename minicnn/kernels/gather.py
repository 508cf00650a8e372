"""The GPU's data movement in a few kernel launches: the gathers behind im2col, col2im and pooling.

On a GPU every array operation is at least one kernel launch, and a launch
costs microseconds whatever its size. The plain versions in
:mod:`minicnn.functional` (``im2col_strided``, ``max_pool2d_strided``...) make
one strided copy per kernel tap: 9 launches for a 3x3 kernel, 25 for 5x5, plus
the padding, and pooling a few more per tap. Here each of those jobs is one
*gather* (``take``) with an integer index that depends only on the geometry,
followed by at most two small elementwise or reduction ops.

The idea, on pixel rows: a channels-last image batch is the array
``planes`` (N, H*W, C) without a copy (:mod:`minicnn.layout`), and

    index (OH*OW*K,)    for output pixel o and tap t (K = kh*kw taps), the input pixel it reads
    planes.take(index, axis=1)   # (N, OH*OW*K, C): im2col's rows, once reshaped to (N*OH*OW, K*C)

Taps that fall in the padding read pixel 0, and one masked ``copyto``
(``outside``: True for those taps) then writes the padding value over them, in
place: 0 for convolution and average pooling, -inf for max pooling.

The backward ops (col2im, and pooling's backward) are the same gather read
the other way round, so that they need no scatter and no atomic adds, and
give the same result on every run: for each *input* pixel p and tap t, the
row (o, t) of the forward's gathered rows that copied p, if any (a tap reads
a given pixel for at most one window); a pointer to row 0 and a True in
``outside`` where none does. One ``take``, one masked ``copyto`` of zeros, and one
sum over the taps add each pixel's gradients in tap order, the plain version's order.

The index depends on the image size, the kernel, the stride and the padding,
never on the batch or the channels (``take`` along axis 1 repeats it for every
image, and a row carries all channels), so it is small: a few hundred KB for
the largest of GoogLeNet's layers. It is built once on the host with NumPy,
copied to the device once, and kept in a small cache per geometry and device.

The convolution's forms (:mod:`.conv`) and pooling's (:mod:`.pooling`) are
built from these. They run on NumPy arrays too: the tests hold them to the
plain versions on both, bit for bit (the sums add in the same order).
"""
import functools
from typing import NamedTuple

import numpy as np

from ..backend import device_of, get_array_module, to_device
from ..layout import from_channels_last

CACHED_GEOMETRIES = 64  # GoogLeNet has about 20 distinct ones (conv and pooling, forward and backward)


# -- the gather plans, built on the host and cached on the device -------------------------------
class Windows(NamedTuple):
    """What each window reads: gathered row (o, t) comes from input pixel ``pixel[o*K + t]``
    (``taps_first``: row (t, o), from ``pixel[t*OH*OW + o]``).

    pixel: int32 (OH*OW*K,), 0 for a tap outside the image.
    outside: bool (OH*OW*K, 1), True for a tap outside the image; None when every tap is inside.
    """

    pixel: object
    outside: object


class Coverage(NamedTuple):
    """Who reads each input pixel: slot (t, p) holds window ``window[t*H*W + p]``, whose tap t reads pixel p.

    Taps first, so that a sum over the taps adds whole (H*W, C) slabs one after
    the other, in tap order, whatever C is (NumPy adds a contiguous axis pairwise).

    window: int32 (K*H*W,), the output pixel, 0 where no window's tap t reads p.
    row: int32 (K*H*W,), window * K + t: the row of im2col's gathered (OH*OW*K) rows.
    tap: int16 (K*H*W, 1), t, or -1 where no window's tap t reads p.
    outside: bool (K*H*W, 1), tap < 0.
    """

    window: object
    row: object
    tap: object
    outside: object


def _window_coordinates(size, out, kernel, stride, padding):
    """(out, kernel) int array: the input coordinate that tap i of window o reads along one axis
    (negative, or >= size, in the padding)."""
    return np.arange(out)[:, None] * stride - padding + np.arange(kernel)


def windows_on_host(in_size, out_size, kernel, stride, padding, taps_first):
    """:class:`Windows` as NumPy arrays, for images ``in_size`` (H, W) and outputs ``out_size`` (OH, OW)."""
    (h, w), (oh, ow), taps = in_size, out_size, kernel[0] * kernel[1]
    r = _window_coordinates(h, oh, kernel[0], stride[0], padding[0])[:, None, :, None]  # (OH, 1, kh, 1)
    s = _window_coordinates(w, ow, kernel[1], stride[1], padding[1])[None, :, None, :]  # (1, OW, 1, kw)
    inside = (r >= 0) & (r < h) & (s >= 0) & (s < w)                                    # (OH, OW, kh, kw)
    pixel = np.where(inside, r * w + s, 0).astype(np.int32).reshape(oh * ow, taps)
    inside = inside.reshape(oh * ow, taps)
    if taps_first:
        pixel, inside = pixel.T, inside.T
    return Windows(pixel.reshape(-1), None if inside.all() else ~inside.reshape(-1, 1))


def _covering_window(size, out, kernel, stride, padding):
    """(size, kernel) int array: the window whose tap i reads input coordinate r along one axis, or -1."""
    offset = np.arange(size)[:, None] + padding - np.arange(kernel)  # = window * stride where one exists
    window = offset // stride
    return np.where((offset >= 0) & (offset % stride == 0) & (window < out), window, -1)


def coverage_on_host(in_size, out_size, kernel, stride, padding):
    """:class:`Coverage` as NumPy arrays, for images ``in_size`` (H, W) and outputs ``out_size`` (OH, OW)."""
    (h, w), (oh, ow), (kh, kw) = in_size, out_size, kernel
    i = _covering_window(h, oh, kh, stride[0], padding[0]).T[:, None, :, None]  # (kh, 1, H, 1)
    j = _covering_window(w, ow, kw, stride[1], padding[1]).T[None, :, None, :]  # (1, kw, 1, W)
    inside = (i >= 0) & (j >= 0)                                                 # (kh, kw, H, W)
    tap = np.arange(kh * kw).reshape(kh, kw, 1, 1)
    window = np.where(inside, i * ow + j, 0)
    return Coverage(window.astype(np.int32).reshape(-1),
                    np.where(inside, window * (kh * kw) + tap, 0).astype(np.int32).reshape(-1),
                    np.where(inside, tap, -1).astype(np.int16).reshape(-1, 1),
                    ~inside.reshape(-1, 1))


@functools.lru_cache(maxsize=CACHED_GEOMETRIES)
def _plan(build, device, *geometry):
    host = build(*geometry)
    return type(host)(*(None if a is None else to_device(a, device) for a in host))


def windows(x, out_size, kernel, stride, padding, taps_first):
    """The cached :class:`Windows` for images like ``x`` (N, C, H, W), on ``x``'s device."""
    return _plan(windows_on_host, device_of(x), x.shape[2:], tuple(out_size), kernel, stride, padding, taps_first)


def coverage(x_shape, like, out_size, kernel, stride, padding):
    """The cached :class:`Coverage` for images of ``x_shape``, on the device of the array ``like``."""
    return _plan(coverage_on_host, device_of(like), tuple(x_shape[2:]), tuple(out_size), kernel, stride, padding)


def clear_cache():
    """Forget every cached plan (their device memory is freed with them)."""
    _plan.cache_clear()


# -- gathers ------------------------------------------------------------------------------------
def planes(x):
    """x (N, C, H, W) -> (N, H*W, C): a view when x is stored channels-last, else one copy."""
    n, c, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n, h * w, c)


def gather_windows(x, out_size, kernel, stride, padding, pad_value, taps_first=False):
    """(N, OH*OW*K, C): every window of x, tap by tap (``taps_first``: (N, K*OH*OW, C), every window
    for each tap), with ``pad_value`` outside the image. 1-2 launches."""
    plan = windows(x, out_size, kernel, stride, padding, taps_first)
    gathered = planes(x).take(plan.pixel, axis=1)
    if plan.outside is not None:
        get_array_module(x).copyto(gathered, pad_value, where=plan.outside)  # in place: no second buffer
    return gathered


def sum_coverage(rows, index, outside, x_shape, kernel):
    """(N, H*W, C): for each input pixel, the sum over the taps of ``rows`` (N, L, C) at ``index`` (K*H*W,),
    leaving out the slots where ``outside`` is True; in tap order. 3 launches."""
    gathered = rows.take(index, axis=1)
    get_array_module(rows).copyto(gathered, 0, where=outside)
    n, c, h, w = x_shape
    return gathered.reshape(n, kernel[0] * kernel[1], h * w, c).sum(axis=1)


def as_images(pixels, n, h, w):
    """(N, H*W, C) -> (N, C, H, W) stored channels-last."""
    return from_channels_last(pixels.reshape(n, h, w, -1))

