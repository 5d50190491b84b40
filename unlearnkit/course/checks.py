"""Checking a student's function against the library's reference on random cases, with a clear verdict.

:func:`compare` calls both functions on the same freshly generated inputs (each gets its own copy) and
stops at the first disagreement, naming the case, the inputs, what was expected and what came back.
It also catches the usual slips: an exercise left as ``raise NotImplementedError``, a function that
changes its inputs in place, a wrong shape or dtype, and an exception.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``bool(verdict)`` is whether the function agrees with the reference."""

    exercise: str
    passed: bool
    cases: int
    message: str
    not_done: bool = False

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✅" if self.passed else ("✏️" if self.not_done else "❌")
        return f"{mark} {self.exercise}: {self.message}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else ("#9a6700" if self.not_done else "#cf222e")
        text = str(self).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
        return f'<div class="unlearnkit-verdict" style="color:{colour};font-family:monospace">{text}</div>'

    def use(self, mine: Callable, reference: Callable) -> Callable:
        """``mine`` when it passed, else the reference (saying so), so the rest of a notebook still runs."""
        if self.passed:
            return mine
        print(f"(the rest of this notebook uses the library's {self.exercise} until yours passes)")
        return reference


def describe(value: Any) -> str:
    """A short description of an input or output for a message."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8:
            return f"tensor({value.tolist()}, dtype={value.dtype})"
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}, dtype {value.dtype}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, torch.nn.Module):
        return f"{type(value).__name__} with {sum(p.numel() for p in value.parameters())} parameters"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _same_input(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor):
        return before.shape == after.shape and torch.equal(before, after)
    if isinstance(before, torch.nn.Module):
        return all(torch.equal(p, q) for p, q in zip(before.state_dict().values(), after.state_dict().values()))
    if isinstance(before, Mapping):
        return all(_same_input(before[k], after[k]) for k in before)
    return before == after


def difference(got: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """Why ``got`` is not ``expected`` (None when they agree; NaN equals NaN)."""
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"expected a dict, got {type(got).__name__}"
        if set(got) != set(expected):
            return f"expected the keys {sorted(expected)}, got {sorted(got)}"
        for key in expected:
            problem = difference(got[key], expected[key], rtol, atol)
            if problem:
                return f"[{key!r}]: {problem}"
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.dtype != expected.dtype and not (got.is_floating_point() and expected.is_floating_point()):
            return f"expected dtype {expected.dtype}, got {got.dtype}"
        if expected.is_floating_point():
            close = torch.isclose(got.double(), expected.double(), rtol=rtol, atol=atol, equal_nan=True)
        else:
            close = got == expected
        if not bool(close.all()):
            where = (~close).nonzero()[0].tolist()
            index = tuple(where)
            return (f"{int((~close).sum())} of {expected.numel()} values differ, e.g. at index {index}: "
                    f"expected {expected[index].item():.6g}, got {got[index].item():.6g}")
        return None
    if isinstance(expected, float):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {type(got).__name__}"
        if math.isnan(expected) and math.isnan(value):
            return None
        if math.isnan(expected) or not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
            return f"expected {expected:.6g}, got {value:.6g}"
        return None
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def compare(exercise: str, mine: Callable, reference: Callable, cases: Iterable[dict[str, Any]],
            rtol: float = 1e-5, atol: float = 1e-7) -> Verdict:
    """Call ``mine`` and ``reference`` with the keyword arguments of every case; the first disagreement fails."""
    count = 0
    for count, case in enumerate(cases, start=1):
        expected = reference(**copy.deepcopy(case))
        given = copy.deepcopy(case)
        try:
            got = mine(**given)
        except NotImplementedError:
            return Verdict(exercise, False, count - 1, "not done yet: replace `raise NotImplementedError` with your "
                           "code, then run this cell again.", not_done=True)
        except Exception as error:  # the student's code failed: report it as the verdict
            return Verdict(exercise, False, count - 1, f"case {count}: your function raised {type(error).__name__}: "
                           f"{error}\n  inputs: {describe(case)}")
        changed = [name for name in case if not _same_input(case[name], given[name])]
        if changed:
            return Verdict(exercise, False, count - 1, f"case {count}: your function changed its input "
                           f"{', '.join(changed)} in place; work on a copy.\n  inputs: {describe(case)}")
        problem = difference(got, expected, rtol, atol)
        if problem:
            return Verdict(exercise, False, count - 1, f"case {count}: {problem}\n  inputs: {describe(case)}")
    return Verdict(exercise, True, count, f"correct on all {count} random cases.")
