"""python -m minicnn.gradcheck [--device cpu|gpu|gpu:N] [--layer NAME]

Gradient-checks every layer in several configurations (the same cases the test
suite runs) and prints one row per case; exits with status 1 if any fails.
"""
import argparse
import inspect
import sys
import time

from .. import backend
from . import GradcheckError, gradcheck
from .cases import CASES, Inputs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minicnn.gradcheck", description=__doc__.split("\n\n")[1])
    parser.add_argument("--device", default="cpu", help="cpu (default), gpu or gpu:N")
    parser.add_argument("--layer", help="check only this layer (e.g. conv2d)")
    args = parser.parse_args(argv)
    try:
        device = backend.parse_device(args.device)
        if device.kind == "gpu":
            backend.require_gpu(device.index)
    except (ValueError, backend.DeviceUnavailableError) as error:
        parser.exit(2, f"error: {error}\n")
    cases = [c for c in CASES if args.layer in (None, c.layer)]
    if not cases:
        parser.exit(2, f"error: no layer named {args.layer!r}; layers: {sorted({c.layer for c in CASES})}\n")

    defaults = inspect.signature(gradcheck).parameters
    eps, atol, rtol = (defaults[name].default for name in ("eps", "atol", "rtol"))
    print(f"Gradient check on {device}: float64, central differences (eps {eps:g}), "
          f"pass if |analytic - numeric| <= {atol:g} + {rtol:g} * |numeric|\n")
    row = "{:<20} {:<66} {:>9} {:>9}  {}"
    print(row.format("layer", "configuration", "max abs", "max rel", "result"))
    print("-" * 114)
    failures, start = [], time.perf_counter()
    for case in cases:
        fn, inputs = case.build(Inputs(str(device)))
        try:
            result, status = gradcheck(fn, inputs), "pass"
        except GradcheckError as error:
            result, status = error.result, "FAIL"
            failures.append(f"{case.layer}, {case.config}: {error}")
        print(row.format(case.layer, case.config, f"{result.max_abs_error:.1e}",
                         f"{result.max_rel_error:.1e}", status), flush=True)
    print("-" * 114)
    print(f"{len(cases) - len(failures)} of {len(cases)} cases passed in {time.perf_counter() - start:.1f} s")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
