"""Training and evaluating GoogLeNet on CIFAR-10 with minicnn: ``python -m train.cifar``.

    cifar       the command: options, the training loop, evaluation of a checkpoint
    data        CIFAR-10 in its official Python layout: download, verify, extract, read
    augment     random crop + flip and per-channel normalisation, vectorised on the device
    schedule    the learning-rate schedules behind --schedule
    checkpoint  saving and restoring a run (weights, optimizer, schedule, counters)
    metrics     running totals on the device, metrics.jsonl, accuracy tables
    plot        curves.png (matplotlib, optional)
    files       atomic file writes; UserError, the errors shown without a traceback
"""
