"""The gradient-check report: one row per case, on one device (``python -m minicnn.gradcheck``, the doctor)."""
import inspect
import time

from . import GradcheckError, gradcheck
from .cases import Inputs


def print_report(cases, device):
    """Gradient-check each of ``cases`` on ``device`` and print a table; returns the failures (strings)."""
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
    return failures
