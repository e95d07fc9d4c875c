"""Helpers for the video tests: tiny trackers whose object pointers are split into memory tokens (d = 128 with
memory_dim 64: two tokens per pointer, as the released 256 / 64 splits into four), transformers'
``Sam3TrackerVideoModel`` with the same weights, and the official order of the memory encoder's input as a patch of
that reference (transformers resizes the logits before the sigmoid / binarisation)."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F

from sam3kit.config import Sam3Config
from sam3kit.model.tracker.tracker import Tracker

from fixtures.weights import randomize_

D_SPLIT = 128
"""Width of the video test trackers (memory_dim 64, so every pointer is 2 memory tokens)."""


def video_config(d: int = D_SPLIT) -> Sam3Config:
    return Sam3Config.tiny(d=d)


def build_video_tracker(seed: int, d: int = D_SPLIT, obj_score_bias: float = 0.0) -> Tracker:
    """Our tiny tracker with deterministic random weights (std 0.1, Fourier matrix N(0, 1), as ``build_tracker``);
    ``obj_score_bias`` is added to the object-score head's last bias (random weights give scores near 0, which
    makes objects flicker between present and absent)."""
    t = randomize_(Tracker(video_config(d).tracker), seed, std=0.1).eval()
    with torch.no_grad():
        t.prompt_encoder.shared_embedding.positional_embedding.normal_(generator=torch.Generator().manual_seed(seed))
        t.shared_image_embedding.positional_embedding.copy_(t.prompt_encoder.shared_embedding.positional_embedding)
        t.mask_decoder.pred_obj_score_head.proj_out.bias.add_(obj_score_bias)
    return t


def hf_video_model(ours: Tracker, d: int = D_SPLIT):
    """transformers ``Sam3TrackerVideoModel`` (no vision encoder) holding our tracker's weights."""
    transformers = pytest.importorskip("transformers")
    full = dict(video_config(d).to_hf_dict()["tracker_config"])
    full.pop("model_type")
    hf = transformers.Sam3TrackerVideoModel(transformers.Sam3TrackerVideoConfig(**full),
                                             remove_vision_encoder=True).eval()
    hf.load_state_dict(dict(ours.state_dict()), strict=True)
    return hf


def patch_official_memory_order(hf) -> None:
    """Make the reference encode memories in the official order: sigmoid (or ``> 0``) and ``* 20 - 10`` on the
    full-resolution logits, then the antialiased resize to 16g (transformers resizes the logits first, a divergence
    named in the tests that use this)."""
    enc = hf.memory_encoder
    side = hf.prompt_encoder.mask_input_size[0] * 4

    def encode(self, current_vision_feats, pred_masks_high_res, object_score_logits, is_mask_from_pts):
        b = current_vision_feats.size(1)
        h, w = self.backbone_feature_sizes[-1]
        m = (pred_masks_high_res > 0).float() if is_mask_from_pts else torch.sigmoid(pred_masks_high_res.float())
        m = m * self.config.sigmoid_scale_for_mem_enc + self.config.sigmoid_bias_for_mem_enc
        m = F.interpolate(m, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        pix = current_vision_feats.permute(1, 2, 0).view(b, self.hidden_dim, h, w)
        feats, pos = enc(pix, m.to(pix.dtype))  # the model's dtype (a no-op in fp32)
        present = (object_score_logits > 0).float()
        occ = self.occlusion_spatial_embedding_parameter.view(1, -1, 1, 1)
        feats = feats + (1 - present.view(-1, 1, 1, 1)) * occ
        return feats.to(torch.bfloat16).flatten(2).permute(2, 0, 1), pos.flatten(2).permute(2, 0, 1)

    hf._encode_new_memory = types.MethodType(encode, hf)


def hw_b_c(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (H*W, B, C), transformers' sequence layout."""
    return x.flatten(2).permute(2, 0, 1)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()
