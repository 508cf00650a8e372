"""Train GoogLeNet on CIFAR-10 with minicnn, or evaluate a checkpoint.

    python -m train.cifar                                  # the defaults: a GPU run of 15 epochs (without
                                                           # a GPU: on the CPU, saying so and how long)
    python -m train.cifar --device cpu --limit 512 --epochs 1 --width 0.25   # a CPU smoke run
    python -m train.cifar --resume --out runs/X            # continue run X (to --epochs)
    python -m train.cifar --evaluate runs/X/checkpoint.npz # accuracy per class, confusion matrix
    python -m train.cifar --evaluate runs/X/checkpoint.npz --plots   # ... and pictures of them, the
                                                           # filters and feature maps, in runs/X

A run writes to --out: metrics.jsonl (a line per epoch), checkpoint.npz (after
every epoch, and on Ctrl-C) and curves.png. It locks that folder while it runs,
so a second run into it is refused (see train/run_folder.py). Every path option
is checked before any work, and every file written atomically (train/files.py);
a checkpoint that cannot be written (a full disk) leaves the one before, and is
saved in the system's temporary folder instead (``Run.save``).

On several processes: ``mpiexec -n N python -m train.cifar ...`` trains one model
data-parallel, with the same options meaning the same run (--batch-size is the
global batch); train/data_parallel.py says who trains on what and who writes.

Reproducibility. Every random stream is a function of counters, not a generator
carried along: the model's initial weights come from ``manual_seed(seed)``; the
data order, crops and flips of an epoch from SeedSequence([seed, epoch]); the
dropout masks of a batch from ``manual_seed`` reseeded with
SeedSequence([seed, epoch, step]) before the batch (and the rank, on ranks other
than 0). So the RNG state of a run is just (seed, epoch, step), and on the CPU a
run stopped and resumed (even mid-epoch, on as many ranks) ends with exactly the
parameters of a run that never stopped.
"""
import argparse
import contextlib
import math
import os
import shlex
import signal
import sys
import time

import numpy as np
from tqdm import tqdm

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend, distributed, nn, optim
from models.googlenet import GoogLeNet, googlenet_loss

from . import data, data_parallel
from .augment import EpochPlan, normalize, training_batch
from .checkpoint import checkpoint_bytes, load_checkpoint, restore, save_elsewhere
from .files import UserError, WriteError, check_path, write_atomically
from .metrics import RunningTotals, confusion_matrix, format_report, read_due, write_metrics
from .plot import plot_curves
from .plot_learned import FILES as PLOT_FILES, matplotlib_available, write_learned_plots
from .run_folder import RunFolder
from .schedule import SCHEDULES, make_scheduler

MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
CHECKPOINT, METRICS, CURVES = "checkpoint.npz", "metrics.jsonl", "curves.png"
# The defaults that depend on --norm, chosen from a small CPU sweep (README.md, "Per-norm defaults").
NORM_DEFAULTS = {"bn": {"lr": 0.1}, "lrn": {"lr": 0.03}}
# Options a resumed run may change (they default to the run's own); every other one is the run's,
# except those that say what this command does.
RUN_OPTIONS = {"epochs", "device", "data_dir", "no_download"}
COMMAND_OPTIONS = {"out", "resume", "evaluate", "plots"}
# The options --evaluate uses; the model and the loss come from the checkpoint.
EVALUATE_OPTIONS = {"evaluate", "plots", "data_dir", "no_download", "device", "limit", "batch_size"}
QUICK_CPU_RUN = "python -m train.cifar --device cpu --limit 512 --epochs 1 --width 0.25"


# -- the command line ---------------------------------------------------------------------------

def _number(kind, test, wanted):
    """An argparse ``type`` that converts with ``kind`` and rejects values failing ``test``."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value
    return convert


positive_int = _number(int, lambda v: v > 0, "a whole number > 0")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number >= 0")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
smoothing_float = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def device_option(text):
    """argparse ``type`` for --device: "auto", or a name minicnn.backend understands."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return str(backend.parse_device(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, cpu, gpu or gpu:N, got {text}") from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after an option's help, except for flags and options without one."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:  # (not 0: --seed shows its default)
            return action.help
        return super()._get_help_string(action)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m train.cifar",
        description="Train GoogLeNet (CIFAR stem, auxiliary heads) on CIFAR-10 with minicnn, "
                    "or evaluate a checkpoint. The defaults are meant for a GPU; for a quick CPU "
                    f"run try: {QUICK_CPU_RUN}",
        epilog="A run leaves in --out: metrics.jsonl (one JSON object per epoch: epoch, train_loss, "
               "train_acc, test_loss, test_acc, lr, seconds; accuracies as fractions), checkpoint.npz "
               "(after every epoch, and on Ctrl-C) and curves.png (with matplotlib). Ctrl-C saves and "
               "stops; --resume continues, bit for bit on the CPU. Under mpiexec -n N it trains "
               "data-parallel, N ranks sharing every batch (see README.md).",
        formatter_class=_HelpFormatter)
    where = parser.add_argument_group("data and device")
    where.add_argument("--data-dir", default="./data",
                       help=f"folder holding {data.FOLDER}/; downloaded there (163 MB, MD5-checked) if absent")
    where.add_argument("--no-download", action="store_true", help="fail instead of downloading missing data")
    where.add_argument("--device", type=device_option, default="auto",
                       help="auto (the GPU when CuPy and a GPU are present, else the CPU), cpu, gpu or gpu:N")
    where.add_argument("--limit", type=positive_int, metavar="N",
                       help="train and evaluate on the first N images only (smoke runs)")
    model = parser.add_argument_group("model")
    model.add_argument("--norm", choices=("lrn", "bn"), default="bn",
                       help="lrn: the paper's conv+ReLU with local response norm; bn: batch norm after "
                            "every convolution (trains faster at a high learning rate); each has its own "
                            "default --lr")
    model.add_argument("--no-aux", action="store_true",
                       help="leave out the two auxiliary classifiers (else loss = main + 0.3 * each aux)")
    model.add_argument("--width", type=positive_float, default=1.0,
                       help="multiplier of every channel count (1.0 = the paper's network)")
    model.add_argument("--sync-bn", action="store_true",
                       help="under mpiexec, batch norm takes its statistics over the global batch (all ranks) "
                            "instead of each rank's slice (with --norm bn; one process: plain batch norm)")
    training = parser.add_argument_group("training (SGD, Nesterov momentum 0.9, weight decay 5e-4)")
    training.add_argument("--epochs", type=positive_int, default=15, help="epochs in total (a resumed run too)")
    training.add_argument("--batch-size", type=positive_int, default=128,
                          help="images per step (under mpiexec, over all ranks together: it must divide by them)")
    training.add_argument("--lr", type=positive_float,
                          help="learning rate: the peak of onecycle, the start of the others (default: "
                               + ", ".join(f"{d['lr']:g} with --norm {norm}" for norm, d in NORM_DEFAULTS.items())
                               + ")")
    training.add_argument("--schedule", choices=SCHEDULES, default="onecycle",
                          help="onecycle: warm up over 30%% of the steps to --lr, then cosine down to "
                               "~0 (per batch); cosine: --lr down to 0 over the run (per batch); "
                               "step: x0.1 after 50%% and again after 75%% of the epochs; "
                               "paper: x0.96 every 8 epochs")
    training.add_argument("--label-smoothing", type=smoothing_float, default=0.1,
                          help="target = (1 - s) * one-hot + s / 10, for every head")
    training.add_argument("--seed", type=non_negative_int, default=0,
                          help="seeds the weights, data order, augmentation and dropout")
    run = parser.add_argument_group("output")
    run.add_argument("--out", metavar="DIR",
                     help="where metrics.jsonl, checkpoint.npz and curves.png go (default: runs/<timestamp>); "
                          "a fresh run refuses a folder that already holds a run, and every run one that "
                          "another run is using")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its checkpoint, with its stored options (data and "
                          "device too, unless given), to --epochs")
    run.add_argument("--evaluate", metavar="CHECKPOINT",
                     help="only evaluate CHECKPOINT on the test set (of its run's --data-dir unless given): "
                          "accuracy, per class, confusion matrix; takes only --plots, --data-dir, --no-download, "
                          "--device, --limit and --batch-size")
    run.add_argument("--plots", nargs="?", const="", metavar="DIR",
                     help=f"with --evaluate: also draw {', '.join(PLOT_FILES)} (needs matplotlib) into DIR "
                          "(default: the checkpoint's folder)")
    return parser


def options_given(parser, argv):
    """The option names (dests) that ``argv`` sets explicitly, as opposed to defaults.

    argparse fills in a default only for attributes the namespace lacks, so a
    namespace pre-filled with a marker shows which ones the command line replaced.
    """
    marker = object()
    dests = vars(parser.parse_args(argv))
    probe = argparse.Namespace(**{name: marker for name in dests})
    parser.parse_args(argv, probe)
    return {name for name, value in vars(probe).items() if value is not marker}


# -- options and model -----------------------------------------------------------------------------

def fill_norm_defaults(args):
    """Options left unset (None) take the defaults of ``args.norm`` (NORM_DEFAULTS)."""
    for name, value in NORM_DEFAULTS[args.norm].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def stored_options(args):
    """The options a checkpoint keeps (JSON-able): the command line's, with --data-dir made absolute
    so that a resumed run finds the data from any folder."""
    options = dict(vars(args))
    options["data_dir"] = os.path.abspath(args.data_dir)
    return options


def open_device(option):
    """Resolve --device (backend.choose_device), print which device runs and why; returns its name.

    Under mpiexec each rank takes its own GPU, gpu:<its rank on its machine>, for
    --device gpu (or gpu:0, which is what gpu means); another gpu:N is refused.
    """
    device, why = backend.choose_device(option)
    if device.kind == "gpu" and distributed.world_size() > 1:
        if device.index != 0:
            raise UserError(f"--device {device} names one GPU, but each of the {distributed.world_size()} ranks "
                            "needs its own: use --device gpu (each rank takes the GPU numbered by its rank on "
                            "its machine)")
        device, why = backend.parse_device(distributed.local_gpu()), why + "; each rank its own GPU"
    if device.kind == "gpu":
        # float32 matrix products on TF32 tensor cores, as PyTorch allows; CuPy reads this
        # before its first product. CUPY_TF32=0 in the environment keeps full float32.
        os.environ.setdefault("CUPY_TF32", "1")
        why += "; TF32 matrix products" if os.environ["CUPY_TF32"] == "1" else "; full float32 products"
    print(f"device: {device} ({why})", flush=True)
    return str(device)


def continue_command(out):
    """The command line that resumes the run in ``out`` (quoted for a POSIX shell), on as many ranks."""
    ranks = distributed.world_size()
    launcher = f"mpiexec -n {ranks} " if ranks > 1 else ""
    return f"{launcher}python -m train.cifar --resume --out {shlex.quote(str(out))}"


def build_model(options):
    """GoogLeNet with the CIFAR stem, as the options (argparse names) ask."""
    model = GoogLeNet(num_classes=data.NUM_CLASSES, stem="cifar", aux=not options["no_aux"],
                      norm=options["norm"], width=options["width"])
    if options.get("sync_bn"):  # (absent from the options of runs older than --sync-bn)
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def describe_model(model, options):
    heads = "no aux heads" if options["no_aux"] else "aux heads (loss = main + 0.3 * each)"
    norm = options["norm"] + (" synchronised over the ranks" if options.get("sync_bn") else "")
    return (f"model: GoogLeNet, CIFAR stem, norm {norm}, width {options['width']:g}, {heads}: "
            f"{nn.count_parameters(model):,} parameters")


def step_seed(*counters):
    """A 32-bit seed that is a fixed function of the counters (seed, epoch, step)."""
    return int(np.random.SeedSequence(list(counters)).generate_state(1)[0])


# -- stopping ----------------------------------------------------------------------------------------

class Stopped(Exception):
    """Raised inside the loop to end the run early: its message is printed, then it exits with ``exit_code``."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class CtrlC:
    """Context manager that turns the first Ctrl-C into a request (``.requested``) that the loop
    honours between batches, so the checkpoint it then writes is consistent (never half an
    optimizer step). A second Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self):
        self.requested, self.previous = False, None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("Ctrl-C: stopping after this batch to save a checkpoint (press again to quit at once)")

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C stays a plain KeyboardInterrupt
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def is_out_of_memory(error):
    """True for CuPy's OutOfMemoryError (checked by name: CuPy may not be installed)."""
    kind = type(error)
    return kind.__name__ == "OutOfMemoryError" and kind.__module__.startswith("cupy")


def find_data(args):
    """The CIFAR-10 folder, downloaded first if need be (and allowed): by the first rank of each machine."""
    return data_parallel.first_on_each_machine(lambda: data.find_cifar10(args.data_dir,
                                                                         download=not args.no_download))


# -- evaluation ----------------------------------------------------------------------------------------

def evaluate(model, images, labels, batch_size, label_smoothing=0.0, stop=None, desc="test"):
    """Loss, accuracy and confusion matrix of ``model`` on a data set, in eval mode under no_grad.

    Under mpiexec each rank evaluates its shard of every batch (``batch_size`` is
    the global batch), and the results are summed over the ranks: every rank
    returns those of the whole data set.

    Args:
        images: (N, 3, 32, 32) uint8 on the model's device; labels: (N,) int64 there.
    Returns:
        (mean cross-entropy, accuracy in 0..1, confusion (10, 10) int64 on the device).
    """
    model.eval()
    totals = RunningTotals()
    confusion = backend.get_array_module(labels).zeros((data.NUM_CLASSES, data.NUM_CLASSES), np.int64)
    try:
        with minicnn.no_grad():
            for start in tqdm(range(0, len(labels), batch_size), desc=desc, unit="batch", leave=False):
                if stop is not None and data_parallel.any_rank(stop.requested):
                    raise KeyboardInterrupt
                mine = data_parallel.shard(start, min(start + batch_size, len(labels)))
                if mine.start == mine.stop:  # a short last batch, with nothing left for this rank
                    continue
                target = labels[mine.start:mine.stop]
                logits = model(Tensor(normalize(images[mine.start:mine.stop])))
                loss = F.cross_entropy(logits, target, label_smoothing)
                totals.add(loss.array, logits.array, target)
                confusion += confusion_matrix(target, logits.array.argmax(axis=1), data.NUM_CLASSES)
    finally:
        model.train()
    loss, accuracy = totals.read(distributed.all_reduce)
    return loss, accuracy, distributed.all_reduce(confusion)


def run_evaluation(args, given):
    """--evaluate CHECKPOINT: rebuild the model from the arguments stored in it and test it, on the
    data of its run unless --data-dir (or --no-download) is given. Under mpiexec the ranks share the
    test set (rank 0 reads the checkpoint, prints and draws)."""
    data_parallel.decided_by_rank_0(lambda: check_evaluation_paths(args))
    device = data_parallel.together(lambda: open_device(args.device))
    with backend.running_on(backend.parse_device(device)):  # what is made without naming a device lands there
        return _evaluate_checkpoint(args, given, device)


def plots_folder(args):
    """Where --plots draws: its folder, else the checkpoint's."""
    return args.plots or os.path.dirname(os.path.abspath(args.evaluate))


def check_evaluation_paths(args):
    """UserError (one line) if --evaluate or --plots cannot serve; before anything is read."""
    check_path("--evaluate", args.evaluate, "file")
    if args.plots is not None:
        check_path("--plots", plots_folder(args), "folder", write=True)


def _evaluate_checkpoint(args, given, device):
    checkpoint = data_parallel.decided_by_rank_0(lambda: load_checkpoint(args.evaluate))
    for name in ("data_dir", "no_download"):
        if name not in given and name in checkpoint.args:
            setattr(args, name, checkpoint.args[name])
    root = find_data(args)
    test, class_names = data_parallel.together(
        lambda: (data.read_split(root, data.TEST_FILES, args.limit), data.read_class_names(root)))
    model = build_model(checkpoint.args).to(device)
    data_parallel.together(lambda: restore(checkpoint, model))
    print(describe_model(model, checkpoint.args))
    print(f"checkpoint: {args.evaluate} (epoch {checkpoint.epoch}); {len(test.labels)} test images from {root}")
    images, labels = backend.to_device(test.images, device), backend.to_device(test.labels, device)
    loss, _, confusion = evaluate(model, images, labels, 2 * args.batch_size, checkpoint.args["label_smoothing"])
    print(f"test loss {loss:.4f}")
    print(format_report(confusion, class_names))
    if args.plots is not None and data_parallel.is_writer():
        folder = plots_folder(args)
        os.makedirs(folder, exist_ok=True)
        picture = test.images[0].transpose(1, 2, 0)  # the first test image, (H, W, 3) for display
        paths = write_learned_plots(folder, model, [("stem", model.stem), ("inception3a", model.inception3a)],
                                    normalize(images[:1])[0], picture, confusion, class_names,
                                    f" (a {class_names[test.labels[0]]})")
        print("plots written: " + ", ".join(paths))
    return 0


# -- training ------------------------------------------------------------------------------------------

def read_data(root, args):
    """(training split, test split) on the host, checked to share out over the ranks."""
    train = data.read_split(root, data.TRAIN_FILES, args.limit)
    data_parallel.check_last_batch(len(train.labels), args.batch_size)
    return train, data.read_split(root, data.TEST_FILES, args.limit)


class Run:
    """One training run: the data on the device, the model, optimizer and schedule, and its folder
    (``args.out``, made and locked by the caller; every file of the run is written through ``path``).

    Under mpiexec every rank builds its own Run; rank 0 alone writes (``self.writer``).
    """

    def __init__(self, args, device, checkpoint=None):
        self.args, self.device = args, device
        self.options = stored_options(args)  # stored in every checkpoint
        self.writer = data_parallel.is_writer()
        root = find_data(args)
        train, test = data_parallel.together(lambda: read_data(root, args))
        print(f"data: {len(train.labels)} training and {len(test.labels)} test images from {root}")
        # The whole data set lives on the device as uint8; batches are made there.
        self.train_images, self.train_labels = (backend.to_device(a, self.device) for a in train)
        self.test_images, self.test_labels = (backend.to_device(a, self.device) for a in test)
        self.steps_per_epoch = math.ceil(len(train.labels) / args.batch_size)

        minicnn.manual_seed(args.seed)  # the initial weights
        self.model = build_model(self.options).to(self.device)
        self.optimizer = optim.SGD(self.model.parameters(), lr=args.lr, momentum=MOMENTUM,
                                   weight_decay=WEIGHT_DECAY, nesterov=True)
        self.scheduler = make_scheduler(args.schedule, self.optimizer, args.epochs, self.steps_per_epoch)
        self.epoch, self.step, self.partial, self.history = 0, 0, {}, []
        self.saved = None  # (epoch, step) of the checkpoint in the run folder
        if checkpoint is not None:
            self.saved = (checkpoint.epoch, checkpoint.step)
            data_parallel.together(lambda: restore(checkpoint, self.model, self.optimizer, self.scheduler))
            self.epoch, self.step = checkpoint.epoch, checkpoint.step
            self.partial, self.history = checkpoint.partial, checkpoint.history
        distributed.broadcast_parameters(self.model)  # every rank starts from rank 0's weights
        print(describe_model(self.model, self.options))
        self.plot_skipped = False
        self.estimate_from_first_batch = cpu_by_default(args, device)

    def path(self, name):
        return os.path.join(self.args.out, name)

    def save(self, epoch, step, partial=None):
        """Rank 0 writes the checkpoint (the model is the same on every rank); the others nothing.

        If it cannot be written (a full disk), the one before stays, and this state goes to a
        folder in the system's temporary folder instead: UserError says where, on rank 0 alone
        (which ends the job under mpiexec).
        """
        if not self.writer:
            return
        content = checkpoint_bytes(self.model, self.optimizer, self.scheduler, epoch=epoch, step=step,
                                   args=self.options, history=self.history, partial=partial)
        try:
            write_atomically(self.path(CHECKPOINT), content)
        except WriteError as error:
            raise UserError(f"{error}. {self.last_checkpoint()}; {self.rescue(content, epoch, step)}") from None
        self.saved = (epoch, step)

    def last_checkpoint(self):
        """What the run folder holds: the last checkpoint written, if any."""
        if self.saved is None:
            return "No checkpoint was written before"
        return "The checkpoint there, of epoch {}, batch {}, is unchanged".format(*self.saved)

    def rescue(self, content, epoch, step):
        """Save a checkpoint that could not be written into the run folder elsewhere; says where (or why not)."""
        try:
            folder = save_elsewhere(content, CHECKPOINT)
        except WriteError as error:
            return f"this state (epoch {epoch}, batch {step}) could not be saved elsewhere either: {error}"
        return (f"this state (epoch {epoch}, batch {step}) is saved in {folder} instead: move its {CHECKPOINT} "
                f"into {self.args.out} once there is space, or continue with: {continue_command(folder)}")

    def images_done(self, steps):
        """Training images in an epoch's first ``steps`` global batches (all ranks together)."""
        return min(steps * self.args.batch_size, len(self.train_labels))

    def train_epoch(self, epoch, first_step, totals, stop, clock, lr):
        """Run batches first_step.. of ``epoch``, adding to ``totals``; returns the last batch's lr
        (``lr`` if no batch is left to run).

        Raises Stopped for a non-finite loss (nothing saved) or a Ctrl-C (checkpoint saved).
        """
        args, steps = self.args, self.steps_per_epoch
        plan = EpochPlan.draw(args.seed, epoch, len(self.train_labels)).to(self.device)
        bar = tqdm(range(first_step, steps), initial=first_step, total=steps, unit="batch",
                   desc=f"epoch {epoch + 1}/{args.epochs}", leave=False)
        seen_at_read, time_at_read = self.images_done(first_step), time.perf_counter()
        with bar:
            for step in bar:
                if data_parallel.any_rank(stop.requested):  # every rank stops before the same batch
                    self.check_finite(totals, epoch, step)
                    self.save(epoch, step, self.partial_epoch(totals, clock, lr))
                    raise Stopped(f"stopped at epoch {epoch + 1}, batch {step} of {steps}; checkpoint saved. "
                                  f"Continue with: {continue_command(args.out)}", 130)
                lr = self.optimizer.lr
                started = time.perf_counter()
                self.train_step(plan, epoch, step, totals)
                if self.estimate_from_first_batch:
                    self.estimate_from_first_batch = False
                    tqdm.write(self.estimate(time.perf_counter() - started, epoch * steps + step + 1))
                if read_due(step + 1, steps):
                    mean_loss, accuracy = self.check_finite(totals, epoch, step)
                    now = time.perf_counter()
                    # shown when the bar next counts a batch, so the count and the figures agree
                    images = self.images_done(step + 1)
                    bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{accuracy:.1%}", refresh=False,
                                    img_s=f"{(images - seen_at_read) / (now - time_at_read):.0f}")
                    seen_at_read, time_at_read = images, now
        return lr

    def estimate(self, seconds, steps_done):
        """The line saying how long the run takes, from the ``seconds`` of its first batch."""
        args = self.args
        steps_left = self.steps_per_epoch * args.epochs - steps_done
        # an evaluation batch is a forward pass (about a third of a step) of twice the images
        evaluation = math.ceil(len(self.test_labels) / (2 * args.batch_size)) * 2 / 3
        left = seconds * (steps_left + evaluation * (args.epochs - self.epoch))
        return (f"note: the first batch took {seconds:.1f} s on the CPU, so this run takes about "
                f"{format_duration(left)} more, likely less (the first batch also warms up); Ctrl-C saves and stops it")

    def partial_epoch(self, totals, clock, lr):
        """What a checkpoint keeps of an unfinished epoch: the running totals of all ranks, its time and lr."""
        return {"totals": totals.to_dict(distributed.all_reduce), "seconds": clock(), "lr": lr}

    def train_step(self, plan, epoch, step, totals):
        """One SGD step on global batch ``step`` of the epoch's plan, of which this rank takes its
        shard (all of it alone); adds the shard's loss and hits to ``totals``."""
        mine = data_parallel.shard(step * self.args.batch_size, self.images_done(step + 1))
        index, images = training_batch(self.train_images, plan, mine.start, mine.stop)
        labels = self.train_labels[index]
        minicnn.manual_seed(step_seed(self.args.seed, epoch, step, *data_parallel.rank_counters()))  # dropout masks
        outputs = self.model(Tensor(images))
        loss = self.loss(outputs, labels)
        self.optimizer.zero_grad()
        (loss if mine.weight == 1 else loss * mine.weight).backward()  # weighted by this rank's share of the batch
        distributed.all_reduce_gradients(self.model)  # the mean over the ranks: the global batch's gradient
        self.optimizer.step()
        self.scheduler.step()
        logits = outputs[0] if isinstance(outputs, tuple) else outputs
        totals.add(self.main_loss(outputs, loss, labels), logits.array, labels, objective=loss.array)

    def loss(self, outputs, labels):
        """The training objective: main + 0.3 * (aux1 + aux2) cross-entropy, label-smoothed."""
        return googlenet_loss(outputs, labels, label_smoothing=self.args.label_smoothing)

    def main_loss(self, outputs, loss, labels):
        """The main classifier's cross-entropy (what train_loss reports, comparable to test_loss)."""
        if not isinstance(outputs, tuple):
            return loss.array
        with minicnn.no_grad():
            return F.cross_entropy(outputs[0], labels, self.args.label_smoothing).array

    def check_finite(self, totals, epoch, step):
        """Read the running totals of all ranks (waits for the device); Stopped if the loss is nan or inf
        (not before the epoch's first batch, when there is no loss yet)."""
        totals = totals.on_host(distributed.all_reduce)
        mean_loss, accuracy = totals.read()
        if totals.count and not math.isfinite(mean_loss):
            raise Stopped(self.non_finite_message(
                mean_loss, f"the training loss in epoch {epoch + 1} (by batch {step + 1})"), 1)
        return mean_loss, accuracy

    def non_finite_message(self, value, what):
        kept = (f"the last good checkpoint, {self.path(CHECKPOINT)} (epoch {self.epoch}, batch {self.step}), is kept"
                if os.path.exists(self.path(CHECKPOINT)) else "no checkpoint was written")
        return f"error: {what} became {value}; stopped, and {kept}. Try a lower --lr."

    def train(self):
        """Train from the current (epoch, step) to args.epochs; returns the exit code."""
        args = self.args
        with CtrlC() as stop:
            while self.epoch < args.epochs:
                epoch, first_step = self.epoch, self.step
                clock = epoch_clock(self.partial.get("seconds", 0.0))
                totals = data_parallel.carried_totals(self.partial.get("totals", {}))
                lr = self.train_epoch(epoch, first_step, totals, stop, clock, self.partial.get("lr"))
                train_loss, train_acc = totals.read(distributed.all_reduce)
                try:
                    test_loss, test_acc, _ = evaluate(self.model, self.test_images, self.test_labels,
                                                      2 * args.batch_size, args.label_smoothing, stop)
                except KeyboardInterrupt:  # Ctrl-C during evaluation: the epoch's training is kept
                    self.save(epoch, self.steps_per_epoch, self.partial_epoch(totals, clock, lr))
                    raise Stopped(f"stopped while evaluating epoch {epoch + 1}; checkpoint saved. "
                                  f"Continue with: {continue_command(args.out)}", 130)
                if not math.isfinite(test_loss):
                    raise Stopped(self.non_finite_message(test_loss, f"the test loss after epoch {epoch + 1}"), 1)
                row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                       "test_loss": test_loss, "test_acc": test_acc, "lr": lr, "seconds": clock()}
                self.history.append(row)
                self.epoch, self.step, self.partial = epoch + 1, 0, {}
                self.save(self.epoch, 0)
                if self.writer:
                    self.write_reports()
                tqdm.write(f"epoch {epoch + 1:>3}/{args.epochs}  train loss {train_loss:.4f} acc {train_acc:6.2%}"
                           f"  test loss {test_loss:.4f} acc {test_acc:6.2%}  lr {lr:.4g}  {row['seconds']:.1f}s")
        return 0

    def write_reports(self):
        """metrics.jsonl and curves.png, after the epoch's checkpoint (a failure says that one is safe)."""
        try:
            write_metrics(self.history, self.path(METRICS))
            self.plot()
        except WriteError as error:
            raise UserError(f"{error}. The checkpoint of epoch {self.epoch} is saved: once there is space, "
                            f"continue with: {continue_command(self.args.out)}") from None

    def plot(self):
        if plot_curves(self.history, self.path(CURVES)):
            return
        if not self.plot_skipped:
            print(f"{CURVES} skipped: matplotlib is not installed (pip install -e '.[plot]')")
        self.plot_skipped = True

    def summary(self, wall_seconds):
        best = max(self.history, key=lambda row: row["test_acc"])
        minutes, seconds = divmod(wall_seconds, 60)
        return (f"best test accuracy {best['test_acc']:.2%} (epoch {best['epoch']} of {len(self.history)}); "
                f"wall time {int(minutes)}m {seconds:.1f}s; results in {self.args.out}")


def cpu_by_default(args, device):
    """True when no --device was asked for and the CPU runs, because there is no GPU."""
    return args.device == "auto" and device == "cpu"


def cpu_notice(args):
    """What a run that the CPU takes for lack of a GPU says before it starts."""
    images = f"{args.limit:,} images" if args.limit else "all 50,000 images"
    epochs = f"{args.epochs} epoch" + ("s" if args.epochs > 1 else "")
    return (f"note: no GPU, so the CPU runs this recipe meant for a GPU ({epochs} of {images} at width "
            f"{args.width:g}); the first batch times it. For a quick try instead: {QUICK_CPU_RUN}")


def format_duration(seconds):
    """3725 -> "1 h 2 min"."""
    if seconds < 30:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def epoch_clock(seconds_before):
    """A function returning the seconds spent on this epoch: ``seconds_before`` (time spent on it
    before a resume) plus the time since this call."""
    start = time.perf_counter()
    return lambda: seconds_before + time.perf_counter() - start


def resume_options(args, given, stored):
    """The options of a resumed run: the stored ones, except those in RUN_OPTIONS given on the
    command line (so ``--resume --out DIR`` alone continues with the run's data and device).

    Any other option set on the command line to a value other than the stored one is
    an error rather than silently ignored (it would not do what the user meant).
    """
    conflicts = [f"--{name.replace('_', '-')} {stored[name]} (not {getattr(args, name)})"
                 for name in sorted(stored) if name not in RUN_OPTIONS | COMMAND_OPTIONS and name in given
                 and getattr(args, name) != stored[name]]
    if conflicts:
        raise UserError("--resume continues a run with the options it started with: " + ", ".join(conflicts)
                        + ". Drop those options, or start a new run with another --out.")
    for name, value in stored.items():
        if name not in given and name not in COMMAND_OPTIONS:
            setattr(args, name, value)
    return args


def open_run(args, given, rank_0_holds):
    """Lock the run folder (into the ExitStack ``rank_0_holds``, for the whole run) and read the
    checkpoint of a resumed run; returns (checkpoint or None, the run's options). Under mpiexec rank 0
    alone does this, and hands the result to the others."""
    checkpoint_path = os.path.join(args.out, CHECKPOINT)
    if args.resume:
        if os.path.exists(args.out):
            check_path("--out", args.out, "folder")
        if not os.path.exists(checkpoint_path):
            raise UserError(f"nothing to resume: no {CHECKPOINT} in {args.out}; start without --resume")
        check_path("--resume: the checkpoint", checkpoint_path, "file")
    # before any data loads: refuses a file, an unwritable place, a folder in use
    rank_0_holds.enter_context(RunFolder(args.out))
    checkpoint = None
    if args.resume:
        checkpoint = load_checkpoint(checkpoint_path)
        # (a run older than --sync-bn had plain batch norm)
        args = resume_options(args, given, {"sync_bn": False, **checkpoint.args})
    else:
        existing = [name for name in (CHECKPOINT, METRICS) if os.path.exists(os.path.join(args.out, name))]
        if existing:
            raise UserError(f"{args.out} already holds a run ({', '.join(existing)}); add --resume to "
                            "continue it, or choose another --out (nothing there was changed)")
    data_parallel.check_global_batch(args.batch_size)  # a resumed run's too, on this number of ranks
    return checkpoint, args


def run_training(args, given, threads):
    """Start or resume (--resume) the run in args.out, ``threads`` CPU threads per rank; returns the exit code."""
    with contextlib.ExitStack() as rank_0_holds:
        checkpoint, args = data_parallel.decided_by_rank_0(lambda: open_run(args, given, rank_0_holds))
        if checkpoint is not None and checkpoint.epoch >= args.epochs:
            print(f"nothing to do: the run in {args.out} has finished {checkpoint.epoch} of --epochs {args.epochs}")
            return 0
        device = data_parallel.together(lambda: open_device(args.device))  # a resumed run's own, unless given
        if distributed.world_size() > 1:
            print(data_parallel.describe(args.batch_size, device, threads))
        if cpu_by_default(args, device):
            print(cpu_notice(args))
        if checkpoint is not None:
            print(f"resuming {args.out} at epoch {checkpoint.epoch + 1}, batch {checkpoint.step}")
        with backend.running_on(backend.parse_device(device)):  # what is made without naming a device lands there
            run = Run(fill_norm_defaults(args), device, checkpoint)
            started = time.perf_counter()
            code = run.train()
        print(run.summary(time.perf_counter() - started))
        return code


def main(argv=None):
    """The command; returns its exit code (``python -m train.cifar`` exits with it).

    Under mpiexec every rank runs it; rank 0 alone prints (data_parallel.only_rank_0_speaks).
    """
    distributed.init()  # under mpiexec: join the other ranks (MPI); alone: a world of one
    with data_parallel.only_rank_0_speaks():
        return _command(build_parser(), sys.argv[1:] if argv is None else list(argv))


def _command(parser, argv):
    args = parser.parse_args(argv)
    threads = data_parallel.cpu_threads_per_rank()
    # this rank's share of the cores for minicnn's own threads (see configure_cpu's docs)
    minicnn.configure_cpu(threads=threads)
    if args.evaluate and args.resume:
        parser.error("--evaluate and --resume do not go together")
    if args.plots is not None and not args.evaluate:
        parser.error("--plots goes with --evaluate CHECKPOINT")
    if args.plots is not None and not matplotlib_available():
        print("error: --plots needs matplotlib: python -m pip install -e '.[plot]'", file=sys.stderr)
        return 1
    if args.resume and not args.out:
        parser.error("--resume needs --out DIR: the folder of the run to continue")
    if args.sync_bn and args.norm != "bn":
        parser.error("--sync-bn goes with --norm bn (the LRN network has no batch norm)")
    given = options_given(parser, argv)
    if args.evaluate and given - EVALUATE_OPTIONS:
        ignored = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(given - EVALUATE_OPTIONS))
        parser.error(f"--evaluate takes the model and its options from the checkpoint, so {ignored} would "
                     "do nothing; drop them")
    if not args.out:
        args.out = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))  # rank 0's names the run
    try:
        if args.evaluate:
            return run_evaluation(args, given)
        return run_training(args, given, threads)
    except (UserError, backend.DeviceUnavailableError) as error:
        return data_parallel.finish(f"error: {error}", 1, agreed=isinstance(error, data_parallel.AgreedError))
    except Stopped as stop:  # every rank stops at the same point (the figures and the Ctrl-C are agreed)
        return data_parallel.finish(str(stop), stop.exit_code)
    except KeyboardInterrupt:  # a second Ctrl-C: at once, wherever each rank was
        return data_parallel.quit_at_once("interrupted; the last checkpoint (if any) is unchanged", 130)
    except Exception as error:
        if is_out_of_memory(error):
            return data_parallel.finish(f"error: the GPU ran out of memory ({error}). Try a smaller --batch-size "
                                        f"(e.g. {max(1, args.batch_size // 2)}) or --width.", 1, agreed=False)
        raise


if __name__ == "__main__":
    sys.exit(main())
