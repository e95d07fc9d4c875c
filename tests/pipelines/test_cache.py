"""The image-encoding cache: a second request for the same image does not run the encoder again; one cache serves
several threads; ``~`` in its directory is the home folder."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
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
        self.handle = module.register_forward_hook(self)

    def __call__(self, *args):
        self.calls += 1


@pytest.fixture
def vit_calls(model):
    counter = _Counter(model.image_trunk_module())
    yield counter
    counter.handle.remove()


def _img(seed, h=40, w=60):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_second_request_uses_the_cache(model, vit_calls):
    p = ImagePredictor(model)
    p.set_image(_img(0))
    first = p.state.trunk.clone()
    p.set_image(_img(1))
    p.set_image(_img(0))
    assert vit_calls.calls == 2
    assert torch.equal(p.state.trunk, first)
    # a second predictor sharing the cache does not encode either
    shared = p.cache
    q = ImagePredictor(model, cache=shared)
    q.set_images([_img(1), _img(0)])
    assert vit_calls.calls == 2
    q.set_images([_img(2), _img(0)])  # only the new image is encoded
    assert vit_calls.calls == 3


def test_lru_bound(model):
    cache = EncodingCache(max_items=2)
    p = ImagePredictor(model, cache=cache)
    for s in range(4):
        p.set_image(_img(s))
    assert len(cache) == 2


def test_disk_cache_survives_and_rejects_bad_entries(model, vit_calls, tmp_path, caplog):
    p = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p.set_image(_img(7))
    ref = p.state.trunk.clone()
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and vit_calls.calls == 1
    # a fresh process-like cache (empty memory) reads the disk entry
    p2 = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p2.set_image(_img(7))
    assert vit_calls.calls == 1 and torch.equal(p2.state.trunk, ref)
    # stored channels-first, restored to the layout the ViT returns (the necks' fast layout)
    for pred in (p, p2):
        assert pred.state.trunk.is_contiguous(memory_format=torch.channels_last)
    # truncated entry: ignored, recomputed, rewritten
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    p3 = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p3.set_image(_img(7))
    assert vit_calls.calls == 2 and torch.equal(p3.state.trunk, ref)
    assert "ignoring unusable cache entry" in caplog.text
    # garbage entry
    files[0].write_bytes(b"garbage")
    p4 = ImagePredictor(model, cache=EncodingCache(directory=tmp_path))
    p4.set_image(_img(7))
    assert vit_calls.calls == 3 and torch.equal(p4.state.trunk, ref)


def test_key_depends_on_model_and_dtype(model):
    other = randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=6)
    cache = EncodingCache()
    a, b = ImagePredictor(model, cache=cache), ImagePredictor(other, cache=cache)
    a.set_image(_img(0))
    b.set_image(_img(0))
    assert not torch.equal(a.state.trunk, b.state.trunk)
    assert cache.misses == 2


def test_directory_expands_the_home_folder(model, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = EncodingCache(directory="~/.cache/sam3kit")
    assert cache.directory == tmp_path / ".cache" / "sam3kit"
    ImagePredictor(model, cache=cache).set_image(_img(3))
    assert len(list((tmp_path / ".cache" / "sam3kit").glob("*.safetensors"))) == 1
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("bad", [-1, 1.5, "8"])
def test_bad_size_is_an_input_error(bad):
    with pytest.raises(InputError, match="max_items"):
        EncodingCache(max_items=bad)


def test_threads_share_one_cache(tmp_path):
    """Many threads hitting, missing and evicting at once: counters add up, the LRU stays bounded, every value
    read back is the one stored under its key."""
    cache = EncodingCache(max_items=4, directory=tmp_path)
    values = {f"k{i}": torch.full((1, 2, 3, 3), float(i)) for i in range(12)}
    errors, gets = [], 0
    n_threads, rounds = 8, 40
    barrier = threading.Barrier(n_threads)

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        barrier.wait()
        try:
            for _ in range(rounds):
                key = f"k{int(rng.integers(12))}"
                got = cache.get(key, device=torch.device("cpu"), dtype=torch.float32, shape=(1, 2, 3, 3))
                if got is None:
                    cache.put(key, values[key])
                elif not torch.equal(got, values[key]):
                    errors.append(f"{key}: read back another value")
        except Exception as e:  # noqa: BLE001 (reported below, with the thread's failure)
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gets = n_threads * rounds
    assert not errors, errors[:3]
    assert cache.hits + cache.misses == gets
    assert len(cache) <= 4
    assert cache.hits > 0  # the disk entries and the shared memory served some of them
    assert not list(tmp_path.glob(".tmp-*"))  # every write was renamed into place
