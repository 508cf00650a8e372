"""Naive reference implementations: plain Python loops over every output element.

They are slow and obviously right, written from the definitions rather than
from minicnn's code, so that a forward test compares two independent answers.
All take and return float64 NumPy arrays.
"""
import math

import numpy as np


def conv2d(x, w, b, stride, padding):
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for b_ in range(n):
        for oc in range(o):
            for i in range(oh):
                for j in range(ow):
                    total = 0.0 if b is None else b[oc]
                    for ic in range(c):
                        for di in range(kh):
                            for dj in range(kw):
                                r, s = i * sh - ph + di, j * sw - pw + dj
                                if 0 <= r < h and 0 <= s < width:
                                    total += x[b_, ic, r, s] * w[oc, ic, di, dj]
                    y[b_, oc, i, j] = total
    return y


def conv2d_backward(x, w, gy, stride, padding):
    """(dx, dw, db) of conv2d for an output gradient gy, each product of the forward sum routed back."""
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    dx, dw, db = np.zeros_like(x), np.zeros_like(w), np.zeros(o)
    for b_ in range(n):
        for oc in range(o):
            for i in range(gy.shape[2]):
                for j in range(gy.shape[3]):
                    g = gy[b_, oc, i, j]
                    db[oc] += g
                    for ic in range(c):
                        for di in range(kh):
                            for dj in range(kw):
                                r, s = i * sh - ph + di, j * sw - pw + dj
                                if 0 <= r < h and 0 <= s < width:
                                    dx[b_, ic, r, s] += g * w[oc, ic, di, dj]
                                    dw[oc, ic, di, dj] += g * x[b_, ic, r, s]
    return dx, dw, db


def pool_output_size(size, k, s, p, ceil_mode):
    """PyTorch's rule, from its documentation."""
    if ceil_mode:
        out = math.ceil((size + 2 * p - k) / s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
        return out
    return math.floor((size + 2 * p - k) / s) + 1


def _pool(x, k, s, p, ceil_mode, combine):
    n, c, h, w = x.shape
    oh, ow = pool_output_size(h, k[0], s[0], p[0], ceil_mode), pool_output_size(w, k[1], s[1], p[1], ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    r0, c0 = i * s[0] - p[0], j * s[1] - p[1]
                    y[b, ch, i, j] = combine(x[b, ch], r0, c0, h, w)
    return y


def max_pool2d(x, k, s, p, ceil_mode):
    def combine(image, r0, c0, h, w):
        cells = [image[r, q] for r in range(r0, r0 + k[0]) for q in range(c0, c0 + k[1])
                 if 0 <= r < h and 0 <= q < w]
        return max(cells)
    return _pool(x, k, s, p, ceil_mode, combine)


def avg_pool2d(x, k, s, p, ceil_mode, count_include_pad):
    def combine(image, r0, c0, h, w):
        rows = range(r0, min(r0 + k[0], h + p[0]))  # windows may reach into padding, never past it
        cols = range(c0, min(c0 + k[1], w + p[1]))
        inside = [image[r, q] for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
        return sum(inside) / (len(rows) * len(cols) if count_include_pad else len(inside))
    return _pool(x, k, s, p, ceil_mode, combine)


def adaptive_avg_pool2d(x, out):
    n, c, h, w = x.shape
    y = np.zeros((n, c) + out)
    for i in range(out[0]):
        for j in range(out[1]):
            r0, r1 = math.floor(i * h / out[0]), math.ceil((i + 1) * h / out[0])
            c0, c1 = math.floor(j * w / out[1]), math.ceil((j + 1) * w / out[1])
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def local_response_norm(x, size, alpha, beta, k):
    n, c, h, w = x.shape
    y = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c - 1, ch + (size - 1) // 2)
        energy = sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        y[:, ch] = x[:, ch] / (k + alpha / size * energy) ** beta
    return y


def batch_norm_train(x, weight, bias, eps):
    """Returns (y, batch mean, unbiased batch variance) per channel of (N, C, ...)."""
    c = x.shape[1]
    y = np.zeros_like(x)
    means, variances = np.zeros(c), np.zeros(c)
    for ch in range(c):
        values = x[:, ch].ravel()
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        y[:, ch] = (x[:, ch] - mean) / math.sqrt(var + eps) * weight[ch] + bias[ch]
        means[ch], variances[ch] = mean, var * len(values) / (len(values) - 1)
    return y, means, variances


def cross_entropy(logits, target, label_smoothing):
    n, classes = logits.shape
    total = 0.0
    for i in range(n):
        log_norm = math.log(sum(math.exp(z) for z in logits[i]))
        for cls in range(classes):
            q = (1 - label_smoothing) * (cls == target[i]) + label_smoothing / classes
            total -= q * (logits[i, cls] - log_norm)
    return total / n


# -- the Tensor API: indexing, axes, reductions, elementwise math ---------------------------------------
def slice_nd(x, slices):
    """x[s0, s1, ...] for one slice per axis, element by element (negative steps included)."""
    ranges = [list(range(*s.indices(n))) for s, n in zip(slices, x.shape)]
    y = np.zeros([len(r) for r in ranges])
    for out in np.ndindex(*y.shape):
        y[out] = x[tuple(r[i] for r, i in zip(ranges, out))]
    return y


def take(x, indices, axis):
    """x indexed along ``axis`` by a 1-D list of ints (repeats allowed); other axes kept."""
    shape = list(x.shape)
    shape[axis] = len(indices)
    y = np.zeros(shape)
    for out in np.ndindex(*shape):
        source = list(out)
        source[axis] = indices[out[axis]]
        y[out] = x[tuple(source)]
    return y


def take_backward(gy, indices, axis, shape):
    """The gradient of :func:`take`: each gy entry added back at its source (repeats add up)."""
    gx = np.zeros(shape)
    for out in np.ndindex(*gy.shape):
        source = list(out)
        source[axis] = indices[out[axis]]
        gx[tuple(source)] += gy[out]
    return gx


def masked_select(x, mask):
    """The elements of x where ``mask`` (same shape) is true, in row-major order, as a 1-D array."""
    return np.array([x[position] for position in np.ndindex(*x.shape) if mask[position]])


def permute(x, dims):
    """Output axis i is axis dims[i] of x."""
    y = np.zeros([x.shape[d] for d in dims])
    for out in np.ndindex(*y.shape):
        source = [0] * x.ndim
        for i, d in enumerate(dims):
            source[d] = out[i]
        y[out] = x[tuple(source)]
    return y


def reduce(x, dims, keepdim, combine):
    """``combine(values)`` for each output of a reduction over ``dims`` (None: all), values in row-major order."""
    dims = tuple(range(x.ndim)) if dims is None else tuple(sorted(d % x.ndim for d in (
        (dims,) if isinstance(dims, int) else dims)))
    kept = [axis for axis in range(x.ndim) if axis not in dims]
    y = np.zeros([x.shape[axis] for axis in kept])
    for out in np.ndindex(*y.shape):
        values = []
        for inner in np.ndindex(*[x.shape[axis] for axis in dims]):
            source = [0] * x.ndim
            for axis, i in zip(kept, out):
                source[axis] = i
            for axis, i in zip(dims, inner):
                source[axis] = i
            values.append(x[tuple(source)])
        y[out] = combine(values)
    return y.reshape([1 if axis in dims else x.shape[axis] for axis in range(x.ndim)]) if keepdim else y


def variance(values, correction):
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - correction)


def first_argmax(values):
    return values.index(max(values))


def first_argmin(values):
    return values.index(min(values))


def max_backward_full(x, g):
    """Gradient of the full max(x) for an upstream g: shared equally among the elements tied for the max."""
    top = max(x.flat)
    ties = [position for position in np.ndindex(*x.shape) if x[position] == top]
    gx = np.zeros(x.shape)
    for position in ties:
        gx[position] = g / len(ties)
    return gx


def elementwise(function, *arrays):
    """``function`` of scalars applied at every position of same-shape arrays."""
    y = np.zeros(arrays[0].shape)
    for position in np.ndindex(*y.shape):
        y[position] = function(*(a[position] for a in arrays))
    return y
