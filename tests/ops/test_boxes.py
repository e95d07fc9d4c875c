"""ops.boxes: conversions round-trip and agree with hand-computed values; scaling and normalising invert."""

from __future__ import annotations

import torch

from sam3kit.ops.boxes import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, normalize_boxes, scale_boxes


def test_known_values():
    cxcywh = torch.tensor([0.5, 0.4, 0.2, 0.6])
    xyxy = torch.tensor([0.4, 0.1, 0.6, 0.7])
    assert torch.allclose(box_cxcywh_to_xyxy(cxcywh), xyxy)
    assert torch.allclose(box_xyxy_to_cxcywh(xyxy), cxcywh)


def test_round_trips_keep_leading_dims():
    b = torch.rand(2, 3, 5, 4)
    assert box_cxcywh_to_xyxy(b).shape == b.shape
    assert torch.allclose(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(b)), b, atol=1e-6)


def test_scaling():
    b = torch.tensor([[0.1, 0.2, 0.5, 1.0]])
    px = scale_boxes(b, 640, 480)
    assert torch.allclose(px, torch.tensor([[64.0, 96.0, 320.0, 480.0]]))
    assert torch.allclose(normalize_boxes(px, 640, 480), b)


def test_normalising_divides():
    """A quotient, not a product with the rounded reciprocal (the detector's exemplar boxes depend on it)."""
    px = torch.rand(100, 4, generator=torch.Generator().manual_seed(0)) * 1000
    w, h = 333, 77
    assert torch.equal(normalize_boxes(px, w, h), px / torch.tensor([w, h, w, h], dtype=torch.float32))
    assert normalize_boxes(px.double(), w, h).dtype == torch.float64
