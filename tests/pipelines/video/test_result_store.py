"""``ResultStore``: the batched store of a group's outputs (one host copy per tensor, the hot loop of tracking)
writes the same records as storing object by object, and ``combine`` gives the same frame result from the host
copies as from the device logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3kit.pipelines.video.results import ResultStore, boxes_from_masks


def _outputs(seed: int, n: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 30, 40, generator=g).to(dtype)
    logits[0] = -1.0  # one empty mask: its box is zeros
    low = torch.randn(n, 8, 8, generator=g).to(dtype)
    obj = (torch.randn(n, generator=g) * 3).to(dtype)
    iou = torch.rand(n, generator=g).to(dtype)
    return logits, low, obj, iou


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_batched_store_equals_one_object_at_a_time(dtype):
    logits, low, obj, iou = _outputs(0, 4, dtype)
    ids = [3, 5, 8, 9]
    one, many = ResultStore(), ResultStore()
    for r, oid in enumerate(ids):
        one.put_logits(7, oid, logits[r], low[r], float(obj[r]), float(iou[r]))
    host = many.put_logits_batch(7, ids, logits, low, obj, iou)
    assert one.records(7) == many.records(7)
    assert many.get(7, 3).box == (0.0, 0.0, 0.0, 0.0)
    for r, oid in enumerate(ids):
        mask, score = host[oid]
        assert np.array_equal(mask, (logits[r] > 0).numpy())
        assert score == pytest.approx(float(torch.sigmoid(obj[r].float())), abs=1e-7)
        assert many.get(7, oid).box == tuple(boxes_from_masks((logits[r] > 0)[None])[0].tolist())


def test_combine_from_host_copies_equals_from_logits():
    logits, low, obj, iou = _outputs(1, 3)
    ids = [1, 2, 4]
    store = ResultStore()
    host = store.put_logits_batch(0, ids, logits, low, obj, iou)
    computed = {oid: (logits[r], obj[r]) for r, oid in enumerate(ids[:2])}  # object 4 comes from the store
    a = store.combine(0, ids, computed, (30, 40), with_logits=False)
    b = store.combine(0, ids, computed, (30, 40), with_logits=False, on_host={k: host[k] for k in computed})
    for f in ("object_ids", "masks", "boxes", "scores"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
