"""The exported graphs as modules: thin wrappers that call the model's own (parity-tested) modules with the plain
tensors of the contract (``contract.py``) as inputs and outputs. Used by the export only.

Every shape-dependent choice is made from tensor shapes inside the graph (ONNX ``Shape`` arithmetic), never from a
Python branch on a value, so the exported graphs have no data-dependent ``If`` nodes and keep their dynamic axes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.onnx import operators

from ..model.features import DetectorImageFeatures, TextFeatures, TrackerImageFeatures
from ..model.position import sine_position_2d
from ..model.sam3 import Sam3Model
from ..model.tracker.mask_decoder import select_single_mask
from ..model.tracker.prompt_encoder import PAD_LABEL
from ..model.tracker.tracker import BOX_LABELS, LOW_RES_LOGIT_CLAMP
from ..model.vision import DETECTOR_LEVELS


class VisionEncoderGraph(nn.Module):
    """pixels (B, 3, S, S) -> tracker levels (``image_embeddings.0/1/2``, with a tracker) and detector levels
    (``detector_embeddings.0/1/2``): the ViT once, then both necks (``Sam3Model.image_trunk``,
    ``Sam3Model.tracker_features``, the detector neck of ``Sam3Model.detector_features`` without the per-image
    prompt terms, which the detector graph computes)."""

    def __init__(self, model: Sam3Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, ...]:
        m = self.model
        trunk = m.image_trunk(pixel_values)
        det = m.detector_model.vision_encoder.neck(trunk, levels=DETECTOR_LEVELS)
        if not m.has_tracker:
            return tuple(det)
        trk = m.tracker_features(trunk)
        return (trk.high_res[0].contiguous(), trk.high_res[1].contiguous(), trk.embed, *det)


class TextEncoderGraph(nn.Module):
    """token ids (B, L) int64 -> text features (B, L, d) (``Sam3Model.encode_text``)."""

    def __init__(self, model: Sam3Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.model.encode_text(input_ids, input_ids == 0).features


class DetectorGraph(nn.Module):
    """Detector levels + text features + exemplar boxes -> logits, boxes, presence, masks, semantic map
    (``Sam3Model.detect``). A box labelled -1 is padding (``box_padding``)."""

    def __init__(self, model: Sam3Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, f0: Tensor, f1: Tensor, f2: Tensor, text_features: Tensor, text_padding_mask: Tensor,
                input_boxes: Tensor, input_box_labels: Tensor) -> tuple[Tensor, ...]:
        g_h, g_w = f2.shape[-2:]
        pos = sine_position_2d(g_h, g_w, f2.shape[1], device=f2.device, dtype=f2.dtype)
        image = DetectorImageFeatures(fpn=[f0, f1, f2], pos=pos)
        padding = input_box_labels < 0
        out = self.model.detect(image, TextFeatures(text_features, text_padding_mask), input_boxes,
                                input_box_labels.clamp(min=0), padding, masks=True, semantic=True)
        return out.logits, out.boxes, out.presence_logit, out.mask_logits, out.semantic_logits


class PromptDecoderGraph(nn.Module):
    """Clicks, boxes and mask prompts of K objects per image + tracker levels -> masks, IoU, object scores
    (``Tracker.predict`` with the official single-image prompt order: box corners, clicks, one padding point).

    Objects: point_batch and num_boxes are each 1 (shared by every object) or K; num_points or num_boxes may be 0.
    """

    def __init__(self, model: Sam3Model) -> None:
        super().__init__()
        self.tracker = model.tracker_model

    def forward(self, input_points: Tensor, input_labels: Tensor, input_boxes: Tensor, emb0: Tensor, emb1: Tensor,
                emb2: Tensor, input_masks: Tensor) -> tuple[Tensor, ...]:
        trk = self.tracker
        pe = trk.prompt_encoder
        sp, sl = operators.shape_as_tensor(input_points), operators.shape_as_tensor(input_labels)
        sb, sm = operators.shape_as_tensor(input_boxes), operators.shape_as_tensor(input_masks)
        b = input_points.shape[0]
        k = torch.maximum(torch.maximum(sp[1], sl[1]), torch.maximum(sb[1], sm[1]))  # objects per image
        p = torch.maximum(sp[2], sl[2])
        has_box = sb[1].clamp(max=1)
        # box corners: (B, Nb, 2, 2) -> (B, K, 2 * has_box, 2); no box -> an empty (B, K, 0, 2)
        corners = input_boxes.reshape(b, -1, 2, 2)[:, :, : 2 * has_box]
        corners = corners.reshape(b, sb[1].clamp(min=1), -1, 2).expand(b, k, 2 * has_box, 2)
        dev = input_points.device
        corner_labels = torch.tensor(BOX_LABELS, dtype=torch.int64, device=dev)[: 2 * has_box]
        corner_labels = corner_labels.reshape(1, 1, 2 * has_box).expand(b, k, 2 * has_box)
        clicks = input_points.expand(b, k, p, 2)
        click_labels = input_labels.expand(b, k, p)
        # one padding point after the points, when there is any point or box (official ``_predict``)
        has_pad = (2 * has_box + p).clamp(max=1)
        pad = torch.zeros(1, 1, 1, 2, device=dev)[:, :, :has_pad].expand(b, k, has_pad, 2)
        pad_labels = torch.full((1, 1, 1), PAD_LABEL, dtype=torch.int64, device=dev)[:, :, :has_pad]
        pad_labels = pad_labels.expand(b, k, has_pad)
        points = torch.cat([corners.float(), clicks.float(), pad], dim=2)
        labels = torch.cat([corner_labels, click_labels.long(), pad_labels], dim=2)
        # (a 0 in an ONNX Reshape target copies the input's size: -1 keeps an empty axis empty)
        sparse = pe.embed_points(points.reshape(b * k, -1, 2), labels.reshape(b * k, -1))
        # dense prompt: the mask embedding where masks are given (num_masks = K), else ``no_mask_embed``
        m = pe.mask_input_size
        g = pe.grid_size
        masks = input_masks.reshape(-1, 1, m, m)
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(b * k, -1, g, g)
        dense = torch.cat([pe.embed_mask(masks), no_mask], dim=0)[: b * k]

        def per_object(x: Tensor) -> Tensor:  # (B, C, h, w) -> (B * K, C, h, w): image b for its K objects
            return x[:, None].expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])

        embed = per_object(emb2 + trk.no_memory_embedding.view(1, -1, 1, 1))
        high_res = [per_object(emb0), per_object(emb1)]
        feats = TrackerImageFeatures(embed=embed, high_res=high_res, dense_pe=trk.dense_pe())
        out = trk.mask_decoder.all_tokens(feats.embed, feats.dense_pe.to(embed.dtype), sparse.to(embed.dtype),
                                          dense, feats.high_res)
        single, single_iou = select_single_mask(out.mask_logits, out.iou_scores, trk.mask_decoder.stability_delta,
                                                trk.mask_decoder.stability_thresh)
        c, n = LOW_RES_LOGIT_CLAMP, trk.config.num_multimask_outputs
        return (out.iou_scores[:, 1:].reshape(b, k, n), out.mask_logits[:, 1:].clamp(-c, c).reshape(b, k, n, m, m),
                out.object_score_logit.reshape(b, k, 1), single_iou.reshape(b, k, 1),
                single.clamp(-c, c).reshape(b, k, 1, m, m))
