"""ops.roi_align against a literal per-sample re-statement of torchvision's kernel, plus analytic checks."""

from __future__ import annotations

import pytest
import torch

from fixtures.roi_align_reference import roi_align_reference
from sam3kit.ops.roi_align import roi_align


def _random_boxes(g: torch.Generator, n: int, k: int, h: int, w: int) -> torch.Tensor:
    """Boxes of every kind: inside, crossing the border, fully outside, tiny, larger than the map."""
    size = torch.tensor([w, h], dtype=torch.float32)
    start = (torch.rand(n, k, 2, generator=g) * 1.6 - 0.4) * size
    side = torch.rand(n, k, 2, generator=g) * size * 1.3
    side[:, :1] *= 0.05  # one tiny box per image
    return torch.cat([start, start + side], dim=-1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.5])
def test_matches_reference(aligned, sampling_ratio, spatial_scale):
    worst = 0.0
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        h, w = 5 + seed, 9 - seed
        feats = torch.randn(2, 3, h, w, generator=g)
        boxes = _random_boxes(g, 2, 4, h, w) / spatial_scale
        out_size = (3, 2) if seed == 1 else 4
        ours = roi_align(feats, boxes, out_size, spatial_scale=spatial_scale, sampling_ratio=sampling_ratio,
                         aligned=aligned)
        ref = roi_align_reference(feats, list(boxes.unbind(0)), out_size, spatial_scale, sampling_ratio, aligned)
        assert ours.shape == (2, 4, 3, *((3, 2) if seed == 1 else (4, 4)))
        worst = max(worst, (ours.flatten(0, 1) - ref).abs().max().item())
    print(f"roi_align aligned={aligned} sr={sampling_ratio} scale={spatial_scale}: max|diff| = {worst:.2e}")
    assert worst <= 1e-5, worst


def test_linear_map_gives_bin_centres():
    """Bilinear interpolation is exact on a linear map, and the samples of a bin are symmetric around its
    centre, so each bin of a box inside the map equals the map's value at the bin centre."""
    h, w = 9, 11
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    feats = (0.7 * ys - 0.3 * xs + 2.0)[None, None]
    box = torch.tensor([[[1.7, 2.2, 8.1, 6.9]]])  # xyxy, aligned: -0.5 -> fully inside [0, size - 1]
    out = roi_align(feats, box, (3, 4), aligned=True)[0, 0, 0]
    x0, y0, x1, y1 = (box[0, 0] - 0.5).tolist()
    cy = y0 + (torch.arange(3) + 0.5) * (y1 - y0) / 3
    cx = x0 + (torch.arange(4) + 0.5) * (x1 - x0) / 4
    expected = 0.7 * cy[:, None] - 0.3 * cx[None, :] + 2.0
    assert (out - expected).abs().max().item() < 1e-5


def test_empty_and_far_away_boxes():
    feats = torch.randn(2, 3, 6, 6)
    assert roi_align(feats, torch.zeros(2, 0, 4), 7).shape == (2, 0, 3, 7, 7)
    far = torch.tensor([[[20.0, 20.0, 30.0, 30.0]], [[-30.0, -30.0, -10.0, -10.0]]])
    assert torch.equal(roi_align(feats, far, 2), torch.zeros(2, 1, 3, 2, 2))
