"""``EverythingOptions``: the knobs of automatic mask generation (``ImagePredictor.segment_everything``).

The names and defaults are those of SAM 1's ``SamAutomaticMaskGenerator``, so settings tuned for SAM 1 carry over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from .. import prompts as P

MAX_POINTS_PER_SIDE = 128
"""Largest ``points_per_side``: 128 x 128 = 16,384 clicks per crop, 16 times SAM 1's default grid (each click is one
mask-decoder pass, about a tenth of a second of CPU time at release size); a denser grid only repeats masks."""

MAX_POINTS_PER_BATCH = 1024
"""Largest ``points_per_batch``: the mask decoder holds about 17 MB of activations per click at release size (the
4g x 4g upscaled features), so 1024 clicks at once already need some 17 GB."""

MAX_CROP_LAYERS = 3
"""Largest ``crop_n_layers``: layer i has 4**i crops, each encoded by the ViT (1 + 4 + 16 + 64 = 85 encodings)."""

OUTPUT_MODES = ("binary_mask", "coco_rle")


@dataclass(frozen=True)
class EverythingOptions:
    """How ``segment_everything`` prompts, filters and de-duplicates masks (SAM 1's automatic mask generator).

    points_per_side: the grid has points_per_side x points_per_side clicks over the image (and over each crop of
        layer i, ``points_per_side // crop_n_points_downscale_factor**i`` per side); 1..``MAX_POINTS_PER_SIDE``.
    points_per_batch: clicks sent through the mask decoder at once (speed against memory; the result is the same).
    pred_iou_thresh: keep masks whose predicted IoU is > this, in [0, 1] (0 keeps all).
    stability_score_thresh: keep masks whose stability score is >= this, in [0, 1] (0 keeps all).
    stability_score_offset: the stability score is the IoU of the mask thresholded at logit +offset and at
        -offset (>= 0).
    box_nms_thresh: IoU of mask boxes above which the lower-scoring mask of a crop is dropped, in [0, 1].
    crop_n_layers: also run on crops: layer i (1..crop_n_layers) cuts the image into 2**i x 2**i overlapping
        crops, each encoded and prompted on its own (0..``MAX_CROP_LAYERS``).
    crop_nms_thresh: box IoU above which duplicates between crops are dropped (masks of smaller crops win).
    crop_overlap_ratio: overlap of neighbouring crops, as a fraction of the image's shorter side at layer 1
        (halved at each further layer), in [0, 1).
    crop_n_points_downscale_factor: the grid of layer i has points_per_side / factor**i points per side (>= 1).
    min_mask_region_area: fill holes and remove islands smaller than this many pixels (of the original image)
        from every kept mask, then de-duplicate again; 0 turns it off.
    multimask: three candidate masks per click (True, SAM 1's choice) or the one single-output mask.
    output_mode: "binary_mask" ((H, W) bool arrays) or "coco_rle" (``{"size": [H, W], "counts": str}``).
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: float = 0
    multimask: bool = True
    output_mode: str = "binary_mask"

    def __post_init__(self) -> None:
        _set = object.__setattr__
        _set(self, "points_per_side", _int(self.points_per_side, "points_per_side", 1, MAX_POINTS_PER_SIDE,
                                          "the grid has N x N clicks"))
        _set(self, "points_per_batch", _int(self.points_per_batch, "points_per_batch", 1, MAX_POINTS_PER_BATCH,
                                           "clicks decoded at once"))
        _set(self, "crop_n_layers", _int(self.crop_n_layers, "crop_n_layers", 0, MAX_CROP_LAYERS,
                                        "layers of crops; 0 = the whole image only"))
        _set(self, "crop_n_points_downscale_factor",
             _int(self.crop_n_points_downscale_factor, "crop_n_points_downscale_factor", 1, None,
                  "the grid shrinks by this factor per crop layer"))
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh"):
            _set(self, name, P.check_threshold(getattr(self, name), name))
        _set(self, "crop_overlap_ratio", _number(self.crop_overlap_ratio, "crop_overlap_ratio"))
        if not 0.0 <= self.crop_overlap_ratio < 1.0:
            raise InputError(f"crop_overlap_ratio must be in [0, 1) (a fraction of the image's shorter side), got "
                             f"{self.crop_overlap_ratio!r}")
        for name in ("stability_score_offset", "min_mask_region_area"):
            v = _number(getattr(self, name), name)
            if v < 0:
                raise InputError(f"{name} must be >= 0, got {v!r}")
            _set(self, name, v)
        if not isinstance(self.multimask, (bool, np.bool_)):
            raise InputError(f"multimask must be True or False, got {self.multimask!r}")
        _set(self, "multimask", bool(self.multimask))
        if self.output_mode not in OUTPUT_MODES:
            raise InputError(f"output_mode must be one of {', '.join(map(repr, OUTPUT_MODES))}, got "
                             f"{self.output_mode!r}")
        for layer in range(1, self.crop_n_layers + 1):
            if self.layer_points_per_side(layer) < 1:
                raise InputError(
                    f"crop layer {layer} would get no points: points_per_side {self.points_per_side} / "
                    f"crop_n_points_downscale_factor {self.crop_n_points_downscale_factor}**{layer} < 1; lower "
                    "the factor or crop_n_layers")

    def layer_points_per_side(self, layer: int) -> int:
        """Points per side of the grid of crop layer ``layer`` (0 = the whole image), as SAM 1 rounds it."""
        return int(self.points_per_side / (self.crop_n_points_downscale_factor ** layer))


def _int(value: Any, name: str, low: int, high: int | None, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer ({what}), got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"{name} must be {bound} ({what}), got {v}")
    return v


def _number(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be a number, got {value!r}") from e
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v
