"""Hold the stand-in's names and signatures to the installed real CuPy, with ``inspect``.

    python -m tests.standin.against_cupy

prints one line per difference and exits 1 if there is any (``tests/test_standin.py``
runs it where real CuPy is installed, as in CI). In a process of its own: the
stand-in is built (not installed) beside the real ``cupy``.

Checked: every name each stand-in module defines exists in the real module;
a function's parameters (names and kinds) are CuPy's; a ufunc's inputs and
outputs are CuPy's; every method of the stand-in's classes exists on CuPy's
class with CuPy's parameters; the signatures the generic functions bind
against (``api.SIGNATURES``) are CuPy's.
"""
import importlib
import inspect
import re
import sys


def cupy_signature(obj):
    """inspect.Signature of a CuPy callable: inspect's, or the first docstring line Cython writes, or None."""
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        pass
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    match = re.match(r"^[\w.]+(\(.*\))", first[0]) if first else None
    if match is None:
        return None
    from tests.standin import api
    text = re.sub(r"=(?:[^,()\[\]]|\([^)]*\)|\[[^\]]*\])+", "=...", match.group(1))  # defaults -> ...
    text = re.sub(r"\b(?:int|bool|str|tuple|object|float|intptr_t|size_t) (\w)", r"\1", text)  # Cython types
    try:
        return api.signature(text)
    except SyntaxError:
        return None


def parameters(sig, drop_self=False):
    params = list(sig.parameters.values())[1 if drop_self else 0:]
    return [(p.name, p.kind.name) for p in params]


def differences():
    """Lines saying where the stand-in differs from the installed CuPy."""
    from tests.standin import api, installer
    built = installer.build()  # before importing real CuPy: the stand-in never takes sys.modules' place here
    found = []
    for module_name, module in built.items():
        real = importlib.import_module(module_name)
        for name, ours in vars(module).items():
            if name.startswith("_"):
                continue
            if not hasattr(real, name):
                found.append(f"{module_name}.{name}: CuPy {real.__name__} has no such name")
                continue
            theirs = getattr(real, name)
            if hasattr(ours, "nin") and hasattr(theirs, "nin"):
                if (ours.nin, ours.nout) != (theirs.nin, theirs.nout):
                    found.append(f"{module_name}.{name}: (nin, nout) {(ours.nin, ours.nout)}, CuPy's "
                                 f"{(theirs.nin, theirs.nout)}")
            elif inspect.isfunction(ours) and not ours.__name__ == "<lambda>":
                found += _compare(f"{module_name}.{name}", ours, theirs)
    for name, text in api.SIGNATURES.items():
        found += _compare(f"cupy.{name} (api.SIGNATURES)", api.signature(text), getattr(sys.modules["cupy"], name))
    for ours_class, theirs_class in [(built["cupy"].ndarray, sys.modules["cupy"].ndarray)]:
        for name, method in vars(ours_class).items():
            if name.startswith("_") or not inspect.isfunction(method):
                continue
            if not hasattr(theirs_class, name):
                found.append(f"cupy.ndarray.{name}: CuPy's ndarray has no such attribute")
            else:
                found += _compare(f"cupy.ndarray.{name}", method, getattr(theirs_class, name), drop_self=True)
    return found


def _compare(label, ours, theirs, drop_self=False):
    ours_sig = ours if isinstance(ours, inspect.Signature) else inspect.signature(ours)
    theirs_sig = cupy_signature(theirs)
    if theirs_sig is None or any(p.kind == p.VAR_POSITIONAL for p in ours_sig.parameters.values()):
        return []  # CuPy's is not readable, or ours takes *args to bind against a signature of its own
    theirs_drop = drop_self and list(theirs_sig.parameters)[:1] == ["self"]
    if parameters(ours_sig, drop_self) != parameters(theirs_sig, theirs_drop):
        return [f"{label}{ours_sig}: CuPy's is {theirs_sig}"]
    return []


def main():
    found = differences()
    for line in found:
        print(line)
    import cupy
    print(f"{len(found)} differences from CuPy {cupy.__version__}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
