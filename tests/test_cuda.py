"""The GPU paths: training and every unlearning method on CUDA (skipped where there is no GPU)."""

import pytest
import torch

from unlearnkit.experiment import ExperimentConfig, train_original
from unlearnkit.manipulations import forget_sets
from unlearnkit.metrics import evaluate
from unlearnkit.store import ArtifactStore
from unlearnkit.unlearning import METHODS, Budget, make_task, unlearn

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CONFIG = ExperimentConfig.from_mapping({
    "data": {"name": "mnist", "train_subset": 8000, "test_subset": 2000, "val_size": 500},
    "manipulation": {"name": "badnet", "count": 150},
    "model": "resnet9",
    "train": {"steps": 200, "batch_size": 256, "lr": 0.05, "warmup_fraction": 0.05},
})


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return train_original(CONFIG, ArtifactStore(tmp_path_factory.mktemp("cuda"), "cuda"), device="cuda",
                          progress=False)


def test_training_on_cuda_learns_task_and_backdoor(original):
    assert next(original.model.parameters()).is_cuda
    assert original.splits.train.images.is_cuda
    assert original.metrics["acc_clean"] > 0.95 and original.metrics["asr"] > 0.9, original.metrics


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs_on_cuda(original, method):
    forget = forget_sets(original.manipulated.manipulated, [0.5], seed=0)[0.5]
    task = make_task(original, forget)
    budget = Budget(steps=60 if method == "rewod" else 20)
    result = unlearn(method, task, budget=budget, seed=0)
    assert next(result.model.parameters()).is_cuda
    metrics = evaluate(result.model, original.splits, original.manipulated, forget=forget)
    assert all(0.0 <= metrics[key] <= 1.0 for key in ("acc_corr", "acc_retain", "asr")), metrics


def test_audits_on_cuda_match_the_cpu(original):
    """GUS and the MIA of a model on the GPU equal those of its CPU copy (Gaussian poisons on GPU data)."""
    import copy

    from unlearnkit.audits import audit_model
    from unlearnkit.manipulations import GaussianPoisoning

    splits = original.splits
    manipulated = GaussianPoisoning(eps=0.3, count=300).apply(splits)
    assert manipulated.noise.is_cuda
    on_gpu = audit_model(original.model, splits, manipulated)
    on_cpu = audit_model(copy.deepcopy(original.model).cpu(), splits.to("cpu"),
                         GaussianPoisoning(eps=0.3, count=300).apply(splits.to("cpu")))
    assert torch.allclose(on_gpu.gus.scores, on_cpu.gus.scores, atol=1e-3)
    assert on_gpu.row() == pytest.approx(on_cpu.row(), abs=1e-3)
