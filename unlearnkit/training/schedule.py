"""The learning-rate schedule of Goel et al. (2024, Appendix A): linear warm-up, then linear decay."""

from __future__ import annotations

import math


def warmup_steps(total_steps: int, warmup_fraction: float) -> int:
    return max(1, math.ceil(warmup_fraction * total_steps)) if warmup_fraction > 0 else 0


def lr_at(step: int, total_steps: int, peak_lr: float, warmup_fraction: float, final_lr_fraction: float) -> float:
    """Learning rate for 0-based ``step``.

    Warm-up rises linearly to ``peak_lr`` at the last warm-up step; from there the rate falls
    linearly to ``final_lr_fraction * peak_lr`` at the last step.
    """
    if not 0 <= step < total_steps:
        raise ValueError(f"step must be in [0, {total_steps - 1}], got {step}")
    warmup = warmup_steps(total_steps, warmup_fraction)
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    decay_steps = total_steps - warmup
    if decay_steps <= 1:
        return peak_lr
    progress = (step - warmup) / (decay_steps - 1)
    return peak_lr * (1.0 - (1.0 - final_lr_fraction) * progress)
