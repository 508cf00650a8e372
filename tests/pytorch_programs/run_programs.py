"""Run PyTorch programs one after another in this process and write what each printed to a JSON file.

    python tests/pytorch_programs/run_programs.py OUT.json PROGRAM.py ...

Each program runs as ``__main__`` in a fresh temporary working directory (where
it may save files), its standard output captured; an exception ends that program
only, and its traceback is kept. Which ``torch`` it gets is decided by PYTHONPATH:
PyTorch itself, or minicnn through the shim in ``shim/``. One process per engine
pays for importing the engine once.
"""
import contextlib
import io
import json
import os
import runpy
import sys
import tempfile
import traceback


def run(path):
    """(printed text, traceback or None) of the program at ``path``."""
    printed, failure = io.StringIO(), None
    start = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(printed):
                runpy.run_path(path, run_name="__main__")
        except BaseException:  # noqa: BLE001 (a program's failure is reported, not raised)
            failure = traceback.format_exc()
        finally:
            os.chdir(start)
    return printed.getvalue(), failure


def main(out, *programs):
    import torch  # what the shim makes of it, for the report
    results = {"torch": torch.__name__, "programs": {}}
    for path in programs:
        text, failure = run(os.path.abspath(path))
        results["programs"][os.path.basename(path)] = {"output": text, "error": failure}
    with open(out, "w", encoding="utf-8") as file:
        json.dump(results, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
