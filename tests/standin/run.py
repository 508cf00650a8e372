"""Run a module's command line, or a script, on the CuPy stand-in:

    python -m tests.standin.run [--devices N] [--report] -m MODULE [ARGS...]
    python -m tests.standin.run [--devices N] [--report] SCRIPT.py [ARGS...]

from the repository root, e.g. ``python -m tests.standin.run -m train.cifar --device gpu ...``.
It installs the stand-in in place of ``cupy`` (N simulated devices, default 2),
then runs ``python -m MODULE ARGS...`` (or ``python SCRIPT.py ARGS...``, with the
script's folder first on ``sys.path`` as Python puts it) in this process, so the
command's ``import cupy`` gets the stand-in. ``--report`` prints, at exit and on
stderr, the device operations, reads and uploads the command made and its busiest
lines. Under ``mpiexec -n R``, each of the R processes simulates its own N devices.
"""
import argparse
import atexit
import os
import runpy
import sys

from . import counters
from .installer import install

USAGE = "python -m tests.standin.run [--devices N] [--report] (-m MODULE | SCRIPT) [ARGS...]"


def _split(argv):
    """(the runner's options, the command): the command starts at -m or at the first word that is no option."""
    i = 0
    while i < len(argv) and argv[i] != "-m" and argv[i].startswith("-"):
        i += 2 if argv[i] == "--devices" else 1
    return argv[:i], argv[i:]


def main(argv=None):
    options, command = _split(sys.argv[1:] if argv is None else list(argv))
    parser = argparse.ArgumentParser(prog="python -m tests.standin.run", usage=USAGE)
    parser.add_argument("--devices", type=int, default=2, help="simulated devices (0: CuPy without a GPU)")
    parser.add_argument("--report", action="store_true", help="print what the command cost, at exit")
    options = parser.parse_args(options)
    if not command or command == ["-m"]:
        parser.error("give -m MODULE or a script to run")
    install(options.devices)
    if options.report:
        atexit.register(lambda: print("CuPy stand-in: " + counters.report(), file=sys.stderr))
    if command[0] == "-m":
        sys.argv = [command[1]] + command[2:]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        sys.path[0] = os.path.dirname(os.path.abspath(command[0]))
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    main()
