"""The geometry (exemplar box) encoder of the detector: boxes -> prompt tokens, plus one CLS token.

As in the official model, the CLS token is always appended, right after the
last valid box, also when there are no boxes at all; a text-only prompt therefore carries one geometry token.
(transformers skips this encoder when no box is given.) Point prompts are not implemented: no public API of
the official model feeds points to the detector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import TransformerConfig
from ..ops.boxes import box_cxcywh_to_xyxy
from ..ops.roi_align import roi_align
from .detr_encoder import EncoderLayer
from .position import sine_coords


class GeometryEncoder(nn.Module):
    """Encode exemplar boxes against the g x g detector features.

    A box token is the sum of ``boxes_direct_project(cx, cy, w, h)``, ``boxes_pool_project`` of a
    ``roi_size``^2 ROI-align of the channel-normalised features (``vision_layer_norm``), ``boxes_pos_enc_project``
    of ``[sine(cy), sine(cx), h, w]`` and ``label_embed[label]``. With the CLS token appended, tokens go through
    ``final_proj`` -> ``prompt_layer_norm`` -> pre-norm layers (self-attention over the prompt, cross-attention to
    the un-normalised features with their position on the keys) -> ``output_layer_norm``.
    """

    def __init__(self, cfg: TransformerConfig, roi_size: int = 7) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.roi_size = roi_size
        self.label_embed = nn.Embedding(2, d)
        self.cls_embed = nn.Embedding(1, d)
        self.boxes_direct_project = nn.Linear(4, d)
        self.boxes_pool_project = nn.Conv2d(d, d, roi_size)
        self.boxes_pos_enc_project = nn.Linear(d + 2, d)
        self.vision_layer_norm = nn.LayerNorm(d)
        self.final_proj = nn.Linear(d, d)
        self.prompt_layer_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_layers))
        self.output_layer_norm = nn.LayerNorm(d)

    def forward(self, boxes: Tensor, labels: Tensor, padding_mask: Tensor, image: Tensor,
                pos: Tensor) -> tuple[Tensor, Tensor]:
        """Encode the boxes of B prompts, prompt b over image b.

        Args:
            boxes: (B, Nb, 4) normalised cxcywh (Nb may be 0).
            labels: (B, Nb) int, 1 = positive, 0 = negative exemplar.
            padding_mask: (B, Nb) bool, True = padding (ignored) box; padding may sit anywhere.
            image: (B, d, g, g) detector-neck features of the g x g level.
            pos: (d, g, g) or (B, d, g, g) its sine position.
        Returns:
            tokens (B, Nb + 1, d): the valid boxes first (in input order), then the CLS token, then padding;
            padding_mask (B, Nb + 1) bool, True = padding.
        """
        bsz, nb = boxes.shape[:2]
        d = self.cls_embed.embedding_dim
        if nb:
            # move the valid boxes to the front (the encoder is order-free; the CLS goes right after them)
            order = torch.argsort(padding_mask.to(torch.uint8), dim=1, stable=True)
            boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))
            labels = labels.gather(1, order)
            padding_mask = padding_mask.gather(1, order)
        # padding boxes are replaced by an all-zero box so that nothing non-finite reaches the attention
        boxes = boxes.masked_fill(padding_mask[..., None], 0.0)
        labels = labels.masked_fill(padding_mask, 0).long()

        tokens = self._encode_boxes(boxes, labels, image)
        num_valid = (~padding_mask).sum(1)
        tokens = torch.cat([tokens, tokens.new_zeros(bsz, 1, d)], dim=1)
        slot = torch.arange(nb + 1, device=tokens.device)
        # the CLS token into slot num_valid of each prompt (a select, not an indexed write: the ONNX export traces
        # a batch-broadcast indexed write with the trace's batch size)
        is_cls = slot[None, :, None] == num_valid[:, None, None]
        tokens = torch.where(is_cls, self.cls_embed.weight[0].to(tokens.dtype), tokens)
        mask = slot[None, :] > num_valid[:, None]

        x = self.prompt_layer_norm(self.final_proj(tokens))
        memory = image.flatten(2).transpose(1, 2)
        memory_pos = pos.flatten(-2).transpose(-1, -2).to(image.dtype)
        for layer in self.layers:
            x = layer(x, memory, padding_mask=mask, memory_pos=memory_pos)
        return self.output_layer_norm(x), mask

    def _encode_boxes(self, boxes: Tensor, labels: Tensor, image: Tensor) -> Tensor:
        """(B, Nb, 4) cxcywh + (B, Nb) labels -> (B, Nb, d) box tokens (before the CLS token and the layers)."""
        bsz, nb = boxes.shape[:2]
        d = self.cls_embed.embedding_dim
        if nb == 0:
            return image.new_zeros(bsz, 0, d)
        h, w = image.shape[-2:]
        boxes = boxes.to(image.dtype)
        normed = self.vision_layer_norm(image.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        xyxy = box_cxcywh_to_xyxy(boxes) * boxes.new_tensor([w, h, w, h])
        pooled = roi_align(normed, xyxy, self.roi_size)  # (B, Nb, d, r, r), aligned=False as in the official model
        pooled = self.boxes_pool_project(pooled.flatten(0, 1)).view(bsz, nb, d)
        cx, cy, bw, bh = boxes.unbind(-1)
        half = d // 2
        sine = torch.cat([sine_coords(cy, half), sine_coords(cx, half)], dim=-1).to(image.dtype)
        pos_enc = torch.cat([sine, bh[..., None], bw[..., None]], dim=-1)
        return (self.boxes_direct_project(boxes) + pooled + self.boxes_pos_enc_project(pos_enc)
                + self.label_embed(labels))
