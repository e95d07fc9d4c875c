"""The forward passes never read a tensor's values on the host (no ``.item()``, ``bool(t)``, ``.tolist()`` or
data-dependent ``.nonzero()``): they run on the ``meta`` device, whose tensors have shapes but no data, so any
such read raises. Both the plain model and the CPU speed set; the shapes of every output are checked on the way.
"""

from __future__ import annotations

import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.speed.cpu import apply_cpu_kernels

META = torch.device("meta")


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, dtype=dtype, device=META)


@pytest.fixture(scope="module", params=["plain", "cpu_kernels"])
def model(request):
    with META:
        m = Sam3Model(Sam3Config.tiny()).eval()
    return apply_cpu_kernels(m) if request.param == "cpu_kernels" else m


def test_vit_necks_text_and_detector_run_without_data(model):
    cfg = model.config
    s, g, d = cfg.image_size, cfg.detector.vit.grid_size, cfg.detector.d_model
    det = model.detector_model
    with torch.inference_mode():
        trunk = det.vision_encoder.backbone(_meta(2, 3, s, s))
        assert trunk.shape == (2, cfg.detector.vit.hidden_size, g, g) and trunk.is_meta
        feats = det.vision_encoder.features_from_trunk(trunk)
        assert [tuple(f.shape[-2:]) for f in feats.fpn] == [(4 * g, 4 * g), (2 * g, 2 * g), (g, g)]
        text = det.encode_text(_meta(2, 7, dtype=torch.long), _meta(2, 7, dtype=torch.bool))
        assert text.features.shape == (2, 7, d)
        boxes, labels = _meta(2, 3, 4), _meta(2, 3, dtype=torch.long)
        padding = _meta(2, 3, dtype=torch.bool)
        for image in (feats, det.with_image_terms(feats)):
            out = det.forward_prompts(image, text, boxes, labels, padding)
            q = cfg.detector.decoder.num_queries
            assert out.logits.shape == (2, q) and out.boxes.shape == (2, q, 4)
            assert out.mask_logits.shape == (2, q, 4 * g, 4 * g) and out.semantic_logits.shape == (2, 1, 4 * g, 4 * g)
        text_only = det.forward_prompts(feats, text)
        assert text_only.presence_logit.shape == (2,)


def test_tracker_runs_without_data(model):
    cfg = model.config.tracker
    s, g, d = cfg.image_size, cfg.grid_size, cfg.hidden_size
    trk = model.tracker_model
    with torch.inference_mode():
        trunk = _meta(1, model.config.detector.vit.hidden_size, g, g)
        feats = trk.image_features(model.tracker_neck(trunk, levels=(0, 1, 2)))
        m = trk.prompt_encoder.mask_input_size
        pts, lab = _meta(2, 3, 2), _meta(2, 3, dtype=torch.long)
        for kwargs in (dict(points=pts, point_labels=lab), dict(boxes=_meta(2, 4), mask_input=_meta(2, 1, m, m))):
            for multimask in (True, False):
                out = trk.predict(feats, **kwargs, multimask=multimask)
                assert out.mask_logits.shape == (2, 3 if multimask else 1, 4 * g, 4 * g)
        frames, pointers = 2, 4
        memory = _meta(1, frames * g * g + pointers, cfg.memory_dim)
        cond = trk.memory_attention(feats.embed, memory, memory, pos=_meta(1, d, g, g), num_pointer_tokens=pointers)
        assert cond.shape == (1, d, g, g)
        mem = trk.memory_encoder(feats.embed, _meta(1, 1, s, s))
        assert mem.shape == (1, cfg.memory_dim, g, g)
