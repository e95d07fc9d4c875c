"""The concept detector (Promptable Concept Segmentation): text and/or exemplar boxes -> scored boxes and masks.

Pipeline of ``forward_prompts``: geometry encoder (boxes + CLS token) -> prompt = [text; geometry] ->
DETR encoder over the g x g image tokens -> DETR decoder (presence token + queries) -> dot-product class
logits, presence logit, refined boxes -> segmentation head (instance masks, semantic map).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch
from torch import Tensor, nn

from ..config import DetectorConfig
from ..errors import CheckpointError, InputError
from ..ops.boxes import box_cxcywh_to_xyxy
from .detr_decoder import DetrDecoder
from .detr_encoder import DetrEncoder
from .features import DetectorImageFeatures, DetectorOutput, TextFeatures
from .geometry import GeometryEncoder
from .scoring import DotProductScoring
from .seg_head import SegmentationHead
from .text import TextEncoder
from .vision import VisionEncoder


class Detector(nn.Module):
    """Weights of the detector; stateless. Attribute names follow the ``detector_model.*`` checkpoint keys."""

    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        d = cfg.d_model
        widths = {"geometry": cfg.geometry.hidden_size, "encoder": cfg.encoder.hidden_size,
                  "decoder": cfg.decoder.hidden_size, "seg_head": cfg.seg_head.hidden_size}
        wrong = {k: v for k, v in widths.items() if v != d}
        if wrong:
            raise CheckpointError(f"detector widths must all equal the neck width {d}, got {wrong}; check the "
                                  "configuration")
        self.config = cfg
        self.vision_encoder = VisionEncoder(cfg.vit, cfg.neck)
        self.text_encoder = TextEncoder(cfg.text)
        self.text_projection = nn.Linear(cfg.text.hidden_size, d)
        self.geometry_encoder = GeometryEncoder(cfg.geometry, cfg.roi_size)
        self.detr_encoder = DetrEncoder(cfg.encoder)
        self.detr_decoder = DetrDecoder(cfg.decoder)
        self.mask_decoder = SegmentationHead(cfg.seg_head)
        self.dot_product_scoring = DotProductScoring(d, cfg.decoder.intermediate_size)

    def encode_text(self, input_ids: Tensor, padding_mask: Tensor) -> TextFeatures:
        """Token ids (B, L) int64 and their padding mask (B, L) bool (True = pad) -> TextFeatures (B, L, d).

        Every one of the L positions is encoded (no data-dependent trimming here: that would read the mask on the
        host). Callers that want less work cut the columns after the last non-padding token of the batch first
        (``sam3kit.pipelines.text.trim_padding``, on the CPU): the text transformer is causal, so earlier tokens do
        not see them, and every reader of the features masks padding, so detections are the same as with all L
        tokens.
        """
        return TextFeatures(features=self.text_projection(self.text_encoder(input_ids)), padding_mask=padding_mask)

    def with_image_terms(self, image: DetectorImageFeatures, *, masks: bool = True) -> DetectorImageFeatures:
        """``image`` plus the prompt-independent work of a prompt, done once for every prompt on these images.

        - ``encoder_start``: the DETR encoder's first self-attention over the image tokens (the prompt enters at
          the first cross-attention): attention over all g x g image tokens, the largest prompt-independent step
          of a prompt; (g * g, d) per image (5.3 MB in fp32 at release).
        - ``seg_terms`` (with ``masks``): the image part of the segmentation head's pixel decoder, so that every
          prompt that asks for masks does 45 % of the head's convolution work. They cost as much as that work for
          one prompt, so they pay off from the second prompt on an image, and hold two more maps per image
          ((d, 2g, 2g) and (d, 4g, 4g): 106 MB in fp32 at release).
        Terms already present are kept; the same outputs as without them, up to rounding.
        """
        start, terms = self._encoder_start(image), image.seg_terms
        if masks and terms is None:
            terms = self.mask_decoder.image_terms(list(image.fpn))
        if start is image.encoder_start and terms is image.seg_terms:
            return image
        return replace(image, encoder_start=start, seg_terms=terms)

    def _encoder_start(self, image: DetectorImageFeatures) -> Tensor:
        """``image.encoder_start``, or computed now from the images' rows (once per image, not per prompt row)."""
        if image.encoder_start is not None:
            return image.encoder_start
        feats = image.fpn[-1]
        return self.detr_encoder.image_start(_tokens(feats), _tokens(image.pos.to(feats.device, feats.dtype)))

    def forward_prompts(self, image: DetectorImageFeatures, text: TextFeatures, boxes: Optional[Tensor] = None,
                        box_labels: Optional[Tensor] = None, box_padding: Optional[Tensor] = None, *,
                        masks: bool = True, semantic: bool = True) -> DetectorOutput:
        """Detect the prompted concept; prompt b goes with image b.

        Args:
            image: detector features of B images (or of 1 image shared by all prompts).
            text: text features of B prompts (or 1 shared by all prompts); a box-only prompt uses the text
                "visual", as the official model does.
            boxes: (B, Nb, 4) exemplar boxes, normalised cxcywh of the model input; None = no box.
            box_labels: (B, Nb) int64, 1 = positive, 0 = negative; None = all positive.
            box_padding: (B, Nb) bool, True = padding box; None = no padding.
            masks, semantic: compute the instance masks / the semantic map (skip them when not needed).
        Returns:
            DetectorOutput with B rows (boxes normalised xyxy).
        """
        fpn = image.fpn
        d = self.config.d_model
        if len(fpn) < 2 or fpn[-1].dim() != 4 or fpn[-1].shape[1] != d:
            raise InputError(f"image.fpn must be neck levels (B, {d}, h, w) from fine to coarse, "
                             f"got shapes {[tuple(f.shape) for f in fpn]}")
        if text.features.dim() != 3 or text.features.shape[-1] != d:
            raise InputError(f"text.features must be (B, L, {d}) (after the text projection), "
                             f"got {tuple(text.features.shape)}")
        if text.padding_mask.shape != text.features.shape[:2]:
            raise InputError(f"text.padding_mask must be {tuple(text.features.shape[:2])}, "
                             f"got {tuple(text.padding_mask.shape)}")
        sizes = {"image": fpn[-1].shape[0], "text": text.features.shape[0]}
        if boxes is not None:
            if boxes.dim() != 3 or boxes.shape[-1] != 4:
                raise InputError(f"boxes must be (B, Nb, 4) normalised cxcywh, got {tuple(boxes.shape)}")
            sizes["boxes"] = boxes.shape[0]
        bsz = max(sizes.values())
        bad = {k: v for k, v in sizes.items() if v not in (1, bsz)}
        if bad:
            raise InputError(f"batch sizes must be equal or 1 (a single image or text is shared), got {sizes}")

        device, dtype = fpn[-1].device, fpn[-1].dtype
        if boxes is None:
            boxes = torch.zeros(bsz, 0, 4, device=device, dtype=dtype)
        if box_labels is None:
            box_labels = torch.ones(boxes.shape[:2], dtype=torch.long, device=boxes.device)
        if box_padding is None:
            box_padding = torch.zeros(boxes.shape[:2], dtype=torch.bool, device=boxes.device)
        if box_labels.shape != boxes.shape[:2] or box_padding.shape != boxes.shape[:2]:
            raise InputError(f"box_labels and box_padding must be {tuple(boxes.shape[:2])}, "
                             f"got {tuple(box_labels.shape)} and {tuple(box_padding.shape)}")
        boxes, box_labels, box_padding = (t.expand(bsz, *t.shape[1:]) for t in (boxes, box_labels, box_padding))
        feats = fpn[-1].expand(bsz, -1, -1, -1)
        g_h, g_w = feats.shape[-2:]
        pos = image.pos.to(device=device, dtype=dtype)

        geo, geo_mask = self.geometry_encoder(boxes.to(dtype), box_labels, box_padding.bool(), feats, pos)
        prompt = torch.cat([text.features.to(dtype).expand(bsz, -1, -1), geo], dim=1)
        prompt_mask = torch.cat([text.padding_mask.bool().expand(bsz, -1), geo_mask], dim=1)

        tokens, tokens_pos = _tokens(feats), _tokens(pos)
        memory = self.detr_encoder(tokens, tokens_pos, prompt, prompt_mask, start=self._encoder_start(image))
        queries, boxes_cxcywh, presence = self.detr_decoder(memory, tokens_pos, (g_h, g_w), prompt, prompt_mask)
        logits = self.dot_product_scoring(queries, prompt, prompt_mask)
        mask_logits, semantic_logits = self.mask_decoder(queries, memory, list(fpn), prompt, prompt_mask,
                                                         masks=masks, semantic=semantic,
                                                         image_terms=image.seg_terms)
        return DetectorOutput(logits=logits, presence_logit=presence, boxes=box_cxcywh_to_xyxy(boxes_cxcywh),
                              mask_logits=mask_logits, semantic_logits=semantic_logits, queries=queries)


def _tokens(x: Tensor) -> Tensor:
    """(..., d, h, w) -> (..., h * w, d) row-major tokens (a view when possible)."""
    return x.flatten(-2).transpose(-1, -2)
