"""python -m minicnn.gradcheck [--device cpu|gpu|gpu:N] [--layer NAME]

Gradient-checks every layer in several configurations (the same cases the test
suite runs) and prints one row per case; exits with status 1 if any fails.
"""
import argparse
import sys

from .. import backend
from .cases import CASES
from .report import print_report


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
    return 1 if print_report(cases, device) else 0


if __name__ == "__main__":
    sys.exit(main())
