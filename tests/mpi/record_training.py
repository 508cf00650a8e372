"""Run `python -m train.cifar ARGS...` in this process, under mpiexec, recording what each rank does:

    mpiexec -n 2 python -m tests.mpi.record_training RECORD.json [--no-dropout] ARGS...

Rank 0 writes RECORD.json: {"exit_code", "ranks": [per rank: {"batches": [[start, stop, [image indices]], ...],
"seeds": [[counters...], ...], "written": [files put in place by os.replace (atomic writes)], "locked":
run folders locked, "made": folders created}]}, paths absolute. tests/test_train_data_parallel.py checks it. ``--no-dropout`` builds
GoogLeNet without dropout, so that (with --norm lrn, which has no batch norm) a run's arithmetic does not
depend on the number of ranks."""
import functools
import json
import os
import sys

from minicnn import distributed
from train import cifar, run_folder

record_path, argv = sys.argv[1], sys.argv[2:]
if argv[:1] == ["--no-dropout"]:
    cifar.GoogLeNet = functools.partial(cifar.GoogLeNet, dropout=0.0, aux_dropout=0.0)
    argv = argv[1:]
mine = {"batches": [], "seeds": [], "written": [], "locked": 0, "made": []}


def recorded(function, note):
    def call(*args, **kwargs):
        result = function(*args, **kwargs)
        note(args, result)
        return result
    return call


cifar.training_batch = recorded(cifar.training_batch, lambda args, result: mine["batches"].append(
    [args[2], args[3], result[0].tolist()]))
cifar.step_seed = recorded(cifar.step_seed, lambda args, result: mine["seeds"].append(list(args)))
os.replace = recorded(os.replace, lambda args, result: mine["written"].append(os.path.abspath(args[1])))
os.mkdir = recorded(os.mkdir, lambda args, result: mine["made"].append(os.path.abspath(args[0])))
run_folder.RunFolder._lock = recorded(run_folder.RunFolder._lock,
                                      lambda args, result: mine.__setitem__("locked", mine["locked"] + 1))

code = cifar.main(argv)
ranks = distributed.all_gather_object(mine)
if distributed.rank() == 0:
    with open(record_path, "w") as file:
        json.dump({"exit_code": code, "ranks": ranks}, file)
sys.exit(code)
