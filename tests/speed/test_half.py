"""Half precision (the CUDA paths ``load(dtype="bf16" | "fp16")``) checked for numerics on the CPU: the whole
image pipeline in bf16 / fp16 against fp32 on the same random weights. Half precision is not exact; the bounds
are those of its rounding (bf16 keeps 8 mantissa bits, fp16 11)."""

from __future__ import annotations

import pytest
import torch

from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model

BOUNDS = {torch.bfloat16: 0.99, torch.float16: 0.999}  # minimum cosine similarity to fp32


def _cos(a, b) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def _run(model, pixels, ids, pad, box, pts, lab):
    dt = model.dtype
    with torch.inference_mode():
        feats = model.encode_image(pixels.to(dt), detector=True, tracker=True)
        text = model.detector_model.encode_text(ids, pad)
        det = model.detector_model.forward_prompts(feats.detector, text, box.to(dt), masks=True, semantic=False)
        trk = model.tracker_model.predict(feats.tracker, pts, lab)
    return {"trunk": feats.detector.fpn[-1], "text": text.features, "logits": det.logits, "boxes": det.boxes,
            "masks": det.mask_logits, "click_masks": trk.mask_logits, "click_iou": trk.iou_scores}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_pipeline_tracks_fp32(dtype):
    cfg = Sam3Config.tiny()
    fp32 = randomize_(Sam3Model(cfg), 0, std=0.05).eval()
    half = randomize_(Sam3Model(cfg), 0, std=0.05).eval().to(dtype)
    g = torch.Generator().manual_seed(0)
    inputs = (torch.rand(1, 3, 112, 112, generator=g) * 2 - 1, torch.randint(1, 1000, (1, 32), generator=g),
              torch.arange(32)[None] >= 5, torch.tensor([[[0.5, 0.5, 0.3, 0.4]]]),
              torch.tensor([[[40.0, 60.0]]]), torch.ones(1, 1, dtype=torch.long))
    a, b = _run(fp32, *inputs), _run(half, *inputs)
    lines = []
    for k in a:
        assert b[k].dtype == dtype or k in ("boxes", "click_iou"), (k, b[k].dtype)
        assert torch.isfinite(b[k].float()).all(), k
        c = _cos(a[k], b[k].float())
        lines.append(f"{k} cos {c:.5f} max diff {(a[k] - b[k].float()).abs().max():.1e}")
        assert c >= BOUNDS[dtype], (k, c)
    print(f"\n{dtype}: " + "; ".join(lines))
