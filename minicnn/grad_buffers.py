"""The gradient-buffer protocol: where a parameter's gradient lives while an optimizer holds it.

An optimizer keeps the parameters of one device and dtype in one flat array and
their gradients in a second one (:mod:`minicnn.optim.optimizer`), so that a
step is a few operations on whole buffers instead of a few per parameter. This
module is the one place that knows how a gradient gets into that buffer:

1. **Lending.** The optimizer *lends* each parameter its slice of the flat
   gradient buffer, a view of the parameter's shape (:func:`lend`); it is kept
   in ``param._grad_buffer``. Moving the parameter to another array
   (``model.to(...)``) *withdraws* it (:func:`withdraw`).
2. **Accumulating.** At the end of a backward pass the engine hands each leaf
   its gradient (:func:`accumulate`). The first gradient of a pass is copied
   into the lent view, which becomes ``param.grad``'s array; later ones (a
   parameter used twice) are added to it in place. A leaf without a lent view
   gets an array of its own.
3. **Writing straight in.** A backward that makes a parameter's gradient with
   an ``out=`` (a matrix product, a sum, a fused kernel) may make it in the lent
   view itself and return that very array, which saves the copy of step 2 (on a
   GPU, one kernel per parameter and step). :func:`destination` says where:
   only for a leaf whose ``.grad`` is still None in this pass (else the new
   gradient must be *added*), without hooks (they must see the gradient before
   it lands), and that is not also another input of the same op (its two
   gradients must be summed first). Ops ask through ``Op.gradient_buffer``.
4. **Gathering.** A gradient set by hand (``p.grad = t``) lives outside the
   buffer; :func:`gather` copies it in before the optimizer's step or an
   all-reduce reads the whole buffer, and gives a missing one zeros if asked.

Everything here works on raw arrays (NumPy or CuPy) and on tensors by duck
typing (``._grad``, ``._grad_buffer``, ``.creator``, ``._grad_hooks``), so the
module needs nothing above :mod:`minicnn.backend`.
"""
from . import backend


def lend(param, view):
    """Give ``param`` ``view`` (an array of its shape, part of a flat buffer) to hold its gradient;
    a gradient it already has moves in."""
    param._grad_buffer = view
    if param._grad is not None:
        view[...] = param._grad
        param._grad = view


def withdraw(param):
    """``param`` no longer keeps its gradient in a lent view (it was moved to another array)."""
    param._grad_buffer = None


def lent(param):
    """The view lent to ``param``, or None."""
    return getattr(param, "_grad_buffer", None)


def destination(inputs, index):
    """Where the backward of an op with these ``inputs`` may write input ``index``'s gradient itself:
    the lent view (see step 3 of the module docs), or None where that is not safe."""
    tensor = inputs[index]
    if (tensor.creator is not None or tensor._grad is not None or tensor._grad_hooks
            or sum(other is tensor for other in inputs) > 1):
        return None
    return tensor._grad_buffer


def accumulate(tensor, grad):
    """Add ``grad`` (an array of ``tensor``'s shape) to leaf ``tensor``'s gradient (step 2)."""
    buffer = tensor._grad_buffer
    if tensor._grad is None and buffer is not None:
        if grad is not buffer:  # else backward wrote it there itself (step 3)
            buffer[...] = grad
        tensor._grad = buffer
    elif tensor._grad is None:
        # A leaf gets an array of its own, laid out in memory as the leaf is (PyTorch's rule): `grad`
        # may be a read-only broadcast view, a view of another gradient in another order, the very
        # array another leaf receives, or a NumPy scalar.
        tensor._grad = backend.get_array_module(tensor.array).empty_like(tensor.array)
        tensor._grad[...] = grad
    elif tensor._grad is buffer:
        tensor._grad += grad  # the optimizer's buffer, owned by no one else: add in place
    else:
        tensor._grad = tensor._grad + grad  # out of place: it may be an array the user also holds


def assign(param, array):
    """``param``'s gradient becomes ``array`` (of its shape); copied into its lent view if it has one."""
    param._grad = array
    if param._grad_buffer is not None:
        gather(param)


def gather(param, zeros_if_none=False):
    """Bring ``param``'s gradient into its lent view (step 4). Returns False if it has none (then,
    with ``zeros_if_none``, the view is zeroed and becomes its gradient), else True."""
    view, had = param._grad_buffer, param._grad is not None
    if not had and not zeros_if_none:
        return False
    if not had:
        view[...] = 0
    elif param._grad is not view:  # set by hand: move it in
        view[...] = param._grad
    param._grad = view
    return had
