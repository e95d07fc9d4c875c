"""ImageTransform: the same numbers, bit for bit, as the formulas the image predictor used inline before, and round
trips between the original image and the model input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3kit.ops.boxes import box_cxcywh_to_xyxy
from sam3kit.pipelines.coords import ImageTransform

SIZES = [(45, 70, 112), (480, 640, 1008), (1080, 1920, 1008), (333, 77, 1008)]


def _boxes(h, w, n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, w, (n, 2)), axis=1)
    y = np.sort(rng.uniform(0, h, (n, 2)), axis=1)
    return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1).astype(np.float32)


@pytest.mark.parametrize("h, w, S", SIZES)
def test_detector_boxes_equal_the_old_formula(h, w, S):
    b = _boxes(h, w)
    cx, cy = (b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h
    bw, bh = (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h
    old = torch.from_numpy(np.stack([cx, cy, bw, bh], axis=1))
    new = ImageTransform(h, w, S).boxes_to_detector(b)
    assert new.dtype == torch.float32 and torch.equal(new, old)


@pytest.mark.parametrize("h, w, S", SIZES)
def test_detector_output_boxes_equal_the_old_formula(h, w, S):
    norm = torch.rand(10, 4, generator=torch.Generator().manual_seed(1)) * 1.2 - 0.1
    old = norm.float() * norm.new_tensor([w, h, w, h], dtype=torch.float32)
    assert torch.equal(ImageTransform(h, w, S).boxes_from_detector(norm), old)
    assert torch.equal(ImageTransform(h, w, S).boxes_from_detector(norm.double()), old)  # float32 whatever comes in


@pytest.mark.parametrize("h, w, S", SIZES)
def test_tracker_coordinates_equal_the_old_formula(h, w, S):
    b = _boxes(h, w, seed=2)
    p = b[:, :2].copy()
    tr = ImageTransform(h, w, S)
    old_p = p * np.array([S / w, S / h], dtype=np.float32)
    old_b = b[0] * np.array([S / w, S / h, S / w, S / h], dtype=np.float32)
    assert torch.equal(tr.points_to_model(p), torch.from_numpy(old_p))
    assert torch.equal(tr.boxes_to_model(b[0]), torch.from_numpy(old_b))


@pytest.mark.parametrize("h, w, S", SIZES)
def test_round_trips(h, w, S):
    tr = ImageTransform(h, w, S)
    b = torch.from_numpy(_boxes(h, w, seed=3))
    back = tr.boxes_from_detector(box_cxcywh_to_xyxy(tr.boxes_to_detector(b)))
    torch.testing.assert_close(back, b, rtol=1e-6, atol=1e-6 * max(h, w))
    torch.testing.assert_close(tr.boxes_from_model(tr.boxes_to_model(b)), b, rtol=1e-6, atol=1e-6 * max(h, w))
    p = b[:, :2]
    torch.testing.assert_close(tr.points_from_model(tr.points_to_model(p)), p, rtol=1e-6, atol=1e-6 * max(h, w))


def test_known_values():
    tr = ImageTransform(height=50, width=100, size=200)
    assert tr.image_size == (50, 100)
    assert torch.equal(tr.boxes_to_detector(np.array([[10.0, 5.0, 30.0, 45.0]])),
                       torch.tensor([[0.2, 0.5, 0.2, 0.8]]))
    assert torch.equal(tr.points_to_model(np.array([[10.0, 5.0]])), torch.tensor([[20.0, 20.0]]))
    assert torch.equal(tr.boxes_to_model(torch.tensor([100.0, 50.0, 100.0, 50.0])), torch.tensor([200.0] * 4))
    assert torch.equal(tr.boxes_from_detector(torch.tensor([[0.0, 0.5, 1.0, 1.0]])),
                       torch.tensor([[0.0, 25.0, 100.0, 50.0]]))
    # leading dimensions are kept
    assert tr.boxes_to_detector(np.zeros((2, 3, 4), dtype=np.float32)).shape == (2, 3, 4)
