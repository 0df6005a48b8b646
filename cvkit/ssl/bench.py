"""The comparison the self-supervised lectures make: several methods, one budget, one probe, two baselines.

:class:`ProbeBench` holds the data (unlabelled images to pre-train on, labelled images to
probe with) and the results, so every notebook runs the protocol the same way::

    bench = ProbeBench.fashion_mnist(pretrain_images=4096, probe_train=5000, probe_test=2000)
    bench.run_baselines(lambda: ConvEncoder(1, (16, 32, 64)), epochs=3, batch_size=256)
    method = SimCLR(ConvEncoder(1, (16, 32, 64)))
    pretrain(method, bench.pretrain_images, augment=aug, epochs=3, batch_size=256)
    bench.evaluate("SimCLR", method.encoder)
    print(bench.table())

The two baselines frame every number: **random init** (the same architecture, untrained:
what the architecture gives for free) and **supervised** (trained on the labels of the
pre-training images with the same loop, epochs and batch size: what labels buy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from cvkit.data.augment import BatchTransform
from cvkit.data.fashion_mnist import load_fashion_mnist
from cvkit.ssl.probe import ProbeResult, linear_probe
from cvkit.ssl.train import probe_table, train_supervised


@dataclass
class ProbeBench:
    """Pre-training images, probe data and the probe results of every method evaluated so far.

    Attributes:
        pretrain_images: (N, C, H, W) uint8, what SSL methods train on (their labels are never shown to them).
        pretrain_labels: (N,) int64, used only by the supervised baseline.
        train_images, train_labels: labelled images the linear probe is fitted on.
        test_images, test_labels: held-out images the probe is scored on.
        classes: class names.
        results: ``{name: ProbeResult}`` in evaluation order.
        baselines: the names in ``results`` that are baselines (drawn grey by :func:`cvkit.viz.plot_probe_accuracies`).
    """

    pretrain_images: torch.Tensor
    pretrain_labels: torch.Tensor
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str] = field(default_factory=list)
    results: dict[str, ProbeResult] = field(default_factory=dict)
    baselines: list[str] = field(default_factory=list)

    @classmethod
    def fashion_mnist(
        cls, pretrain_images: int = 4096, probe_train: int = 5000, probe_test: int = 2000, seed: int = 0
    ) -> "ProbeBench":
        """Fashion-MNIST: class-balanced seeded subsets of the training split (pre-training, probe training) and of the test split.

        Args:
            pretrain_images: images to pre-train on (``None`` or 60000: all).
            probe_train: labelled training images for the probe.
            probe_test: test images the probe is scored on (10000: the whole test split).
            seed: chooses the subsets.

        Raises:
            cvkit.data.DatasetNotFoundError: Fashion-MNIST is nowhere to be found (the message says how to get it).
        """
        train = load_fashion_mnist("train")
        pre = train.subset(pretrain_images, seed=seed)
        probe = train.subset(probe_train, seed=seed + 1)
        test = load_fashion_mnist("test").subset(probe_test, seed=seed)
        return cls(pre.images, pre.labels, probe.images, probe.labels, test.images, test.labels, list(train.classes))

    def evaluate(
        self, name: str, encoder: nn.Module, baseline: bool = False, verbose: bool = True, **probe_options
    ) -> ProbeResult:
        """Linear-probe (and k-NN) accuracy of a frozen ``encoder``, stored under ``name``.

        Args:
            name: the row's name in the table.
            encoder: maps (B, C, H, W) to (B, D).
            baseline: mark the row as a baseline.
            verbose: print one line with the accuracies.
            **probe_options: passed to :func:`cvkit.ssl.linear_probe`.
        """
        result = linear_probe(
            encoder, self.train_images, self.train_labels, self.test_images, self.test_labels, **probe_options
        )
        self.results[name] = result
        if baseline and name not in self.baselines:
            self.baselines.append(name)
        if verbose:
            knn = f", k-NN {100 * result.knn_accuracy:.1f}%" if result.knn_accuracy is not None else ""
            print(
                f"{name}: linear probe {100 * result.test_accuracy:.1f}% (train {100 * result.train_accuracy:.1f}%){knn}"
            )
        return result

    def run_baselines(
        self,
        make_encoder: Callable[[], nn.Module],
        *,
        augment: BatchTransform | None = None,
        suffix: str = "",
        seed: int = 0,
        **budget,
    ) -> tuple[nn.Module, nn.Module]:
        """Probe a random-init encoder and one trained with labels on the pre-training images, same budget.

        Args:
            make_encoder: builds a fresh backbone (called twice, after seeding with ``seed``).
            augment: one batched transform per training batch of the supervised baseline.
            suffix: appended to the row names (e.g. ``" (ViT)"``).
            seed: seeds both encoders' initialisation.
            **budget: ``epochs``, ``batch_size``, ``lr``, ``checkpoint_dir``, ... of
                :func:`cvkit.ssl.train_supervised`; with ``checkpoint_dir`` the supervised baseline saves a
                checkpoint every epoch and resumes from it when run again (a Colab disconnect loses one epoch).

        Returns:
            (random-init encoder, supervised encoder).
        """
        torch.manual_seed(seed)
        random_init = make_encoder()
        self.evaluate("random init" + suffix, random_init, baseline=True)
        torch.manual_seed(seed)
        supervised = make_encoder()
        train_supervised(supervised, self.pretrain_images, self.pretrain_labels, augment=augment, seed=seed, **budget)
        self.evaluate("supervised" + suffix, supervised, baseline=True)
        return random_init, supervised

    def accuracies(self) -> dict[str, float]:
        """``{name: linear-probe test accuracy}``."""
        return {k: r.test_accuracy for k, r in self.results.items()}

    def table(self) -> str:
        """The results as a Markdown table (accuracies in %)."""
        return probe_table(self.results)
