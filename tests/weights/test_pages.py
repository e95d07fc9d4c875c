"""Releasing the resident pages of memory-mapped weights: values survive, written or in-memory tensors are kept."""

import sys

import numpy as np
import pytest
import torch

import sam3kit
from sam3kit.weights.pages import release_mapped

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise / pagemap are Linux-only")


def _resident_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile"):
            return int(line.split()[1])
    return 0


def test_release_keeps_values_and_gives_pages_back(tiny_checkpoint):
    model = sam3kit.load(tiny_checkpoint)
    vit = model.image_trunk_module()
    params = list(vit.parameters())
    before = [p.clone() for p in params]
    x = torch.rand(1, 3, model.config.image_size, model.config.image_size)
    with torch.inference_mode():
        first = vit(x)
    released = release_mapped(params)
    assert released > 0
    with torch.inference_mode():
        again = vit(x)  # pages come back from the page cache
    assert torch.equal(first, again)
    assert all(torch.equal(a, b) for a, b in zip(before, params))


def test_written_and_in_memory_tensors_are_not_released(tiny_checkpoint):
    model = sam3kit.load(tiny_checkpoint)
    big = max(model.parameters(), key=lambda p: p.numel())
    with torch.no_grad():
        big.add_(1.0)  # a private copy of its pages now exists
    edited = big.clone()
    assert release_mapped([big]) == 0
    assert torch.equal(big, edited)
    assert release_mapped([torch.randn(1 << 16)]) == 0  # anonymous memory


def test_predictor_releases_the_encoder_after_set_image(tiny_checkpoint, tmp_path):
    model = sam3kit.load(tiny_checkpoint)
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    keep = sam3kit.ImagePredictor(model, encoder_options=sam3kit.EncoderOptions(release_encoder_weights=False))
    keep.set_image(image)
    ref = keep.segment(text="a dog", threshold=0.0)
    pred = sam3kit.ImagePredictor(model)
    pred.set_image(np.ascontiguousarray(image[:, ::-1]))  # another image: the ViT runs, then its pages go
    pred.set_image(image)
    got = pred.segment(text="a dog", threshold=0.0)
    assert np.array_equal(got.masks, ref.masks) and np.allclose(got.scores, ref.scores, atol=1e-6)


def test_encoder_releases_the_vit_pages_and_only_with_the_policy(tiny_checkpoint):
    """After an encoding the ViT's file-backed pages are given back (a second release finds none resident);
    with ``release_encoder_weights=False`` they stay resident."""
    model = sam3kit.load(tiny_checkpoint)
    params = list(model.image_trunk_module().parameters())
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    sam3kit.ImageEncoder(model, options=sam3kit.EncoderOptions(release_encoder_weights=False)).encode(image)
    assert release_mapped(params) > 0  # the ViT had touched its pages and nothing gave them back
    sam3kit.ImageEncoder(model).encode(image[::-1].copy())
    assert release_mapped(params) == 0  # the encoder gave them back already
