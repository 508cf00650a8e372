"""train/augment.py: random crop with padding, horizontal flip, per-channel normalisation,
and the per-epoch random plan (checked against plain per-image loops)."""
import numpy as np
import pytest

from train.augment import CIFAR10_MEAN, CIFAR10_STD, PAD, EpochPlan, crop_and_flip, normalize, training_batch


def reference_crop_and_flip(images, row, col, flip):
    """One image at a time: pad with zeros, slice the window, mirror if asked."""
    n, _, h, w = images.shape
    out = np.empty_like(images)
    for i in range(n):
        padded = np.pad(images[i], ((0, 0), (PAD, PAD), (PAD, PAD)))
        window = padded[:, row[i]:row[i] + h, col[i]:col[i] + w]
        out[i] = window[:, :, ::-1] if flip[i] else window
    return out


@pytest.fixture
def images(rng):
    return rng.integers(1, 256, (12, 3, 32, 32), dtype=np.uint8)  # no zeros: padding shows as 0


def test_crop_and_flip_matches_a_per_image_loop(images, rng):
    n = len(images)
    row, col = rng.integers(0, 2 * PAD + 1, n), rng.integers(0, 2 * PAD + 1, n)
    flip = rng.random(n) < 0.5
    out = crop_and_flip(images, row, col, flip)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, reference_crop_and_flip(images, row, col, flip))


def test_centre_crop_is_identity_and_flip_mirrors(images):
    n = len(images)
    centre = np.full(n, PAD)
    np.testing.assert_array_equal(crop_and_flip(images, centre, centre, np.zeros(n, bool)), images)
    np.testing.assert_array_equal(crop_and_flip(images, centre, centre, np.ones(n, bool)), images[..., ::-1])


def test_extreme_offsets_bring_in_zero_padding(images):
    n = len(images)
    zeros, far, no = np.zeros(n, int), np.full(n, 2 * PAD), np.zeros(n, bool)
    top_left = crop_and_flip(images, zeros, zeros, no)  # the window starts 4 pixels above and left
    assert (top_left[:, :, :PAD, :] == 0).all() and (top_left[:, :, :, :PAD] == 0).all()
    np.testing.assert_array_equal(top_left[:, :, PAD:, PAD:], images[:, :, :-PAD, :-PAD])
    bottom_right = crop_and_flip(images, far, far, no)
    assert (bottom_right[:, :, -PAD:, :] == 0).all()
    np.testing.assert_array_equal(bottom_right[:, :, :-PAD, :-PAD], images[:, :, PAD:, PAD:])


def test_normalize_per_channel():
    images = np.empty((2, 3, 4, 4), np.uint8)
    values = [[0, 128, 255], [51, 10, 200]]
    for n in range(2):
        for c in range(3):
            images[n, c] = values[n][c]
    out = normalize(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    for n in range(2):
        for c in range(3):
            expected = (values[n][c] / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c]
            np.testing.assert_allclose(out[n, c], expected, rtol=1e-5, atol=1e-6)
    assert images[0, 0, 0, 0] == 0  # the input is not modified


def test_epoch_plan_ranges_and_determinism():
    plan = EpochPlan.draw(seed=7, epoch=3, n=1000)
    np.testing.assert_array_equal(np.sort(plan.order), np.arange(1000))
    for offsets in (plan.row, plan.col):
        assert offsets.min() == 0 and offsets.max() == 2 * PAD  # every offset in range, both ends used
    assert plan.flip.dtype == bool and 400 < plan.flip.sum() < 600
    again = EpochPlan.draw(seed=7, epoch=3, n=1000)
    for a, b in zip(plan, again):
        np.testing.assert_array_equal(a, b)
    other_epoch, other_seed = EpochPlan.draw(7, 4, 1000), EpochPlan.draw(8, 3, 1000)
    assert not np.array_equal(plan.order, other_epoch.order)
    assert not np.array_equal(plan.order, other_seed.order)


def test_training_batch_follows_the_plan(images):
    plan = EpochPlan.draw(seed=1, epoch=0, n=len(images))
    index, batch = training_batch(images, plan, 4, 9)
    np.testing.assert_array_equal(index, plan.order[4:9])
    expected = normalize(reference_crop_and_flip(images[plan.order[4:9]], plan.row[4:9], plan.col[4:9],
                                                 plan.flip[4:9]))
    assert batch.shape == (5, 3, 32, 32) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, expected)
    _, last = training_batch(images, plan, 8, 16)  # past the end: the last, smaller batch
    assert last.shape == (4, 3, 32, 32)
