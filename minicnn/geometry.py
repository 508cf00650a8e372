"""Output sizes of sliding-window ops: convolution and pooling (PyTorch's rules).

Pure integer arithmetic with no array in sight, so that both the ops in
:mod:`minicnn.functional` and the fast kernels in :mod:`minicnn.kernels` (a
lower layer, which must not import the ops) compute their shapes in one place.
"""


def conv_output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


WINOGRAD_TILE = 4  # Winograd F(4x4, 3x3): each tile is 4x4 output pixels


def winograd_output_tiles(oh, ow):
    """(tiles down, tiles across) of Winograd F(4x4, 3x3) for an OH x OW output: one tile per 4x4 block of
    output pixels, the last one partly past the output when 4 does not divide its size."""
    return -(-oh // WINOGRAD_TILE), -(-ow // WINOGRAD_TILE)


def winograd_tiles(h, w, padding):
    """:func:`winograd_output_tiles` for an h x w input with ``padding`` (ph, pw), 3x3 kernel, stride 1."""
    return winograd_output_tiles(conv_output_size(h, 3, 1, padding[0]), conv_output_size(w, 3, 1, padding[1]))


def pool_output_size(size, kernel, stride, padding, ceil_mode):
    """Output length of pooling along one axis (PyTorch's rule).

    floor((size + 2p - k) / s) + 1, or with ``ceil_mode`` ceil(...) + 1, minus
    one if the last window would start past the input and its left padding.
    """
    span = size + 2 * padding - kernel
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window must start inside input or left padding
        out -= 1
    return out


def pool_geometry(x_shape, kernel, stride, padding, ceil_mode):
    """((OH, OW), (PH, PW)): the output size, and the padded size that holds every window.

    Args:
        x_shape: (N, C, H, W); kernel, stride, padding: pairs (h, w).
    Ceil mode may need cells past the padding on the right/bottom (they never
    count in a max or an average), so PH >= H + 2 * padding[0].
    """
    out = tuple(pool_output_size(x_shape[2 + a], kernel[a], stride[a], padding[a], ceil_mode) for a in (0, 1))
    padded = tuple(max(x_shape[2 + a] + 2 * padding[a], (out[a] - 1) * stride[a] + kernel[a]) for a in (0, 1))
    return out, padded
