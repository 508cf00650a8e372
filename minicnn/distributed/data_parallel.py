"""Data parallelism for a model: every rank starts from the same weights and steps with the same gradient.

Each rank computes the gradient of the mean loss over its own slice of the
batch; the mean of those gradients over the ranks is the gradient of the mean
loss over the whole batch (when the slices are of equal size). So after
:func:`all_reduce_gradients` every rank holds the same gradient, the one a
single process would compute on the whole batch, and the same optimizer step
keeps the copies of the model identical.

The functions take a model by duck typing (``named_parameters()`` and
``named_buffers()`` of Tensors with ``.array``, ``.grad``, ``.requires_grad``),
so this module needs nothing above :mod:`minicnn.backend`.
"""
import weakref

from .. import backend, grad_buffers
from .world import _check_root, current_world


class _Broadcast:
    """What broadcast_parameters remembers about a model, for all_reduce_gradients to check and reuse.

    Attributes:
        params: (parameter, its description) for each parameter, in the model's order.
        flat_buffers: group number -> (the gradient views, the optimizer buffer they tile, or None),
            found once instead of at every step.
    """

    def __init__(self, params):
        self.params = [(p, _describe(p)) for p in params]
        self.flat_buffers = {}


_broadcasts = weakref.WeakKeyDictionary()  # model -> _Broadcast, from its latest broadcast_parameters


def _named_tensors(module):
    return list(module.named_parameters()) + list(module.named_buffers())


def _describe(tensor):
    """What must agree across ranks about one parameter or buffer: shape, dtype, device kind, trained."""
    return (tuple(tensor.shape), str(tensor.dtype), backend.device_of(tensor.array).kind, bool(tensor.requires_grad))


def _layout(named):
    return [(name, _describe(tensor)) for name, tensor in named]


def _say(description):
    shape, dtype, device, trained = description
    return f"shape {shape} {dtype} on {device}" + ("" if trained else " (not trained)")


def _check_same_layout(layouts, root):
    """Raise one ValueError, naming the tensors, if some rank's model differs from the root's."""
    reference, problems = dict(layouts[root]), []
    for rank, layout in enumerate(layouts):
        here = dict(layout)
        for name in [n for n in reference if n not in here][:3]:
            problems.append(f"{name!r} is missing on rank {rank}")
        for name in [n for n in here if n not in reference][:3]:
            problems.append(f"{name!r} exists on rank {rank} but not on rank {root}")
        for name in [n for n in reference if n in here and here[n] != reference[n]][:3]:
            problems.append(f"{name!r} has {_say(reference[name])} on rank {root} "
                            f"but {_say(here[name])} on rank {rank}")
        if not problems and [n for n, _ in layout] != [n for n, _ in layouts[root]]:
            problems.append(f"rank {rank} lists the parameters and buffers in another order than rank {root}")
    if problems:
        raise ValueError("broadcast_parameters: the model is not the same on every rank: " + "; ".join(problems[:6])
                         + " (build the same model, with the same options, in every process)")


def _groups(tensors):
    """The tensors split by (device, dtype), in order: each group travels as one flat array."""
    groups = {}
    for tensor in tensors:
        groups.setdefault((backend.device_of(tensor.array), tensor.dtype), []).append(tensor)
    return list(groups.values())


def _packed(tensors, arrays):
    """``arrays`` (one per tensor, of its shape; None for zeros) end to end in one new flat array.

    Returns:
        (flat array of the tensors' device and dtype, the slice of it that holds each tensor).
    """
    slices, start = [], 0
    for tensor in tensors:
        slices.append(slice(start, start + tensor.numel()))
        start += tensor.numel()
    flat = backend.get_array_module(tensors[0].array).zeros(start, tensors[0].dtype)
    for array, where in zip(arrays, slices):
        if array is not None:
            flat[where] = array.reshape(-1)
    return flat, slices


def broadcast_parameters(module, root=0):
    """Copy every parameter and buffer of ``module`` from rank ``root`` to all ranks, in place.

    Call it once, after building (and moving) the model and before training:
    the ranks then start identical, whatever their random seeds. It first
    checks, with one small collective, that every rank's model has the same
    parameters and buffers (names, order, shapes, dtypes, CPU or GPU, trained
    or not), and raises a ValueError naming the ones that differ, on every rank.
    It remembers the layout, which :func:`all_reduce_gradients` checks.
    One broadcast per (device, dtype) group: MPI for NumPy arrays, NCCL for CuPy arrays.
    """
    world = current_world()
    _check_root("broadcast_parameters", root, world)
    named = _named_tensors(module)
    layout = _layout(named)
    _check_same_layout(world.all_gather_objects(layout), root)
    if world.size > 1:
        for group in _groups([tensor for _, tensor in named]):
            flat, slices = _packed(group, [tensor.array for tensor in group])
            world.broadcast(flat, root)
            for tensor, where in zip(group, slices):
                tensor.array[...] = flat[where].reshape(tensor.shape)  # in place: an optimizer's views stay valid
                tensor._bump_version()
    _broadcasts[module] = _Broadcast(list(module.parameters()))


def _checked_broadcast(module):
    """The record of ``module``'s broadcast, after checking that its parameters are still those it recorded."""
    record = _broadcasts.get(module)
    if record is None:
        raise RuntimeError("all_reduce_gradients: this model was never passed to broadcast_parameters() in this "
                           "process; call broadcast_parameters(model) once before training, so that every rank "
                           "starts from the same weights")
    params = list(module.parameters())
    same = [p is kept and _describe(p) == description for p, (kept, description) in zip(params, record.params)]
    if not all(same) or len(params) != len(record.params):
        first = (repr(list(module.named_parameters())[same.index(False)][0]) if not all(same)
                 else f"{len(params)} parameters, {len(record.params)} before")
        raise RuntimeError(f"all_reduce_gradients: the model changed since broadcast_parameters() (first change: "
                           f"{first}); call broadcast_parameters(model) again after moving or changing the model")
    return record


def _data_pointer(array):
    return array.data.ptr if backend.is_gpu_array(array) else array.__array_interface__["data"][0]


def _find_optimizer_buffer(params):
    """The flat gradient buffer of an optimizer if it holds exactly ``params``' gradients, in this order.

    An optimizer (see :mod:`minicnn.optim`) gives each parameter a view of its
    flat gradient buffer (:func:`minicnn.grad_buffers.lend`), and the backward pass writes the
    gradient there. When this group's views tile one buffer end to end, in the
    model's order, that buffer is already the packed gradient: it is reduced
    as it is, with no copy. Returns None otherwise.
    """
    views = [grad_buffers.lent(p) for p in params]
    if any(view is None for view in views):
        return None
    flat = views[0].base
    if flat is None or flat.ndim != 1 or flat.size != sum(p.numel() for p in params):
        return None
    expected = _data_pointer(flat)
    for view in views:
        if view.base is not flat or not view.flags.c_contiguous or _data_pointer(view) != expected:
            return None
        expected += view.nbytes
    return flat


def _optimizer_buffer(record, number, params):
    """:func:`_find_optimizer_buffer` for group ``number``, looked for again only when its views change."""
    views = [grad_buffers.lent(p) for p in params]
    known = record.flat_buffers.get(number)
    if known is None or len(known[0]) != len(views) or any(a is not b for a, b in zip(known[0], views)):
        known = record.flat_buffers[number] = (views, _find_optimizer_buffer(params))
    return known[1]


def _mean_over_ranks(world, flat):
    if world.size > 1:
        world.all_reduce_sum(flat)
        flat /= world.size


def all_reduce_gradients(module):
    """Make every trained parameter's ``.grad`` the mean of its gradients over the ranks, in place.

    Call it between ``loss.backward()`` and ``optimizer.step()``, in every rank.
    Checks first that ``module`` went through :func:`broadcast_parameters` in
    this process and that ``module.parameters()`` are still the same objects,
    in the same order, with the same shapes, dtypes, devices (CPU or GPU) and
    ``requires_grad``: the ranks' layouts were compared there, so the flat
    buffers line up element for element. (Nothing is compared across ranks
    here: a model changed the same way on every rank must be broadcast again.)

    A parameter whose ``.grad`` is None on a rank (it took no part in that
    rank's loss) counts as a zero gradient there, as in PyTorch's
    DistributedDataParallel: afterwards every trained parameter has a
    ``.grad`` on every rank, even one that no rank used (it is then zero).

    One collective per (device, dtype) group: when an optimizer built on this
    model holds the gradients in its flat buffer, that buffer is reduced in
    place; otherwise the gradients are packed into one temporary flat array and
    the parameters get views of it. MPI for NumPy arrays, NCCL for CuPy arrays.
    """
    world = current_world()
    record = _checked_broadcast(module)
    trained = [p for p, _ in record.params if p.requires_grad]
    for number, params in enumerate(_groups(trained)):
        flat = _optimizer_buffer(record, number, params)
        if flat is not None:
            for p in params:
                grad_buffers.gather(p, zeros_if_none=True)
            _mean_over_ranks(world, flat)
            continue
        flat, slices = _packed(params, [None if p.grad is None else p.grad.array for p in params])
        _mean_over_ranks(world, flat)
        for p, where in zip(params, slices):
            grad_buffers.assign(p, flat[where].reshape(p.shape))
