"""The SAM mask decoder of the tracker: masks, IoU scores, object score and mask tokens from prompt tokens.

Token order: ``[obj_score, iou, mask_0 .. mask_3] + sparse prompt tokens``. Mask token 0 is the single-mask
output, tokens 1..3 the multimask outputs. With ``multimask=False`` the decoder applies the official dynamic
fallback (inference behaviour of the official ``MaskDecoder``): if the stability score of mask 0 (area of
``logit > delta`` over area of ``logit > -delta``) is below ``thresh``, the best-IoU multimask output replaces it
(the returned mask token stays token 0, as in the official code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import TrackerConfig
from ...ops.conv import conv_transpose2x2
from ..features import TrackerOutput
from ..layers import MLP, LayerNorm2d
from .two_way_transformer import TwoWayTransformer


def stability_scores(mask_logits: Tensor, delta: float) -> Tensor:
    """Stability of (..., H, W) logits: |logit > delta| / |logit > -delta| (1 where the union is empty); (...)."""
    flat = mask_logits.flatten(-2)
    inter = (flat > delta).sum(-1).float()
    union = (flat > -delta).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def select_single_mask(masks: Tensor, iou: Tensor, delta: float, thresh: float) -> tuple[Tensor, Tensor]:
    """Single-mask output with the dynamic multimask fallback.

    Args:
        masks: (B, 1 + K, H, W) logits of all mask tokens; iou: (B, 1 + K).
    Returns:
        (B, 1, H, W) logits and (B, 1) IoU: mask 0 where stable, else the best-IoU mask among 1..K.
    """
    best = iou[:, 1:].argmax(dim=-1)
    rows = torch.arange(masks.shape[0], device=masks.device)
    best_masks = masks[rows, 1 + best].unsqueeze(1)
    best_iou = iou[rows, 1 + best].unsqueeze(1)
    stable = stability_scores(masks[:, 0], delta) >= thresh  # (B,)
    out_masks = torch.where(stable[:, None, None, None], masks[:, :1], best_masks)
    out_iou = torch.where(stable[:, None], iou[:, :1], best_iou)
    return out_masks, out_iou


class MaskDecoder(nn.Module):
    """Two-way transformer + upscaling + hypernetwork MLPs + IoU and object-score heads.

    Also holds ``conv_s0`` / ``conv_s1``, the 1x1 projections of the 4g and 2g tracker-neck levels
    (applied once per image by ``Tracker.image_features``, not here).
    """

    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.stability_delta = cfg.stability_delta
        self.stability_thresh = cfg.stability_thresh
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, d)
        self.obj_score_token = nn.Embedding(1, d)
        self.transformer = TwoWayTransformer(d, cfg.num_decoder_layers, cfg.num_decoder_heads, cfg.mlp_dim,
                                             cfg.attention_downsample_rate)
        self.upscale_conv1 = nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2)
        self.upscale_layer_norm = LayerNorm2d(d // 4)
        self.upscale_conv2 = nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2)
        self.act = nn.GELU()
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(d, d, d // 8, 3, names="sam") for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(d, cfg.iou_head_hidden_dim, self.num_mask_tokens, cfg.iou_head_depth,
                                       names="sam")
        self.pred_obj_score_head = MLP(d, d, 1, 3, names="sam")
        self.conv_s0 = nn.Conv2d(d, d // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(d, d // 4, kernel_size=1)

    def forward(self, image_embed: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor,
                high_res: list[Tensor], *, multimask: bool = True) -> TrackerOutput:
        """Decode masks for B prompt sets.

        Args:
            image_embed: (B, d, g, g) image embedding (no-memory embedding or memory conditioning already applied).
            image_pe: (1, d, g, g) dense position encoding of the grid (``Tracker.dense_pe``).
            sparse: (B, N, d) prompt tokens (N may be 0).
            dense: (B, d, g, g) dense prompt (mask embedding or ``no_mask_embed``).
            high_res: [(B or 1, d/8, 4g, 4g), (B or 1, d/4, 2g, 2g)] after ``conv_s0`` / ``conv_s1``.
            multimask: True -> masks 1..3; False -> one mask with the stability fallback.
        Returns:
            TrackerOutput with M = 3 (multimask) or 1; mask logits (B, M, 4g, 4g) are not clamped here.
        """
        out = self.all_tokens(image_embed, image_pe, sparse, dense, high_res)
        masks, iou, tokens = out.mask_logits, out.iou_scores, out.mask_tokens
        if multimask:
            masks, iou, tok = masks[:, 1:], iou[:, 1:], tokens[:, 1:]
        else:
            masks, iou = select_single_mask(masks, iou, self.stability_delta, self.stability_thresh)
            tok = tokens[:, :1]
        return TrackerOutput(mask_logits=masks, iou_scores=iou, object_score_logit=out.object_score_logit,
                             mask_tokens=tok)

    def all_tokens(self, image_embed: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor,
                   high_res: list[Tensor]) -> TrackerOutput:
        """The outputs of every mask token (``forward``'s arguments; the ONNX export reads both selections from
        one pass): TrackerOutput with M = 1 + num_multimask_outputs, token 0 the single-mask output."""
        b = sparse.shape[0]
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse.to(out_tokens.dtype)], dim=1)
        src = image_embed + dense
        _, c, h, w = src.shape
        hs, keys = self.transformer(tokens, src, image_pe)
        iou_out = hs[:, 1]
        mask_tokens_out = hs[:, 2:2 + self.num_mask_tokens]

        # Upscaling in channels-last layout: each 2x2 stride-2 transposed convolution is one matrix product, and
        # the LayerNorm over channels runs on contiguous rows (same maths as the channels-first modules).
        feat_s0, feat_s1 = (f.permute(0, 2, 3, 1) for f in high_res)  # (B?, 4g, 4g, d/8), (B?, 2g, 2g, d/4)
        ln = self.upscale_layer_norm
        up = conv_transpose2x2(keys.view(b, h, w, c), self.upscale_conv1.weight, self.upscale_conv1.bias,
                               add=feat_s1)
        up = self.act(F.layer_norm(up, (self.upscale_conv1.out_channels,), ln.weight, ln.bias, ln.eps))
        up = self.act(conv_transpose2x2(up, self.upscale_conv2.weight, self.upscale_conv2.bias, add=feat_s0))
        hyper = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                            dim=1)  # (B, T, d/8)
        masks = (hyper @ up.flatten(1, 2).transpose(1, 2)).view(b, self.num_mask_tokens, *up.shape[1:3])

        iou = torch.sigmoid(self.iou_prediction_head(iou_out))
        obj = self.pred_obj_score_head(hs[:, 0])
        return TrackerOutput(mask_logits=masks, iou_scores=iou, object_score_logit=obj, mask_tokens=mask_tokens_out)
