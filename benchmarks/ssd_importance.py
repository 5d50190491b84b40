"""SSD importance throughput: ``unlearnkit.unlearning.ssd.importance`` against a plain loop, in one run.

Both compute the SSD importance of every parameter (Foster et al., AAAI 2024): the mean over the
fixed-order mini-batches of a data set of the squared gradient of the batch-mean cross-entropy,
with the model in eval mode (batch norm on its running statistics), in fp32.

Reference: the plain PyTorch way. Each batch is built on the fly from the uint8 images (to float,
``/ 255``, normalise with the dataset's mean and std; standard contiguous NCHW layout), then
``model.zero_grad()``, ``loss.backward()``, ``square += p.grad ** 2`` for every parameter, and at
the end ``square / number_of_batches``.

unlearnkit: ``importance(model, data, info, batch_size)`` on the same model (same instance, same
weights), the same samples in the same order and the same batch size.

Each is run once as a warm-up (kernels, allocator, oneDNN primitive caches) and then timed
``--repeats`` times, interleaved; the best time of each is reported. The importances of the two
must agree: ``max_relative_difference`` is the maximum over parameter tensors of
``||ours - reference||_inf / ||reference||_inf``. Both are fp32, but unlearnkit runs the
convolutions in channels_last (NHWC) and the reference in NCHW, so oneDNN / cuDNN sum in a different
order; where a gradient is a sum with heavy cancellation (the first layers of an untrained network,
or a max-pool whose argmax flips on a near-tie) that alone moves fp32 results by 1e-4 or more.
``--fp64-check`` puts this in scale: it also runs the reference loop in float64 and prints how far
each fp32 result is from it (same metric).

On Linux, ``background_cpu`` is the share of the CPUs that *other* processes used while each method
was timed; a large value means the timing was disturbed. The last line is
``speedup_vs_reference=<x>``.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
import torch.nn.functional as F

from unlearnkit.data import DataConfig, load_data
from unlearnkit.data.pipeline import TrainingSet
from unlearnkit.device import pick_device
from unlearnkit.models import build_model
from unlearnkit.unlearning.ssd import importance


def reference_importance(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                         mean: tuple[float, ...], std: tuple[float, ...], batch_size: int) -> dict[str, torch.Tensor]:
    """The textbook loop: ``.backward()`` into ``.grad`` and ``grad ** 2`` summed per parameter."""
    model.eval()
    dtype = next(model.parameters()).dtype  # float32; float64 for --fp64-check
    squares = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    mean_t = torch.tensor(mean, device=images.device, dtype=dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=dtype).view(1, -1, 1, 1)
    batches = 0
    for start in range(0, len(labels), batch_size):
        inputs = (images[start:start + batch_size].to(dtype) / 255.0 - mean_t) / std_t
        loss = F.cross_entropy(model(inputs), labels[start:start + batch_size])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for name, p in model.named_parameters():
                squares[name] += p.grad ** 2
        batches += 1
    return {name: square / batches for name, square in squares.items()}


def _busy_cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds used by all processes, by this one) so far; None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / ticks, own.user + own.system


def timed(fn, device: torch.device):
    """(result, seconds, share of the CPUs that other processes used meanwhile, or NaN)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    before = _busy_cpu_seconds()
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    after = _busy_cpu_seconds()
    background = float("nan")
    if before is not None and after is not None:
        others = (after[0] - before[0]) - (after[1] - before[1])
        background = max(others, 0.0) / (seconds * (os.cpu_count() or 1))
    return result, seconds, background


def max_relative_difference(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> float:
    tiny = torch.finfo(torch.float32).tiny
    worst = 0.0
    for name, ref in reference.items():
        diff = (ours[name].double() - ref.double()).abs().max().item()
        worst = max(worst, diff / max(ref.abs().max().item(), tiny))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet9")
    parser.add_argument("--samples", type=int, default=4096, help="training images (embedded MNIST) to score")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (best is reported)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--fp64-check", action="store_true",
                        help="also run the reference loop in float64 and print each fp32 result's distance to it")
    args = parser.parse_args()

    device = pick_device(args.device)
    splits = load_data(DataConfig(name="mnist", val_size=0, train_subset=args.samples, seed=0), device)
    info = splits.info
    images, labels = splits.train.images, splits.train.labels
    data = TrainingSet(images, labels, torch.arange(len(labels), device=device))
    model = build_model(args.model, info.num_classes, info.in_channels, seed=0).to(device)
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"device={device} threads={torch.get_num_threads()} model={args.model} parameters={parameters} "
          f"samples={len(labels)} batch_size={args.batch_size} repeats={args.repeats}")

    def run_reference():
        return reference_importance(model, images, labels, info.mean, info.std, args.batch_size)

    def run_ours():
        return importance(model, data, info, args.batch_size)

    # Warm-up on a few batches each.
    warm = min(len(labels), 3 * args.batch_size)
    reference_importance(model, images[:warm], labels[:warm], info.mean, info.std, args.batch_size)
    importance(model, TrainingSet(images[:warm], labels[:warm], data.index[:warm]), info, args.batch_size)

    reference_runs, our_runs = [], []  # (seconds, background CPU share)
    for _ in range(args.repeats):
        reference, *run = timed(run_reference, device)
        reference_runs.append(run)
        ours, *run = timed(run_ours, device)
        our_runs.append(run)
    model.zero_grad(set_to_none=True)

    reference_seconds, reference_background = min(reference_runs)
    our_seconds, our_background = min(our_runs)
    reference_rate = len(labels) / reference_seconds
    our_rate = len(labels) / our_seconds
    print(f"reference_samples_per_second={reference_rate:.1f} background_cpu={reference_background:.2f}")
    print(f"unlearnkit_samples_per_second={our_rate:.1f} background_cpu={our_background:.2f}")
    if args.fp64_check:
        exact = reference_importance(copy.deepcopy(model).double(), images, labels, info.mean, info.std,
                                     args.batch_size)
        print(f"reference_vs_fp64={max_relative_difference(reference, exact):.3e} "
              f"unlearnkit_vs_fp64={max_relative_difference(ours, exact):.3e}")
    print(f"max_relative_difference={max_relative_difference(ours, reference):.3e}")
    print(f"speedup_vs_reference={our_rate / reference_rate:.2f}")


if __name__ == "__main__":
    main()
