"""Automatic masks for a whole image without a prompt: SAM 1's automatic mask generator on SAM 3's tracker head.

For each crop (the whole image, then the crops of ``crop_n_layers`` layers, ``crops.py``) a grid of clicks
(``grid.py``) goes through the interactive head, ``points_per_batch`` clicks per mask-decoder call, on the crop's
encoding (the whole image: the predictor's cached encoding; each crop of a layer: encoded once by the predictor's
``ImageEncoder``). Every click gives three candidate masks (one with ``multimask=False``) with their predicted IoU,
post-processed as ``ImagePredictor.predict`` does (its ``PredictOptions`` hole filling), so every mask equals
``predict`` on its click. Then, in SAM 1's order:

1. keep masks of predicted IoU > ``pred_iou_thresh``;
2. keep masks of stability score >= ``stability_score_thresh`` (``stability.py``);
3. on a crop that is not the whole image, drop masks whose box touches a crop border inside the image;
4. per crop, box NMS by predicted IoU (``box_nms_thresh``, ``nms.py``);
5. between crops, box NMS preferring smaller crops (``crop_nms_thresh``);
6. upsample the masks left, threshold them at 0, return them to the image (``crops.py``), and with
   ``min_mask_region_area`` fill small holes and remove small islands (``regions.py``), then NMS again preferring
   the masks that did not change (at max(box_nms_thresh, crop_nms_thresh)).

Steps 1-5 work on the decoder's low-resolution logits (4g x 4g, 288 x 288 at release, per crop): only the masks
that survive them are upsampled. Step 1 needs no pixels, and the hole filling is defined on the low-resolution
logits (as in ``predict``). SAM 1 computes the stability score and the boxes (steps 2-5) on the logits upsampled to
the image size; counted at low resolution they would differ (by a boundary pixel's share of the mask, a box side
by up to a low-resolution pixel), so they are computed exactly at the image size without upsampling
(``upsampled.py``: along each output row the bilinear values are straight lines between low-resolution pixel
centres, so counting runs costs one operation per low-resolution pixel of the row). They equal SAM 1's except for
pixels whose upsampled logit is within float32 rounding of a threshold. A last greedy pass over the upsampled
masks' own boxes (the records' ``bbox``) drops a mask that overlaps an earlier kept one above the NMS threshold of
the pair (``box_nms_thresh`` in one crop, ``crop_nms_thresh`` across crops), which only such rounding could cause.

Records are in SAM 1's order: the order of the last NMS (by predicted IoU within a crop, smaller crops first;
with ``min_mask_region_area``, masks that did not change first), ties in candidate order (crop, click, mask).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ...io.image import ImageInput, load_image
from ...io.rle import encode_rle
from ...model.features import TrackerImageFeatures
from ...ops.components import fill_small_regions
from ..coords import ImageTransform
from ..postprocess import upsample_logits
from .boxes import mask_boxes
from .crops import crop_boxes, near_crop_edge, uncrop_boxes, uncrop_points
from .grid import crop_points
from .nms import box_iou_one, nms
from .options import EverythingOptions
from .regions import clean_small_regions
from .stability import stability_from_counts
from .upsampled import upsampled_counts

log = logging.getLogger(__name__)

CROPS_PER_ENCODING = 4
"""Crops of one layer encoded together (one ViT batch): each crop is encoded once; a layer with more crops
(16 at layer 2) is encoded in groups of this many, which bounds the ViT's activation memory."""

UPSAMPLE_CHUNK = 16
"""Kept masks upsampled to the crop size at once."""

MASK_THRESHOLD = 0.0  # logits > 0: the interactive head's mask threshold, as in ``predict``


@dataclass
class _Candidates:
    """Masks of one crop that passed the filters (steps 1-3), not upsampled yet; N rows.

    logits: (N, 4g, 4g) float32 post-processed low-resolution logits (on the model's device).
    iou: (N,) float32 predicted IoU; stability: (N,) float32.
    points: (N, 2) float64 pixel (x, y) of the click of each mask, in the image (after ``uncrop``).
    boxes: (N, 4) int64 inclusive xyxy of the mask upsampled to its crop's size, in the image.
    """

    logits: Tensor
    iou: Tensor
    stability: Tensor
    points: np.ndarray
    boxes: Tensor

    def take(self, idx: Tensor) -> "_Candidates":
        i = idx.cpu()
        return _Candidates(self.logits[idx.to(self.logits.device)], self.iou[i], self.stability[i],
                           self.points[i.numpy()], self.boxes[i])


@dataclass
class _Mask:
    """A kept mask at the image's size, stored as the part inside its box."""

    crop: int  # index into the crop list
    box: list[int]  # inclusive xyxy in the image; an empty mask: its crop's top-left corner, twice (as SAM 1)
    part: np.ndarray  # (y1 - y0 + 1, x1 - x0 + 1) bool: the mask inside its box (empty (0, 0) for an empty mask)
    iou: float
    stability: float
    point: list[float]

    def full(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), dtype=bool)
        if self.part.size:
            x0, y0 = self.box[0], self.box[1]
            out[y0:y0 + self.part.shape[0], x0:x0 + self.part.shape[1]] = self.part
        return out

    @classmethod
    def of(cls, mask: np.ndarray, crop: int, iou: float, stability: float, point: list[float]) -> "_Mask":
        """From a full (h, w) bool mask; ``box`` in the frame of ``mask``."""
        box = [int(v) for v in mask_boxes(torch.from_numpy(mask)[None])[0].tolist()]
        part = mask[box[1]:box[3] + 1, box[0]:box[2] + 1].copy() if mask.any() else np.zeros((0, 0), bool)
        return cls(crop, box, part, iou, stability, point)


def segment_everything(predictor: Any, options: EverythingOptions,
                       image: Optional[ImageInput] = None) -> list[dict[str, Any]]:
    """Every mask the grid of clicks finds in the image (SAM 1's ``SamAutomaticMaskGenerator.generate``).

    Args:
        predictor: an ``ImagePredictor``; its model's tracker head, its cached encoding, its ``ImageEncoder`` (for
            crops) and its ``PredictOptions`` are used.
        options: ``EverythingOptions``.
        image: a path, PIL image or (H, W, 3) uint8 array, set on the predictor first (``set_image``: an image it
            encoded before comes from its cache). None: the image set already; crops need the image's pixels, so
            ``crop_n_layers`` > 0 needs ``image``.
    Returns:
        one dict per mask, SAM 1's record: "segmentation" ((H, W) bool array, or COCO RLE ``{"size": [H, W],
        "counts": str}`` with ``output_mode="coco_rle"``), "area" (int pixels), "bbox" ([x, y, w, h] ints: the
        mask's first foreground column and row, w = last column - x and h = last row - y, SAM 1's inclusive
        convention), "predicted_iou", "stability_score" (floats), "point_coords" ([[x, y]] pixels of the click),
        "crop_box" ([x, y, w, h] of the crop the mask was found on). In SAM 1's order (module docstring).
    """
    if not isinstance(options, EverythingOptions):
        raise InputError(f"options must be an EverythingOptions, got {type(options).__name__}")
    model = predictor.model
    if not model.has_tracker:
        raise InputError("segment_everything needs the tracker head (the full facebook/sam3 checkpoint); this "
                         "model is detector-only")
    pixels = None
    if image is not None:
        pixels = load_image(image)
        predictor.set_image(pixels)
    state = predictor.state
    if state is None:
        raise InputError("no image is set: pass image= or call set_image(image) first")
    if len(state) > 1:
        raise InputError(f"a batch of {len(state)} images is set (set_images): segment_everything takes one image; "
                         "pass image= or call set_image")
    if options.crop_n_layers > 0 and pixels is None:
        raise InputError("crop_n_layers > 0 encodes crops of the image, so it needs its pixels: pass the image "
                         "(segment_everything(image, ...))")
    H, W = state.transforms[0].image_size
    crops, layers = crop_boxes(H, W, options.crop_n_layers, options.crop_overlap_ratio)
    with torch.inference_mode():
        found: list[tuple[int, _Candidates]] = []
        found.append((0, _crop_candidates(predictor, state.tracker_features(), 0, state.transforms[0], crops[0],
                                          options.layer_points_per_side(0), options, (H, W))))
        for layer in range(1, options.crop_n_layers + 1):
            # an image of fewer pixels than crops per side gives empty crops (SAM 1 would fail on them): skipped
            idx = [i for i, l in enumerate(layers) if l == layer and crops[i][2] > crops[i][0]
                   and crops[i][3] > crops[i][1]]
            for g in range(0, len(idx), CROPS_PER_ENCODING):
                group = idx[g:g + CROPS_PER_ENCODING]
                arrays = [np.ascontiguousarray(pixels[y0:y1, x0:x1]) for x0, y0, x1, y1 in (crops[i] for i in group)]
                crop_state = predictor.encoder.encode_arrays(arrays)
                feats = crop_state.tracker_features()
                for b, i in enumerate(group):
                    one = TrackerImageFeatures(embed=feats.embed[b:b + 1],
                                               high_res=[f[b:b + 1] for f in feats.high_res], dense_pe=feats.dense_pe)
                    found.append((i, _crop_candidates(predictor, one, i, crop_state.transforms[b], crops[i],
                                                      options.layer_points_per_side(layer), options, (H, W))))
                del crop_state, feats
        order = _between_crops(found, crops, options)
        masks = _upsample(found, order, crops, (H, W))
    masks = _exact_pass(masks, options)
    if options.min_mask_region_area > 0:
        masks = _clean_regions(masks, options, (H, W))
    return [_record(m, crops, options, (H, W)) for m in masks]


def _crop_candidates(predictor: Any, feats: TrackerImageFeatures, crop_index: int, tr: ImageTransform,
                     crop: list[int], n: int, options: EverythingOptions, size: tuple[int, int]) -> _Candidates:
    """Steps 1-4 on one crop: the n x n grid in batches through the mask decoder, the filters and the crop's
    NMS. ``feats`` has batch 1; ``tr`` is the crop's transform (the crop's pixels <-> model input)."""
    model = predictor.model
    dev, dt = model.device, model.dtype
    popts = predictor.options
    ch, cw = tr.image_size
    H, W = size
    points = crop_points(n, cw, ch)
    parts = []
    for start in range(0, len(points), options.points_per_batch):
        pts = points[start:start + options.points_per_batch]
        k = len(pts)
        # the same conversion as predict: float32 pixels, then the model-input frame
        model_pts = tr.points_to_model(pts.astype(np.float32))[:, None].to(dev, dt)
        labels = torch.ones((k, 1), dtype=torch.int64, device=dev)
        feat = TrackerImageFeatures(embed=feats.embed.expand(k, -1, -1, -1),
                                    high_res=[f.expand(k, -1, -1, -1) for f in feats.high_res],
                                    dense_pe=feats.dense_pe)
        out = model.predict_masks(feat, model_pts, labels, None, None, multimask=options.multimask)
        m = out.mask_logits.shape[1]
        logits = out.mask_logits.float().flatten(0, 1)  # (k * m, 4g, 4g), click-major
        iou = out.iou_scores.float().flatten().cpu()
        click = torch.arange(k).repeat_interleave(m)
        if options.pred_iou_thresh > 0:
            keep = iou > options.pred_iou_thresh
            logits, iou, click = logits[keep.to(logits.device)], iou[keep], click[keep]
        logits = fill_small_regions(logits, max_hole_area=popts.max_hole_area,
                                    max_sprinkle_area=popts.max_sprinkle_area)
        off = options.stability_score_offset
        counts, boxes = upsampled_counts(logits, ch, cw, [MASK_THRESHOLD + off, MASK_THRESHOLD - off], MASK_THRESHOLD)
        stab = stability_from_counts(counts[:, 0], counts[:, 1])  # at the crop's size, as SAM 1
        if options.stability_score_thresh > 0:
            keep = stab >= options.stability_score_thresh
            logits, iou, stab, click, boxes = (logits[keep.to(logits.device)], iou[keep], stab[keep], click[keep],
                                               boxes[keep])
        if crop != [0, 0, W, H]:
            keep = ~near_crop_edge(boxes, crop, [0, 0, W, H])
            logits, iou, stab, click, boxes = (logits[keep.to(logits.device)], iou[keep], stab[keep], click[keep],
                                               boxes[keep])
        parts.append(_Candidates(logits, iou, stab, pts[click.numpy()], boxes))
    c = _Candidates(torch.cat([p.logits for p in parts]), torch.cat([p.iou for p in parts]),
                    torch.cat([p.stability for p in parts]), np.concatenate([p.points for p in parts]),
                    torch.cat([p.boxes for p in parts]))
    log.debug("crop %d %s: %d clicks, %d masks after the IoU and stability filters", crop_index, crop, len(points),
              len(c.iou))
    c = c.take(nms(c.boxes, c.iou, options.box_nms_thresh))
    c.boxes = uncrop_boxes(c.boxes, crop)
    c.points = uncrop_points(c.points, crop)
    return c


def _between_crops(found: list[tuple[int, _Candidates]], crops: list[list[int]],
                   options: EverythingOptions) -> list[tuple[int, int]]:
    """Step 5: (position in ``found``, row) of the masks kept, in order (all of them, in order, for one crop)."""
    rows = [(f, r) for f, (_, c) in enumerate(found) for r in range(len(c.iou))]
    if len(found) == 1 or not rows:
        return rows
    boxes = torch.cat([c.boxes for _, c in found])
    area = torch.tensor([float((crops[i][2] - crops[i][0]) * (crops[i][3] - crops[i][1]))
                         for i, c in found for _ in range(len(c.iou))], dtype=torch.float64)
    keep = nms(boxes, -area, options.crop_nms_thresh)  # smaller crops first (SAM 1's score 1 / crop area)
    return [rows[int(k)] for k in keep]


def _upsample(found: list[tuple[int, _Candidates]], order: list[tuple[int, int]], crops: list[list[int]],
              size: tuple[int, int]) -> list[_Mask]:
    """Step 6 (first part): the kept masks at full size, as ``predict`` makes them (bilinear upsampling of the
    low-resolution logits to the crop's size, > 0), placed in the image."""
    H, W = size
    out: list[Optional[_Mask]] = [None] * len(order)
    by_crop: dict[int, list[tuple[int, int]]] = {}
    for pos, (f, r) in enumerate(order):
        by_crop.setdefault(f, []).append((pos, r))
    for f, items in by_crop.items():
        crop_index, c = found[f]
        x0, y0, x1, y1 = crops[crop_index]
        for s in range(0, len(items), UPSAMPLE_CHUNK):
            chunk = items[s:s + UPSAMPLE_CHUNK]
            rows = torch.tensor([r for _, r in chunk], device=c.logits.device)
            up = (upsample_logits(c.logits[rows], y1 - y0, x1 - x0) > MASK_THRESHOLD).cpu().numpy()
            for (pos, r), m in zip(chunk, up):
                mask = _Mask.of(m, crop_index, float(c.iou[r]), float(c.stability[r]),
                                [float(v) for v in c.points[r]])
                mask.box = [mask.box[0] + x0, mask.box[1] + y0, mask.box[2] + x0, mask.box[3] + y0]  # SAM 1
                out[pos] = mask
    return [m for m in out if m is not None]


def _exact_pass(masks: list[_Mask], options: EverythingOptions) -> list[_Mask]:
    """Step 6 (second part): in order, drop a mask whose box overlaps an earlier kept one's by IoU >
    ``box_nms_thresh`` (same crop) or ``crop_nms_thresh`` (another crop). The NMS of steps 4-5 ran on boxes counted
    without upsampling, equal to these but for pixels within float32 rounding of the threshold; this keeps SAM 1's
    guarantee on the boxes the records carry even then."""
    if len(masks) < 2:
        return masks
    boxes = torch.tensor([m.box for m in masks], dtype=torch.float32)
    crop = torch.tensor([m.crop for m in masks])
    kept_idx: list[int] = []
    for j, m in enumerate(masks):
        if kept_idx:
            k = torch.tensor(kept_idx)
            iou = box_iou_one(boxes[j], boxes[k]).double()
            thr = torch.where(crop[k] == m.crop, options.box_nms_thresh, options.crop_nms_thresh).double()
            if bool((iou > thr).any()):
                continue
        kept_idx.append(j)
    kept = [masks[j] for j in kept_idx]
    if len(kept) < len(masks):
        log.debug("the upsampled masks' boxes removed %d of %d masks NMS kept", len(masks) - len(kept),
                  len(masks))
    return kept


def _clean_regions(masks: list[_Mask], options: EverythingOptions, size: tuple[int, int]) -> list[_Mask]:
    """SAM 1's post-processing: small holes and islands of every mask cleaned, then NMS on the new boxes with
    score 1 for an unchanged mask and 0 for a changed one (so unchanged masks win); kept changed masks take their
    cleaned form."""
    H, W = size
    cleaned, unchanged = [], []
    for m in masks:
        new, changed = clean_small_regions(m.full(H, W), options.min_mask_region_area)
        cleaned.append(_Mask.of(new, m.crop, m.iou, m.stability, m.point) if changed else m)
        unchanged.append(0.0 if changed else 1.0)
    if not cleaned:
        return cleaned
    boxes = torch.tensor([m.box for m in cleaned], dtype=torch.float32)
    keep = nms(boxes, torch.tensor(unchanged), max(options.box_nms_thresh, options.crop_nms_thresh))
    return [cleaned[int(k)] for k in keep]


def _record(m: _Mask, crops: list[list[int]], options: EverythingOptions, size: tuple[int, int]) -> dict[str, Any]:
    H, W = size
    full = m.full(H, W)
    x0, y0, x1, y1 = m.box
    c = crops[m.crop]
    return {
        "segmentation": encode_rle(full) if options.output_mode == "coco_rle" else full,
        "area": int(m.part.sum()),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "predicted_iou": m.iou,
        "point_coords": [m.point],
        "stability_score": m.stability,
        "crop_box": [c[0], c[1], c[2] - c[0], c[3] - c[1]],
    }
