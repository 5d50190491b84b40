"""Training throughput: the unlearnkit trainer against the plain PyTorch way, in one run.

Baseline: the same model, optimiser and batch size fed by a torchvision-transforms pipeline
(PIL RandomCrop + ToTensor + Normalize) through a shuffling ``DataLoader``, fp32, contiguous
memory. unlearnkit: the device-resident uint8 dataset with batched on-device augmentation,
bf16 autocast where the device supports it, channels_last.

Prints images/second for both and, as the last line, ``speedup_vs_baseline=<x>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from unlearnkit.data import DataConfig, load_data
from unlearnkit.data.pipeline import TrainingSet
from unlearnkit.device import bf16_supported, pick_device
from unlearnkit.models import build_model
from unlearnkit.training import TrainConfig, train


class PlainImageDataset(Dataset):
    """How a typical script serves images: one PIL image per item through torchvision transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.squeeze(1).numpy() if images.shape[1] == 1 else images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item):
        return self.transform(Image.fromarray(self.images[item])), int(self.labels[item])


def baseline_images_per_second(model, splits, batch_size, steps, warmup, device, workers) -> float:
    info = splits.info
    size = splits.train.images.shape[-1]
    steps_list = [transforms.RandomCrop(size, padding=info.crop_padding)]
    if info.hflip:
        steps_list.append(transforms.RandomHorizontalFlip())
    transform = transforms.Compose([*steps_list, transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])
    dataset = PlainImageDataset(splits.train.images.cpu(), splits.train.labels.cpu(), transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    done, start = 0, None
    while done < warmup + steps:
        for inputs, labels in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == warmup + steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def unlearnkit_images_per_second(model, splits, batch_size, steps, warmup, device) -> float:
    data = TrainingSet(splits.train.images, splits.train.labels, torch.arange(len(splits.train), device=device))
    config = TrainConfig(steps=warmup, batch_size=batch_size, lr=0.01, log_every=10**9)
    train(model, data, splits.info, config, progress=False)  # warm-up: kernels, allocator, autotuning
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=0.01, log_every=10**9)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(model, data, splits.info, config, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small-cnn", help="registered model (default: the CPU default model)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--root", default=None, help="data root for torchvision datasets")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    device = pick_device(args.device)
    torch.manual_seed(0)
    np.random.seed(0)
    splits = load_data(DataConfig(name=args.dataset, root=args.root, val_size=0), device)
    info = splits.info
    print(f"device={device} bf16={bf16_supported(device)} threads={torch.get_num_threads()} model={args.model} "
          f"dataset={args.dataset} batch_size={args.batch_size} steps={args.steps}")
    baseline_model = build_model(args.model, info.num_classes, info.in_channels, seed=0).to(device)
    baseline = baseline_images_per_second(baseline_model, splits, args.batch_size, args.steps, args.warmup,
                                          device, args.workers)
    print(f"baseline_images_per_second={baseline:.1f}")
    ours_model = build_model(args.model, info.num_classes, info.in_channels, seed=0).to(device)
    ours = unlearnkit_images_per_second(ours_model, splits, args.batch_size, args.steps, args.warmup, device)
    print(f"unlearnkit_images_per_second={ours:.1f}")
    print(f"speedup_vs_baseline={ours / baseline:.2f}")


if __name__ == "__main__":
    main()
