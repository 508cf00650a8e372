"""The package's layers import only downwards, and importing minicnn changes nothing in the process."""
import ast
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "minicnn"

# Each top-level module or subpackage of minicnn, by layer: a module may import from its own
# layer and the layers below, never from a layer above. A new module must be given a layer here.
LAYERS = {
    "backend": 0, "cuda": 0, "dtypes": 0, "files": 0, "geometry": 0, "layout": 0, "random": 0,
    "engine": 1, "grad_buffers": 1, "custom_function": 1, "creation": 1, "serialization": 1, "distributed": 1,
    "hooks": 1, "autograd": 1, "graph": 1,
    "kernels": 2,
    "functional": 3,
    "nn": 4, "optim": 4, "utils": 4,
    "gradcheck": 5,
    "__init__": 6, "trace": 6, "doctor": 6,
}
# The one import that points up, by design: Tensor's operators and methods (+, .sum(), .reshape())
# are the ops of functional, bound at the end of engine.py.
ALLOWED_UPWARD = {("engine", "functional")}


def _part(path):
    """The top-level module or subpackage of minicnn that the file at ``path`` belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_parts(path):
    """The top-level parts of minicnn that the module at ``path`` imports (relative imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    depth_of_file = len(path.relative_to(PACKAGE).parts) - 1  # 0 for minicnn/x.py, 1 for minicnn/sub/x.py
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            up = node.level - 1  # how many folders above the file's own
            where = list(path.relative_to(PACKAGE).parts[:depth_of_file])
            where = where[:len(where) - up] if up else where
            target = where + (node.module.split(".") if node.module else [])
            if target:
                yield target[0]
            else:  # `from .. import kernels`: the names are the parts
                yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minicnn."):
            yield node.module.split(".")[1]


def test_every_module_has_a_layer():
    parts = {_part(path) for path in PACKAGE.rglob("*.py")}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_point_down(path):
    own = _part(path)
    upward = [part for part in _imported_parts(path) if part in LAYERS and LAYERS[part] > LAYERS[own]
              and (own, part) not in ALLOWED_UPWARD]
    assert not upward, f"{path.relative_to(PACKAGE)} (layer {own}) imports from higher layers: {upward}"


def _run(code, **environment):
    """Run ``code`` in a fresh Python on this checkout's minicnn; returns what it printed, split."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(environment, PYTHONPATH=os.pathsep.join([str(PACKAGE.parent), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_importing_minicnn_changes_nothing_in_the_process():
    """No environment variable set, no numba thread pool chosen, numba not even imported."""
    code = ("import os, sys, numpy as np; before = dict(os.environ); import minicnn, minicnn.functional as F; "
            "F.conv2d(minicnn.Tensor(np.ones((1, 1, 4, 4))), minicnn.Tensor(np.ones((1, 1, 3, 3)))); "
            "import numba; print(dict(os.environ) == before, numba.config.THREADING_LAYER)")
    assert _run(code) == ["True", "default"]


def test_configure_cpu_sets_the_thread_count():
    code = ("import minicnn; from minicnn.kernels import threads; applied = minicnn.configure_cpu(threads=3); "
            "print(applied['threads'], threads.thread_count(), applied['split_matmuls'])")
    assert _run(code) == ["3", "3", "True"]


def test_minicnn_splits_its_products_unconfigured_and_numpy_keeps_its_blas_threads():
    """Without configure_cpu, minicnn's products run on its pool with BLAS on one thread inside them; after a
    training step, NumPy's own products have as many BLAS threads as before (2 here), and meanwhile had 1."""
    code = ("import minicnn, numpy as np, minicnn.functional as F; from minicnn.kernels import threads; "
            "threads.set_thread_count(2); threads._blas_functions()[0](2); before = threads.blas_thread_count(); "
            "x = minicnn.Tensor(np.ones((4, 8, 16, 16), np.float32), requires_grad=True); "
            "w = minicnn.Tensor(np.ones((300, 8, 3, 3), np.float32), requires_grad=True); "
            "seen = []; import minicnn.kernels.conv as conv; inner = conv._product_into; "
            "conv._product_into = lambda *a, **k: (seen.append(threads.blas_thread_count()), inner(*a, **k)); "
            "F.conv2d(x, w, padding=1).sum().backward(); "
            "print(before, threads.blas_thread_count(), threads.split_matmuls(), sorted(set(seen)))")
    assert _run(code) == ["2", "2", "True", "[1]"]
