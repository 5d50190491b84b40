import json

import pytest
import torch

from unlearnkit.store import ArtifactStore, load_model_weights, load_tensors, save_model, save_tensors


def test_second_identical_build_is_a_cache_hit(tmp_path):
    store = ArtifactStore(tmp_path, "run")
    calls = []

    def build(directory):
        calls.append(directory)
        (directory / "value.txt").write_text("42")
        return {"note": "built"}

    first, hit_first = store.build("stage", {"a": 1}, build)
    second, hit_second = store.build("stage", {"a": 1}, build)
    other, hit_other = store.build("stage", {"a": 2}, build)
    assert (hit_first, hit_second, hit_other) == (False, True, False)
    assert first == second != other and len(calls) == 2
    assert (first / "value.txt").read_text() == "42"
    assert json.loads((first / "manifest.json").read_text())["note"] == "built"
    assert json.loads((first / "config.json").read_text()) == {"a": 1}
    forced, hit_forced = store.build("stage", {"a": 1}, build, force=True)
    assert forced == first and not hit_forced and len(calls) == 3


def test_interrupted_build_leaves_nothing_and_reruns(tmp_path):
    store = ArtifactStore(tmp_path, "run")

    def failing(directory):
        (directory / "partial.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.build("stage", {"a": 1}, failing)
    assert not store.is_complete("stage", {"a": 1})
    assert list((tmp_path / "run").iterdir()) == []
    directory, hit = store.build("stage", {"a": 1}, lambda d: None)
    assert not hit and store.is_complete("stage", {"a": 1})


def test_weights_round_trip_through_safetensors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    model.to(memory_format=torch.channels_last)
    save_model(tmp_path / "m.safetensors", model)
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    load_model_weights(tmp_path / "m.safetensors", fresh)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    save_tensors(tmp_path / "t.safetensors", {"x": torch.arange(5)})
    assert torch.equal(load_tensors(tmp_path / "t.safetensors")["x"], torch.arange(5))
    # the file is plain safetensors, not a pickle
    assert (tmp_path / "m.safetensors").read_bytes()[8:9] == b"{"
