"""Half precision (the CUDA paths ``load(dtype="bf16" | "fp16")``) checked for numerics on the CPU: the whole
image pipeline in bf16 / fp16 against fp32 on the same random weights. Half precision is not exact; the bounds
are those of its rounding (bf16 keeps 8 mantissa bits, fp16 11). Device-parametrised (``tests/fixtures/devices.py``):
on the device under test (CUDA when there is one) both precisions run there, fp32 with TF32 off, so the half
precision kernels of that device (flash attention, cuDNN) are the ones measured, with the same bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.pipelines.video import VideoPredictor

BOUNDS = {torch.bfloat16: 0.99, torch.float16: 0.999}  # minimum cosine similarity to fp32


def _cos(a, b) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def _run(model, pixels, ids, pad, box, pts, lab):
    dt = model.dtype
    pixels, ids, pad, box, pts, lab = (t.to(model.device) for t in (pixels, ids, pad, box, pts, lab))
    with torch.inference_mode():
        feats = model.encode_image(pixels.to(dt), detector=True, tracker=True)
        text = model.detector_model.encode_text(ids, pad)
        det = model.detector_model.forward_prompts(feats.detector, text, box.to(dt), masks=True, semantic=False)
        trk = model.tracker_model.predict(feats.tracker, pts, lab)
    return {"trunk": feats.detector.fpn[-1], "text": text.features, "logits": det.logits, "boxes": det.boxes,
            "masks": det.mask_logits, "click_masks": trk.mask_logits, "click_iou": trk.iou_scores}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_pipeline_tracks_fp32(dtype, test_device):
    cfg = Sam3Config.tiny()
    dev = test_device.torch_device
    fp32 = randomize_(Sam3Model(cfg), 0, std=0.05).eval().to(dev)
    half = randomize_(Sam3Model(cfg), 0, std=0.05).eval().to(device=dev, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    inputs = (torch.rand(1, 3, 112, 112, generator=g) * 2 - 1, torch.randint(1, 1000, (1, 32), generator=g),
              torch.arange(32)[None] >= 5, torch.tensor([[[0.5, 0.5, 0.3, 0.4]]]),
              torch.tensor([[[40.0, 60.0]]]), torch.ones(1, 1, dtype=torch.long))
    a, b = _run(fp32, *inputs), _run(half, *inputs)
    lines = []
    for k in a:
        assert b[k].dtype == dtype or k in ("boxes", "click_iou"), (k, b[k].dtype)
        assert torch.isfinite(b[k].float()).all(), k
        c = _cos(a[k].cpu(), b[k].float().cpu())
        lines.append(f"{k} cos {c:.5f} max diff {(a[k] - b[k].float()).abs().max():.1e}")
        assert c >= BOUNDS[dtype], (k, c)
    print(f"\n{dtype} on {dev}: " + "; ".join(lines))


VIDEO_GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "official_video"
# minimum per-frame mask IoU to fp32: rounding compounds through the memories over the 12 frames (on the CPU the
# worst frame is near 0.98 in bf16 and 0.995 in fp16; the bounds leave room for another device's kernels)
VIDEO_MASK_IOU = {torch.bfloat16: 0.95, torch.float16: 0.98}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_video_tracking_tracks_fp32(dtype, test_device):
    """The official golden model's two-object case tracked in half precision: every frame's masks agree with fp32's
    on the same device (IoU per object, the fp32 masks non-trivial), and the scores stay within 0.05."""
    case = torch.load(VIDEO_GOLDEN / "cases.pt", weights_only=True)["cases"]["two_objects"]
    frames = [f.numpy() for f in case["frames"]]

    def run(dt):
        model = test_device.load(VIDEO_GOLDEN, dtype=dt)
        out = []
        with VideoPredictor(model).start(frames) as session:
            for st in case["steps"]:
                if st["op"] == "add_points":
                    kw = dict(points=st["points"].numpy(), point_labels=st["labels"].numpy()) if "points" in st \
                        else {}
                    if "box" in st:
                        kw["box"] = st["box"].numpy()
                    session.add_prompt(st["frame"], obj_id=st["obj_id"], **kw)
                elif st["op"] == "propagate":
                    out += list(session.propagate(start=st["start"], direction=st["direction"],
                                                  max_frames=st["max_frames"]))
        return out

    ref, half = run(torch.float32), run(dtype)
    assert [r.frame_index for r in half] == [r.frame_index for r in ref]
    worst = 1.0
    for a, b in zip(ref, half):
        assert a.object_ids.tolist() == b.object_ids.tolist()
        assert abs(a.scores - b.scores).max() <= 0.05, (a.frame_index, a.scores, b.scores)
        for m_a, m_b in zip(a.masks, b.masks):
            assert 0 < m_a.sum() < m_a.size, "the fp32 track must be non-trivial"
            worst = min(worst, (m_a & m_b).sum() / (m_a | m_b).sum())
    print(f"\n{dtype} on {test_device.name}: video mask IoU to fp32 at least {worst:.4f}")
    assert worst >= VIDEO_MASK_IOU[dtype]
