import torch

from unlearnkit.data import DataConfig, ImageSet, carve_validation, load_data
from unlearnkit.data.pipeline import TrainingSet, batch_stream, predict_logits, random_crop, random_flip, sample_batches


def test_random_crop_takes_a_window_of_the_padded_image():
    images = torch.randint(1, 255, (64, 3, 8, 8), dtype=torch.uint8)
    cropped = random_crop(images, 2, torch.Generator().manual_seed(0))
    assert cropped.shape == images.shape and cropped.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    offsets = set()
    for i in range(64):
        matches = [(top, left) for top in range(5) for left in range(5)
                   if torch.equal(padded[i, :, top:top + 8, left:left + 8], cropped[i])]
        assert matches, f"sample {i} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 5  # offsets really vary per sample


def test_random_flip_flips_about_half_and_keeps_the_rest():
    images = torch.randint(0, 255, (400, 1, 5, 5), dtype=torch.uint8)
    flipped = random_flip(images, torch.Generator().manual_seed(1))
    same = (flipped == images).flatten(1).all(1)
    mirrored = (flipped == images.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert 150 < mirrored.sum() < 250


def test_sample_batches_cover_each_epoch_without_repeats():
    batches = list(sample_batches(10, 3, 6, torch.Generator().manual_seed(0), torch.device("cpu")))
    assert len(batches) == 6 and all(len(b) == 3 for b in batches)
    for epoch in (batches[:3], batches[3:]):
        flat = torch.cat(epoch)
        assert len(flat.unique()) == 9


def test_batch_stream_is_seeded(tiny_splits):
    data = TrainingSet(tiny_splits.train.images, tiny_splits.train.labels, torch.arange(200))

    def run(seed):
        return list(batch_stream(data, tiny_splits.info, 32, 3, torch.Generator().manual_seed(seed)))

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(first, again))
    assert not torch.equal(first[0][2], other[0][2])
    inputs, labels, index = first[0]
    assert inputs.dtype == torch.float32 and inputs.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(labels, tiny_splits.train.labels[index])


def test_training_set_without_and_only_use_sample_index(tiny_splits):
    data = TrainingSet(tiny_splits.train.images, tiny_splits.train.labels, torch.arange(200))
    retain = data.without(torch.tensor([3, 7, 150]))
    assert len(retain) == 197 and not torch.isin(retain.index, torch.tensor([3, 7, 150])).any()
    nested = retain.without(torch.tensor([4]))
    assert 4 not in nested.index.tolist() and len(nested) == 196
    forget = data.only(torch.tensor([7, 3]))
    assert forget.index.tolist() == [3, 7] and torch.equal(forget.images, tiny_splits.train.images[[3, 7]])


def test_predictions_follow_input_order(tiny_splits):
    class FirstPixel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x[:, 0, 0, :4] * self.scale

    logits = predict_logits(FirstPixel(), tiny_splits.test, tiny_splits.info, batch_size=7)
    expected = (tiny_splits.test.images[:, 0, 0, :4].float() / 255 - 0.5) / 0.25
    assert torch.allclose(logits, expected)


def test_validation_split_is_deterministic_disjoint_and_keeps_ids():
    images = ImageSet(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.arange(100) % 10)
    train, val = carve_validation(images, 20, seed=5)
    train_again, val_again = carve_validation(images, 20, seed=5)
    assert torch.equal(val.ids, val_again.ids) and len(val) == 20 and len(train) == 80
    assert not torch.isin(train.ids, val.ids).any()
    assert torch.equal(torch.cat([train.ids, val.ids]).sort().values, torch.arange(100))


def test_embedded_mnist_is_full_and_subsets_are_seeded():
    full = load_data(DataConfig(name="mnist", val_size=5000))
    assert len(full.train) + len(full.val) == 60000 and len(full.test) == 10000
    assert full.train.images.shape[1:] == (1, 28, 28) and full.train.images.dtype == torch.uint8
    assert torch.bincount(full.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    small = load_data(DataConfig(name="mnist", train_subset=1000, test_subset=300, val_size=100, seed=3))
    again = load_data(DataConfig(name="mnist", train_subset=1000, test_subset=300, val_size=100, seed=3))
    assert (len(small.train), len(small.val), len(small.test)) == (900, 100, 300)
    assert torch.equal(small.val.ids, again.val.ids) and torch.equal(small.train.images, again.train.images)
    assert torch.equal(small.train.images[0], full_train_image(full, small.train.ids[0]))


def full_train_image(full, sample_id):
    """The image of ``sample_id`` of the complete training set, from either of its splits."""
    for part in (full.train, full.val):
        hit = (part.ids == sample_id).nonzero().flatten()
        if len(hit):
            return part.images[hit[0]]
    raise AssertionError(sample_id)
