"""The encoding service: ImageEncoder (cache lookup, ViT, page-release policy, layout) and ImageState (lazy necks,
computed once, also under concurrent use)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
from sam3kit.model.sam3 import Sam3Model
from sam3kit.pipelines import encoding
from sam3kit.pipelines.cache import EncodingCache
from sam3kit.pipelines.coords import ImageTransform
from sam3kit.pipelines.encoding import EncoderOptions, ImageEncoder, ImageState
from sam3kit.pipelines.preprocess import preprocess

from fixtures.weights import randomize_


@pytest.fixture(scope="module")
def model():
    return randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=21)


def _img(seed, h=40, w=60):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class _Calls:
    """Counts forward calls of a module while in use."""

    def __init__(self, module):
        self.n = 0
        self._h = module.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.n += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._h.remove()


def test_encode_returns_a_state(model):
    enc = ImageEncoder(model)
    state = enc.encode(_img(0, 40, 60))
    S, g, C = model.config.image_size, model.config.detector.vit.grid_size, model.config.detector.vit.hidden_size
    assert isinstance(state, ImageState) and len(state) == 1
    assert state.sizes == [(40, 60)]
    assert state.transforms == (ImageTransform(height=40, width=60, size=S),)
    assert state.trunk.shape == (1, C, g, g) and state.trunk.is_contiguous(memory_format=torch.channels_last)
    assert not state.has_detector_features and not state.has_tracker_features
    assert "images=1" in repr(state)
    with torch.inference_mode():  # the trunk is the ViT of the preprocessed image
        ref = model.image_trunk(preprocess([_img(0, 40, 60)], S, device=model.device, dtype=model.dtype))
    assert torch.equal(state.trunk, ref)


def test_disabled_cache_does_not_hash(model, monkeypatch):
    """A cache that keeps nothing (a video session's) makes the encoder skip the per-image hash, and the encoding
    is the same as with a cache."""
    cache = EncodingCache(max_items=0)
    assert not cache.enabled and EncodingCache().enabled and EncodingCache(max_items=0, directory="x").enabled
    hashed = []
    real = encoding.cache_key
    monkeypatch.setattr(encoding, "cache_key", lambda *a, **k: hashed.append(1) or real(*a, **k))
    state = ImageEncoder(model, cache).encode(_img(3))
    assert hashed == [] and (cache.hits, cache.misses) == (0, 0)
    ref = ImageEncoder(model, EncodingCache()).encode(_img(3))
    assert hashed == [1] and torch.equal(state.trunk, ref.trunk)


def test_cache_hit_and_miss(model):
    cache = EncodingCache()
    enc = ImageEncoder(model, cache)
    with _Calls(model.image_trunk_module()) as vit:
        a = enc.encode(_img(1))
        assert (cache.hits, cache.misses, vit.n) == (0, 1, 1)
        b = enc.encode(_img(1))
        assert (cache.hits, cache.misses, vit.n) == (1, 1, 1)
        assert torch.equal(a.trunk, b.trunk) and a is not b  # a new state: its necks are its own
        batch = enc.encode_batch([_img(2, 30, 20), _img(1)])  # one miss, one hit: the ViT runs on the miss only
        assert (cache.hits, cache.misses, vit.n) == (2, 2, 2)
    assert batch.sizes == [(30, 20), (40, 60)] and torch.equal(batch.trunk[1:], a.trunk)
    assert batch.trunk.is_contiguous(memory_format=torch.channels_last)
    # a decoded array and a PIL image of the same pixels share the entry
    from PIL import Image

    ImageEncoder(model, cache).encode(Image.fromarray(_img(1)))
    assert cache.hits == 3


def test_necks_run_on_first_use_and_once(model):
    state = ImageEncoder(model).encode(_img(3))
    with _Calls(model.detector_model.vision_encoder.neck) as det, _Calls(model.tracker_neck) as trk:
        d1 = state.detector_features()
        assert (det.n, trk.n) == (1, 0) and state.has_detector_features and not state.has_tracker_features
        assert state.detector_features() is d1
        t1 = state.tracker_features()
        assert state.tracker_features() is t1
        assert (det.n, trk.n) == (1, 1)
    assert d1.encoder_start is not None and d1.seg_terms is not None  # the prompt-independent terms, once
    with torch.inference_mode():
        ref = model.detector_features(state.trunk)
        ref_t = model.tracker_features(state.trunk)
    for a, b in zip(d1.fpn + [d1.encoder_start] + d1.seg_terms, ref.fpn + [ref.encoder_start] + ref.seg_terms):
        assert torch.equal(a, b)
    assert torch.equal(t1.embed, ref_t.embed)


def test_concurrent_first_use_computes_once(model):
    state = ImageEncoder(model).encode(_img(4))
    n = 4
    barrier, got = threading.Barrier(n), []
    with _Calls(model.detector_model.vision_encoder.neck) as det:
        def ask():
            barrier.wait()
            got.append(state.detector_features())

        threads = [threading.Thread(target=ask) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert det.n == 1 and len(got) == n and all(g is got[0] for g in got)


def test_one_encoder_serves_threads(model):
    """A server's pattern: one encoder (one cache) used by several threads; each gets the encoding it asked for."""
    enc = ImageEncoder(model, EncodingCache(max_items=3))
    seeds = [5, 6, 5, 7, 6, 5]
    ref = {s: ImageEncoder(model, EncodingCache(max_items=0)).encode(_img(s)).trunk for s in set(seeds)}
    out, errors = {}, []

    def work(i, s):
        try:
            out[i] = enc.encode(_img(s)).trunk
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(seeds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, s in enumerate(seeds):
        torch.testing.assert_close(out[i], ref[s], rtol=0, atol=1e-6)
    assert enc.cache.hits + enc.cache.misses == len(seeds)


def test_page_release_policy(model, monkeypatch):
    released = []
    monkeypatch.setattr(encoding, "release_mapped", lambda params: released.append(list(params)) or 0)
    vit_params = list(model.image_trunk_module().parameters())
    enc = ImageEncoder(model)
    enc.encode(_img(8))
    assert len(released) == 1 and len(released[0]) == len(vit_params)
    assert all(a is b for a, b in zip(released[0], vit_params))
    enc.encode(_img(8))  # a cache hit runs no ViT: nothing to release
    assert len(released) == 1
    ImageEncoder(model, options=EncoderOptions(release_encoder_weights=False)).encode(_img(9))
    assert len(released) == 1


def test_detector_only_state(model):
    m = randomize_(Sam3Model(Sam3Config.tiny(with_tracker=False)).eval(), seed=3)
    state = ImageEncoder(m).encode(_img(0))
    state.detector_features()
    with pytest.raises(InputError, match="detector-only"):
        state.tracker_features()


def test_bad_arguments(model):
    enc = ImageEncoder(model)
    with pytest.raises(InputError, match="encode_batch"):
        enc.encode([_img(0)])
    with pytest.raises(InputError, match="use encode"):
        enc.encode_batch(_img(0))
    with pytest.raises(InputError, match="empty list"):
        enc.encode_batch([])
    with pytest.raises(InputError, match="no images"):
        enc.encode_arrays([])
    with pytest.raises(InputError, match="EncoderOptions"):
        ImageEncoder(model, options={"release_encoder_weights": False})
    with pytest.raises(sam3kit.ImageError):
        enc.encode(np.zeros((4, 4, 2), dtype=np.uint8))


def test_model_declares_tokenizer_and_fingerprint():
    a, b = Sam3Model(Sam3Config.tiny()), Sam3Model(Sam3Config.tiny())
    assert a.tokenizer is None
    assert a.fingerprint.startswith("mem-") and a.fingerprint != b.fingerprint
    cache = EncodingCache()
    ImageEncoder(a, cache).encode(_img(0))
    assert a.fingerprint.startswith("mem-")  # encoding reads the fingerprint, never sets it
