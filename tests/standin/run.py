"""Run a module's command line on the CuPy stand-in:

    python -m tests.standin.run [--devices N] [--report] -m MODULE [ARGS...]

from the repository root, e.g. ``python -m tests.standin.run -m train.cifar --device gpu ...``.
It installs the stand-in in place of ``cupy`` (N simulated devices, default 2),
then runs ``python -m MODULE ARGS...`` in this process, so the command's
``import cupy`` gets the stand-in. ``--report`` prints, at exit and on stderr,
the device operations, reads and uploads the command made and its busiest lines.
"""
import argparse
import atexit
import runpy
import sys

from . import counters
from .installer import install


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-m" not in argv:
        sys.exit("usage: python -m tests.standin.run [--devices N] [--report] -m MODULE [ARGS...]")
    split = argv.index("-m")
    parser = argparse.ArgumentParser(prog="python -m tests.standin.run")
    parser.add_argument("--devices", type=int, default=2, help="simulated devices (0: CuPy without a GPU)")
    parser.add_argument("--report", action="store_true", help="print what the command cost, at exit")
    options = parser.parse_args(argv[:split])
    if split + 1 >= len(argv):
        parser.error("-m needs a module name")
    module, module_args = argv[split + 1], argv[split + 2:]
    install(options.devices)
    if options.report:
        atexit.register(lambda: print("CuPy stand-in: " + counters.report(), file=sys.stderr))
    sys.argv = [module] + module_args
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
