"""ops.boxes: conversions round-trip and agree with hand-computed values; check_boxes rejects bad input."""

from __future__ import annotations

import pytest
import torch

from sam3kit.errors import InputError
from sam3kit.ops.boxes import (box_cxcywh_to_xyxy, box_xywh_to_cxcywh, box_xyxy_to_cxcywh, box_xyxy_to_xywh,
                               check_boxes, normalize_boxes, scale_boxes)


def test_known_values():
    cxcywh = torch.tensor([0.5, 0.4, 0.2, 0.6])
    xyxy = torch.tensor([0.4, 0.1, 0.6, 0.7])
    assert torch.allclose(box_cxcywh_to_xyxy(cxcywh), xyxy)
    assert torch.allclose(box_xyxy_to_cxcywh(xyxy), cxcywh)
    assert torch.allclose(box_xyxy_to_xywh(xyxy), torch.tensor([0.4, 0.1, 0.2, 0.6]))
    assert torch.allclose(box_xywh_to_cxcywh(torch.tensor([0.4, 0.1, 0.2, 0.6])), cxcywh)


def test_round_trips_keep_leading_dims():
    b = torch.rand(2, 3, 5, 4)
    assert box_cxcywh_to_xyxy(b).shape == b.shape
    assert torch.allclose(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(b)), b, atol=1e-6)
    xyxy = box_cxcywh_to_xyxy(b)
    assert torch.allclose(box_cxcywh_to_xyxy(box_xywh_to_cxcywh(box_xyxy_to_xywh(xyxy))), xyxy, atol=1e-6)


def test_scaling():
    b = torch.tensor([[0.1, 0.2, 0.5, 1.0]])
    px = scale_boxes(b, 640, 480)
    assert torch.allclose(px, torch.tensor([[64.0, 96.0, 320.0, 480.0]]))
    assert torch.allclose(normalize_boxes(px, 640, 480), b)


def test_check_boxes():
    check_boxes(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "xyxy")
    check_boxes(torch.tensor([[-0.2, 0.5, 0.0, 0.0]]), "cxcywh")  # outside the image, empty: allowed
    with pytest.raises(InputError, match="x1 < x0"):
        check_boxes(torch.tensor([[0.5, 0.0, 0.4, 1.0]]), "xyxy")
    with pytest.raises(InputError, match="negative"):
        check_boxes(torch.tensor([[0.5, 0.5, -0.1, 0.2]]), "cxcywh")
    with pytest.raises(InputError, match="NaN"):
        check_boxes(torch.tensor([[0.5, float("nan"), 0.1, 0.2]]), "xywh")
    with pytest.raises(InputError, match=r"\(\.\.\., 4\)"):
        check_boxes(torch.zeros(2, 3), "xyxy")
    with pytest.raises(InputError, match="floating"):
        check_boxes(torch.zeros(2, 4, dtype=torch.long), "xyxy")
    with pytest.raises(ValueError, match="format"):
        check_boxes(torch.zeros(2, 4), "xxyy")
