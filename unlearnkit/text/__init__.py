"""Language models: text data, trigger-phrase and embedding-noise attacks, ``transformers`` classifiers,
fine-tuning, unlearning through the method registry, and the text-side audits (GUS on embeddings, MIA).

Needs ``transformers`` (the ``notebooks`` or ``language`` extra); IMDb through the hub needs ``datasets``.
"""

from .assets import ASSETS, AssetNotFoundError, WheelAsset, fetch, locate
from .datasets import TEXT_DATASETS, TextDataConfig, TextInfo, TextSet, TextSplits, load_text_data
from .experiment import (
    LanguageExperimentConfig,
    TextData,
    TrainedLanguageOriginal,
    prepare_text,
    train_language_original,
)
from .manipulations import TEXT_MANIPULATIONS, EmbeddingNoise, TextManipulated, build_text_manipulation, insert_trigger
from .metrics import TextAudits, text_audits, text_metrics
from .models import LANGUAGE_MODELS, SequenceClassifier, build_classifier
from .pipeline import TokenBatch, TokenSet, encode, predict_token_logits
from .runner import make_text_task, text_unlearn_and_evaluate, text_unlearning_run
from .training import TextTrainConfig
