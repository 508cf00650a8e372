"""Saving a training run to one ``.npz`` file and restoring it.

What a checkpoint holds (keys of the npz archive, all NumPy arrays):

    format_version               FORMAT_VERSION when it was written; load_checkpoint reads
                                 only its own version (the layout below may change with it)
    model/<name>                 every parameter and buffer (batch-norm running statistics)
    optimizer/lr, optimizer/step_count, optimizer/num_params
    optimizer/state/<i>/<name>   per-parameter state (SGD's momentum buffers)
    scheduler/last_epoch, scheduler/base_lr
    progress/epoch               epochs finished
    progress/step                batches finished within epoch ``progress/epoch`` (0 at an
                                 epoch boundary; > 0 when Ctrl-C stopped an epoch midway)
    progress/partial             JSON: the running totals of that unfinished epoch
    args                         JSON: the command-line arguments of the run
    history                      JSON: list of the per-epoch metrics so far

There is no generator state to save: every random stream of a run is derived
from the counters (seed, epoch, step) when it is needed (see ``train/cifar.py``),
so the seed in ``args`` plus ``progress/epoch`` and ``progress/step`` *are* the
RNG state.

The file is written atomically: a crash while saving leaves the previous checkpoint.
Reading anything else (a text file, another program's .npz, a cut-off download)
fails with a UserError saying it is not a minicnn checkpoint, and why.
"""
import json
import zipfile
from typing import NamedTuple

import numpy as np

from .files import UserError, atomic_write

FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive; its first local file header starts so


class Checkpoint(NamedTuple):
    """A checkpoint read back from disk (arrays on the host)."""

    model: dict          # name -> array
    optimizer: dict      # the optimizer's state_dict()
    scheduler: dict      # the scheduler's state_dict()
    epoch: int           # epochs finished
    step: int            # batches finished in the next epoch
    partial: dict        # running totals of that unfinished epoch ({} at a boundary)
    args: dict           # the run's arguments
    history: list        # [{epoch, train_loss, ...}, ...]


def save_checkpoint(path, model, optimizer, scheduler, *, epoch, step, args, history, partial=None):
    """Write the state of a run to ``path`` (atomically). ``args`` is a dict of JSON-able values."""
    arrays = {"format_version": np.array(FORMAT_VERSION)}
    for name, value in model.state_dict().items():
        arrays[f"model/{name}"] = value.numpy()
    optimizer_state = optimizer.state_dict()
    arrays["optimizer/lr"] = np.array(optimizer_state["lr"], np.float64)
    arrays["optimizer/step_count"] = np.array(optimizer_state["step_count"], np.int64)
    arrays["optimizer/num_params"] = np.array(len(optimizer_state["state"]), np.int64)
    for index, state in enumerate(optimizer_state["state"]):
        for name, value in state.items():
            arrays[f"optimizer/state/{index}/{name}"] = value
    for name, value in scheduler.state_dict().items():
        arrays[f"scheduler/{name}"] = np.array(value)
    arrays["progress/epoch"] = np.array(epoch, np.int64)
    arrays["progress/step"] = np.array(step, np.int64)
    arrays["progress/partial"] = np.array(json.dumps(partial or {}))
    arrays["args"] = np.array(json.dumps(args))
    arrays["history"] = np.array(json.dumps(history))
    with atomic_write(path, "wb") as file:
        np.savez(file, **arrays)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises UserError, naming ``path``, when it is missing or unreadable, not a
    minicnn checkpoint (or a damaged one), or of another format version.
    """
    try:
        with open(path, "rb") as file:
            magic = file.read(len(ZIP_MAGIC))
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if magic != ZIP_MAGIC:
        raise UserError(f"{path} is not a minicnn checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "format_version" not in archive.files:
                raise UserError(f"{path} is not a minicnn checkpoint (an .npz archive without format_version)")
            _check_version(path, archive["format_version"])
            arrays = {key: archive[key] for key in archive.files}
        return _checkpoint_from(arrays)
    except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{path} is not a minicnn checkpoint, or a damaged one "
                        f"({type(error).__name__}: {error})") from None


def _check_version(path, stored):
    version = int(stored)
    if version > FORMAT_VERSION:
        raise UserError(f"{path} is a checkpoint of format version {version}, written by a newer minicnn; "
                        f"this one reads version {FORMAT_VERSION}: update minicnn to read it")
    if version < FORMAT_VERSION:
        raise UserError(f"{path} is a checkpoint of format version {version}, written by an older minicnn; "
                        f"this one reads only version {FORMAT_VERSION}: use the minicnn that wrote it")


def _checkpoint_from(arrays):
    """A Checkpoint from the arrays of a checkpoint file (KeyError etc. if one is missing)."""
    num_params = int(arrays["optimizer/num_params"])
    optimizer_state = {"lr": float(arrays["optimizer/lr"]),
                       "step_count": int(arrays["optimizer/step_count"]),
                       "state": [{} for _ in range(num_params)]}
    scheduler_state = {}
    model_state = {}
    for key, value in arrays.items():
        kind, _, name = key.partition("/")
        if kind == "model":
            model_state[name] = value
        elif kind == "scheduler":
            scheduler_state[name] = value.item()
        elif key.startswith("optimizer/state/"):
            index, _, state_name = key[len("optimizer/state/"):].partition("/")
            optimizer_state["state"][int(index)][state_name] = value
    return Checkpoint(model=model_state, optimizer=optimizer_state, scheduler=scheduler_state,
                      epoch=int(arrays["progress/epoch"]), step=int(arrays["progress/step"]),
                      partial=json.loads(str(arrays["progress/partial"])),
                      args=json.loads(str(arrays["args"])), history=json.loads(str(arrays["history"])))


def restore(checkpoint, model, optimizer=None, scheduler=None):
    """Copy a checkpoint's values into a model (and optimizer and scheduler) built to match it."""
    try:
        model.load_state_dict(checkpoint.model)
        if optimizer is not None:
            optimizer.load_state_dict(checkpoint.optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint.scheduler)
    except (KeyError, ValueError) as error:
        raise UserError(f"the checkpoint does not fit the model built from its arguments: {error}") from None
