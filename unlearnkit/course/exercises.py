"""The course's exercises: for each, the library's reference and a generator of random cases.

``check(name, my_function)`` runs :func:`~unlearnkit.course.checks.compare` on that exercise's cases,
shows the verdict and returns it. The references are the library's own code, so a student's function
is held to exactly what the kit computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..audits.gus import unlearning_scores
from ..data.core import DatasetInfo
from ..data.pipeline import TrainingSet, prepare
from ..manipulations import stamp_trigger
from ..metrics import accuracy, attack_success_rate
from ..unlearning import SSDImportances, dampen, importance
from ..unlearning.selection import SelectionScore
from .checks import Verdict, compare

CASES = 25


@dataclass(frozen=True)
class Exercise:
    name: str
    reference: Callable
    cases: Callable[[torch.Generator], Iterator[dict[str, Any]]]
    rtol: float = 1e-5
    atol: float = 1e-7


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _integer(generator: torch.Generator, low: int, high: int) -> int:
    """Uniform in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (), generator=generator))


# BadNet trigger -------------------------------------------------------------------------------------------

def reference_trigger(images: torch.Tensor, patch_size: int, value: int) -> torch.Tensor:
    """Gu et al. (2019): the bottom-right ``patch_size`` square set to ``value`` on every channel, on a copy."""
    return stamp_trigger(images, patch_size, value)


def trigger_cases(generator: torch.Generator) -> Iterator[dict[str, Any]]:
    for _ in range(CASES):
        channels = 1 if torch.rand((), generator=generator) < 0.5 else 3
        height, width = _integer(generator, 4, 12), _integer(generator, 4, 12)
        n = _integer(generator, 1, 5)
        images = torch.randint(0, 256, (n, channels, height, width), dtype=torch.uint8, generator=generator)
        yield {"images": images, "patch_size": _integer(generator, 1, min(height, width)),
               "value": _integer(generator, 0, 255)}


# Attack success rate --------------------------------------------------------------------------------------

def reference_asr(predictions: torch.Tensor, clean_labels: torch.Tensor, target_class: int) -> float:
    """Share of the triggered images of the other classes that the model puts in the target class."""
    return attack_success_rate(predictions, clean_labels, target_class)


def asr_cases(generator: torch.Generator) -> Iterator[dict[str, Any]]:
    for case in range(CASES):
        classes = _integer(generator, 2, 10)
        n = _integer(generator, 1, 40)
        target = _integer(generator, 0, classes - 1)
        labels = torch.randint(0, classes, (n,), generator=generator)
        if case == 0:
            labels[:] = target  # no image of another class: the rate is undefined (NaN)
        predictions = torch.where(torch.rand(n, generator=generator) < 0.6, torch.full_like(labels, target),
                                  torch.randint(0, classes, (n,), generator=generator))
        yield {"predictions": predictions, "clean_labels": labels, "target_class": target}


# Model selection (Goel et al. 2024) -----------------------------------------------------------------------

def reference_selection_score(val_predictions: torch.Tensor, val_labels: torch.Tensor,
                              forget_before: torch.Tensor, forget_after: torch.Tensor) -> float:
    """0.5 * validation accuracy + 0.5 * share of S_f whose prediction changed from M_o."""
    changed = (forget_after != forget_before).double().mean().item()
    return SelectionScore(accuracy(val_predictions, val_labels), changed).score


def selection_cases(generator: torch.Generator) -> Iterator[dict[str, Any]]:
    for _ in range(CASES):
        classes, n_val, n_forget = _integer(generator, 2, 10), _integer(generator, 1, 50), _integer(generator, 1, 30)
        before = torch.randint(0, classes, (n_forget,), generator=generator)
        after = torch.where(torch.rand(n_forget, generator=generator) < 0.5, before,
                            torch.randint(0, classes, (n_forget,), generator=generator))
        yield {"val_predictions": torch.randint(0, classes, (n_val,), generator=generator),
               "val_labels": torch.randint(0, classes, (n_val,), generator=generator),
               "forget_before": before, "forget_after": after}


# SSD dampening (Foster et al. 2024) -----------------------------------------------------------------------

class _OneTensor(nn.Module):
    def __init__(self, theta: torch.Tensor):
        super().__init__()
        self.theta = nn.Parameter(theta.clone())


def reference_dampening(theta: torch.Tensor, importance_forget: torch.Tensor, importance_reference: torch.Tensor,
                        a: float, lam: float) -> torch.Tensor:
    """SSD's steps 2-3 on one parameter tensor, computed by the library's :func:`dampen`."""
    holder = _OneTensor(theta)
    dampen(holder, SSDImportances({"theta": importance_forget}, {"theta": importance_reference}, 1, "retain"), a, lam)
    return holder.theta.detach()


def dampening_cases(generator: torch.Generator) -> Iterator[dict[str, Any]]:
    for _ in range(CASES):
        shape = tuple(_integer(generator, 1, 6) for _ in range(_integer(generator, 1, 3)))
        forget = torch.rand(shape, generator=generator) ** 4
        reference = torch.rand(shape, generator=generator) ** 4
        reference[torch.rand(shape, generator=generator) < 0.1] = 0.0  # only S_f moves these: always selected
        both = torch.rand(shape, generator=generator) < 0.05
        forget[both], reference[both] = 0.0, 0.0  # 0 / 0: never selected
        a = 10 ** _uniform(generator, -1, 1.5)
        yield {"theta": torch.randn(shape, generator=generator), "importance_forget": forget,
               "importance_reference": reference, "a": a, "lam": a * 10 ** _uniform(generator, -1, 1)}


# SSD importance ------------------------------------------------------------------------------------------

_GREY = DatasetInfo(name="random", num_classes=3, class_names=("a", "b", "c"), mean=(0.5,), std=(0.25,),
                    hflip=False, crop_padding=0)


def _tiny_network(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 5 * 5, 3)).eval()


def reference_importance(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                         batch_size: int) -> dict[str, torch.Tensor]:
    """The library's :func:`importance` on inputs that are already normalised."""
    images = (inputs * 0.25 + 0.5).mul(255).round().to(torch.uint8)
    return importance(model, TrainingSet(images, labels, torch.arange(len(labels))), _GREY, batch_size,
                      channels_last=False)


def importance_cases(generator: torch.Generator) -> Iterator[dict[str, Any]]:
    for _ in range(8):
        n = _integer(generator, 3, 20)
        images = torch.randint(0, 256, (n, 1, 5, 5), dtype=torch.uint8, generator=generator)
        with torch.random.fork_rng(devices=[]):
            model = _tiny_network(int(torch.randint(0, 10_000, (), generator=generator)))
        yield {"model": model, "inputs": prepare(images, None, _GREY, None, channels_last=False),
               "labels": torch.randint(0, 3, (n,), generator=generator), "batch_size": _integer(generator, 1, n)}


# Gaussian Unlearning Score (Pawelczyk et al. 2025) --------------------------------------------------------

def gus_cases(generator: torch.Generator) -> Iterator[dict[str, Any]]:
    for case in range(CASES):
        n, shape = _integer(generator, 1, 8), (_integer(generator, 1, 3), _integer(generator, 2, 6),
                                               _integer(generator, 2, 6))
        eps = _uniform(generator, 0.05, 1.0)
        gradients = torch.randn((n, *shape), generator=generator)
        if case == 0:
            gradients[0] = 0.0  # a vanishing gradient scores 0
        yield {"gradients": gradients, "noise": torch.randn((n, *shape), generator=generator) * eps, "eps": eps}


def reference_gus(gradients: torch.Tensor, noise: torch.Tensor, eps: float) -> torch.Tensor:
    return unlearning_scores(gradients, noise, eps)


EXERCISES = {exercise.name: exercise for exercise in [
    Exercise("badnet_trigger", reference_trigger, trigger_cases),
    Exercise("attack_success_rate", reference_asr, asr_cases),
    Exercise("selection_score", reference_selection_score, selection_cases),
    Exercise("ssd_dampening", reference_dampening, dampening_cases, rtol=1e-5, atol=1e-6),
    Exercise("ssd_importance", reference_importance, importance_cases, rtol=1e-3, atol=1e-9),
    Exercise("gus_scores", reference_gus, gus_cases, rtol=1e-6, atol=1e-9),
]}


def reference(name: str) -> Callable:
    """The library's version of exercise ``name``."""
    return _exercise(name).reference


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"no exercise {name!r}; the exercises are {', '.join(EXERCISES)}")
    return EXERCISES[name]


def check(name: str, mine: Callable, seed: int = 0, show: bool = True) -> Verdict:
    """Compare ``mine`` with the reference of exercise ``name`` on random cases and show the verdict."""
    exercise = _exercise(name)
    generator = torch.Generator().manual_seed(seed)
    verdict = compare(name, mine, exercise.reference, exercise.cases(generator), exercise.rtol, exercise.atol)
    if show:
        from IPython.display import display

        display(verdict)
    return verdict
