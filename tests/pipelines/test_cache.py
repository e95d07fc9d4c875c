"""The image-encoding cache: a second request for the same image does not run the encoder again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.pipelines.cache import EncodingCache
from sam3kit.pipelines.image import ImagePredictor

from fixtures.weights import randomize_


@pytest.fixture(scope="module")
def model():
    return randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=5)


class _Counter:
    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(self)

    def __call__(self, *args):
        self.calls += 1


def _img(seed, h=40, w=60):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_second_request_uses_the_cache(model):
    counter = _Counter(model.detector_model.vision_encoder.backbone)
    p = ImagePredictor(model)
    p.set_image(_img(0))
    first = p._trunk.clone()
    p.set_image(_img(1))
    p.set_image(_img(0))
    assert counter.calls == 2
    assert torch.equal(p._trunk, first)
    # a second predictor sharing the cache does not encode either
    shared = p.cache
    q = ImagePredictor(model, cache=shared)
    q.set_image([_img(1), _img(0)])
    assert counter.calls == 2
    q.set_image([_img(2), _img(0)])  # only the new image is encoded
    assert counter.calls == 3


def test_lru_bound(model):
    cache = EncodingCache(max_items=2)
    p = ImagePredictor(model, cache=cache)
    for s in range(4):
        p.set_image(_img(s))
    assert len(cache) == 2


def test_disk_cache_survives_and_rejects_bad_entries(model, tmp_path, caplog):
    counter = _Counter(model.detector_model.vision_encoder.backbone)
    p = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p.set_image(_img(7))
    ref = p._trunk.clone()
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and counter.calls == 1
    # a fresh process-like cache (empty memory) reads the disk entry
    p2 = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p2.set_image(_img(7))
    assert counter.calls == 1 and torch.equal(p2._trunk, ref)
    # stored channels-first, restored to the layout the ViT returns (the necks' fast layout)
    for pred in (p, p2):
        assert pred._trunk.is_contiguous(memory_format=torch.channels_last)
    # truncated entry: ignored, recomputed, rewritten
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    p3 = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p3.set_image(_img(7))
    assert counter.calls == 2 and torch.equal(p3._trunk, ref)
    assert "ignoring unusable cache entry" in caplog.text
    # garbage entry
    files[0].write_bytes(b"garbage")
    p4 = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p4.set_image(_img(7))
    assert counter.calls == 3 and torch.equal(p4._trunk, ref)


def test_key_depends_on_model_and_dtype(model):
    other = randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=6)
    cache = EncodingCache()
    a, b = ImagePredictor(model, cache=cache), ImagePredictor(other, cache=cache)
    a.set_image(_img(0))
    b.set_image(_img(0))
    assert not torch.equal(a._trunk, b._trunk)
    assert cache.misses == 2
