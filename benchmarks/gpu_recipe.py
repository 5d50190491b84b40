"""GPU speed of the corrective recipe and the paper-scale sweep (Goel et al. 2024, Figure 2 on CIFAR-10).

Times, on one device and in one run:

1. one original-model training with the paper's recipe: ResNet-9, 4000 steps x batch 512, SGD, warm-up
   then linear decay, random crop + flip; unlearnkit's path: the uint8 dataset resident on the device,
   batched on-device augmentation, bf16 autocast, channels_last and ``torch.compile`` (on CUDA by default; ``--no-compile`` / ``--compile``).
   Baseline in the same run: the same trainer in fp32 with NCHW tensors, timed on ``--baseline-steps``
   steps and scaled to the recipe's 4000;
2. one unlearning run of each method of the figure, evaluation and selection score included, as the
   sweep runs them: RewoD (a full retraining), CF, SCRUB and BadT (1000 steps), SSD (the first point
   of a grid computes the importances, the other 49 reuse them);
3. ``--share K`` copies of a 1000-step fine-tuning at once in K processes on the same device, against
   one alone: the gain from several runs sharing a GPU (what ``gpus_per_run: 1/K`` gives a Ray sweep).

and extrapolates the whole Figure-2 sweep: 2 manipulations x 10 alphas x 3 seeds x (RewoD + CF
+ 8 SCRUB + 50 SSD + BadT), plus the 6 original models. Targets on one H100: training <= 30 s, sweep
<= 2 h. The paper (Table 3, one RTX 2080): 49.9 min per training.

CIFAR-10 itself cannot be downloaded everywhere, so the data are random uint8 images of CIFAR-10's
shape and size (45000 train / 5000 validation / 10000 test, 3 x 32 x 32, 10 classes) with a BadNet
poisoning of 1%: compute per step does not depend on pixel values. Accuracies are meaningless here.

``--smoke`` shrinks every size (and uses the small CPU model) so that the script checks itself on a
CPU in a minute or two; its numbers say nothing about a GPU. The last line is the sweep extrapolation against its target.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from unlearnkit.data import DataConfig, DatasetInfo, DataSplits, ImageSet
from unlearnkit.data.torchvision_sets import CIFAR10_CLASSES
from unlearnkit.device import bf16_supported, pick_device
from unlearnkit.experiment import ExperimentConfig, TrainedOriginal
from unlearnkit.manipulations import build_manipulation, forget_sets
from unlearnkit.models import build_model
from unlearnkit.training import TrainConfig, train
from unlearnkit.unlearning import Budget, unlearn_and_evaluate

RANDOM_CIFAR10 = DatasetInfo("cifar10-shaped-random", 10, CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465),
                             (0.2470, 0.2435, 0.2616), hflip=True, crop_padding=4)
PAPER_TRAINING_SECONDS = 49.9 * 60
SWEEP_ORIGINALS = 2 * 3
SWEEP_CELLS = 2 * 10 * 3
"""(manipulation, alpha, seed) combinations of the figure; each runs every method once per grid point."""


@dataclass(frozen=True)
class Sizes:
    train: int = 45000
    val: int = 5000
    test: int = 10000
    steps: int = 4000
    batch_size: int = 512
    unlearn_steps: int = 1000


SMOKE = Sizes(train=600, val=100, test=200, steps=8, batch_size=32, unlearn_steps=3)


def random_splits(sizes: Sizes, device: torch.device, seed: int = 0) -> DataSplits:
    generator = torch.Generator().manual_seed(seed)

    def images(n: int) -> ImageSet:
        pixels = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
        return ImageSet(pixels, torch.randint(0, 10, (n,), generator=generator))

    return DataSplits(RANDOM_CIFAR10, images(sizes.train), images(sizes.val), images(sizes.test)).to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_training(splits: DataSplits, model_name: str, recipe: TrainConfig, device: torch.device,
                   compile_model: bool, warmup_steps: int, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """Train on the poisoned training set; wall seconds from the first step to the last.

    ``warmup_steps`` first train the same (compiled) model untimed: cuDNN autotuning, the allocator
    and ``torch.compile``'s compilation stay out of the timing. Pixel values are random, so the
    weights the warm-up leaves change nothing about the speed.
    """
    manipulated = build_manipulation({"name": "badnet", "fraction": 0.01}).apply(splits)
    model = build_model(model_name, 10, 3, seed).to(device)
    net = torch.compile(model) if compile_model else model
    train(net, manipulated.train, splits.info, replace(recipe, steps=warmup_steps), progress=False)
    synchronize(device)
    started = time.perf_counter()
    train(net, manipulated.train, splits.info, recipe, progress=False)
    synchronize(device)
    return model, time.perf_counter() - started


def as_original(model: torch.nn.Module, model_name: str, splits: DataSplits, recipe: TrainConfig) -> TrainedOriginal:
    config = ExperimentConfig(data=DataConfig(name="cifar10"), manipulation={"name": "badnet", "fraction": 0.01},
                              model=model_name, train=recipe)
    manipulated = build_manipulation(config.manipulation).apply(splits)
    return TrainedOriginal(config, splits, manipulated, model.eval(), history=None, metrics={},
                           directory=Path(tempfile.gettempdir()), cache_hit=False)


def timed_methods(original: TrainedOriginal, sizes: Sizes, device: torch.device) -> dict[str, float]:
    """Wall seconds of one run of each method at alpha = 0.5, evaluation and selection score included."""
    forget = forget_sets(original.manipulated.manipulated, [0.5], seed=0)[0.5]
    budget = Budget(steps=sizes.unlearn_steps)
    runs = [("rewod", {}, None), ("cf", {}, budget), ("scrub", {"alpha": 0.1}, budget), ("badt", {}, budget),
            ("ssd", {"selection_weighting": 10.0, "dampening": 10.0}, None),
            ("ssd_reusing_importances", {"selection_weighting": 100.0, "dampening": 100.0}, None)]
    seconds = {}
    for label, params, given in runs:
        synchronize(device)
        started = time.perf_counter()
        unlearn_and_evaluate(original, label.split("_")[0], params, 0.5, forget, given, seed=0)
        synchronize(device)
        seconds[label] = time.perf_counter() - started
    return seconds


def _shared_fine_tuning(sizes: Sizes, model_name: str, device_name: str, seed: int, start, seconds) -> None:
    device = torch.device(device_name)
    splits = random_splits(sizes, device, seed)
    recipe = TrainConfig(steps=sizes.unlearn_steps, batch_size=sizes.batch_size, log_every=10**9)
    data = build_manipulation({"name": "badnet", "fraction": 0.01}).apply(splits).train
    model = build_model(model_name, 10, 3, seed).to(device)
    train(model, data, splits.info, replace(recipe, steps=2), progress=False)  # kernels, allocator
    start.wait()
    synchronize(device)
    started = time.perf_counter()
    train(model, data, splits.info, recipe, progress=False)
    synchronize(device)
    seconds.put(time.perf_counter() - started)


def sharing_gain(sizes: Sizes, model_name: str, device: torch.device, copies: int) -> tuple[float, float, float]:
    """``(seconds alone, seconds of the slowest of K at once, throughput gain)`` of a fine-tuning run."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    slowest = []
    for count in (1, copies):
        start, seconds = context.Barrier(count), context.Queue()
        workers = [context.Process(target=_shared_fine_tuning, args=(sizes, model_name, str(device), i, start, seconds))
                   for i in range(count)]
        for worker in workers:
            worker.start()
        slowest.append(max(seconds.get() for _ in workers))
        for worker in workers:
            worker.join()
    alone, together = slowest
    return alone, together, copies * alone / together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: CUDA when available")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (and small-cnn): check the script on a CPU")
    parser.add_argument("--model", default=None, help="default: resnet9 (the recipe's); small-cnn with --smoke")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the model of the recipe training (default: on CUDA only)")
    parser.add_argument("--share", type=int, default=None, help="runs sharing the device at once (1: skip; default 4, 2 with --smoke)")
    parser.add_argument("--baseline-steps", type=int, default=300, help="fp32 NCHW steps timed for the baseline")
    args = parser.parse_args()

    device = pick_device(args.device)
    compile_model = device.type == "cuda" if args.compile is None else args.compile
    sizes = SMOKE if args.smoke else Sizes()
    model_name = args.model or ("small-cnn" if args.smoke else "resnet9")
    share = args.share or (2 if args.smoke else 4)
    baseline_steps = min(args.baseline_steps, sizes.steps)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device={device} ({name}) torch={torch.__version__} bf16={bf16_supported(device)} compile={compile_model} "
          f"model={model_name}")
    print(f"data=random uint8 images of CIFAR-10's shape, not CIFAR-10: {sizes.train} train / {sizes.val} val / "
          f"{sizes.test} test, 3x32x32, BadNet 1%" + ("  [SMOKE SIZES: numbers say nothing about a GPU]" if args.smoke
                                                       else ""))
    splits = random_splits(sizes, device)
    recipe = TrainConfig(steps=sizes.steps, batch_size=sizes.batch_size, log_every=10**9)

    model, seconds = timed_training(splits, model_name, recipe, device, compile_model, min(20, sizes.steps))
    images_per_second = sizes.steps * sizes.batch_size / seconds
    plain = replace(recipe, steps=baseline_steps, bf16=False, channels_last=False)
    _, baseline = timed_training(splits, model_name, plain, device, False, min(10, baseline_steps))
    baseline_full = baseline * sizes.steps / baseline_steps
    print(f"training: {seconds:.1f} s for {sizes.steps} steps x {sizes.batch_size} ({images_per_second:.0f} img/s); "
          f"target <= 30 s; the paper on an RTX 2080: {PAPER_TRAINING_SECONDS:.0f} s")
    print(f"baseline fp32 NCHW: {baseline_full:.1f} s (timed on {baseline_steps} steps); "
          f"speedup_vs_baseline={baseline_full / seconds:.2f}")

    runs = timed_methods(as_original(model, model_name, splits, recipe), sizes, device)
    print("one run each (s): " + ", ".join(f"{label} {value:.2f}" for label, value in runs.items()))

    per_cell = (runs["rewod"] + runs["cf"] + 8 * runs["scrub"] + runs["badt"] + runs["ssd"]
                + 49 * runs["ssd_reusing_importances"])
    sequential = SWEEP_ORIGINALS * seconds + SWEEP_CELLS * per_cell
    gain = 1.0
    if share > 1:
        alone, together, gain = sharing_gain(sizes, model_name, device, share)
        print(f"sharing: one {sizes.unlearn_steps}-step fine-tuning {alone:.1f} s alone, {share} at once "
              f"{together:.1f} s: throughput gain {gain:.2f}x")
    print(f"sweep: {SWEEP_ORIGINALS} trainings + {SWEEP_CELLS} x (RewoD + CF + 8 SCRUB + BadT + 50 SSD) = "
          f"{sequential / 3600:.2f} h one run at a time")
    hours = sequential / gain / 3600
    print(f"sweep_hours={hours:.2f} with {share} runs per device; target_hours=2 ratio_to_target={hours / 2:.2f}")


if __name__ == "__main__":
    main()
