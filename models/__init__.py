"""Networks built from minicnn layers, kept in the repository (not installed), run from its root.

    googlenet   GoogLeNet / Inception v1 (Szegedy et al., 2015, "Going deeper with
                convolutions"), with the paper's ImageNet stem or a CIFAR stem, LRN or
                batch norm, and the two auxiliary classifiers:
                ``from models.googlenet import GoogLeNet, googlenet_loss``.
    summary     ``python -m models.summary googlenet --stem cifar``: a layer table
                (output shapes, parameters, multiply-adds) measured on the real modules.
"""
