"""``ImagePredictor``: encode an image once, then answer concept prompts (``segment``) and interactive prompts
(``predict``) on the cached encoding. It wraps a model (composition) and holds the per-image state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections import OrderedDict
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..io.image import ImageInput, load_image
from ..model.features import DetectorImageFeatures, TextFeatures, TrackerImageFeatures
from ..model.sam3 import Sam3Model
from ..ops.components import fill_small_regions
from ..weights.pages import release_mapped
from . import prompts as P
from .cache import EncodingCache, cache_key
from .postprocess import boxes_to_pixels, detection_scores, upsample_logits
from .preprocess import preprocess
from .results import PredictResult, SegmentResult

log = logging.getLogger(__name__)

VISUAL_PROMPT = "visual"  # the text the official API uses when only boxes are given
_TEXT_CACHE_SIZE = 32


@dataclass(frozen=True)
class PredictOptions:
    """Post-processing of interactive masks (official ``SAM3InteractiveImagePredictor`` defaults).

    max_hole_area: background regions of at most this many low-resolution pixels (288 x 288 grid at release)
        become foreground before upsampling; 0 turns it off.
    max_sprinkle_area: foreground specks of at most this many low-resolution pixels become background.
    release_encoder_weights: after ``set_image`` has run the ViT, give its memory-mapped weight pages back to the
        page cache (``weights.pages.release_mapped``): the resident set stays about 1.8 GB lower (full size) while
        prompts run, and the next image faults them in again from memory (about 0.1 s on a 40 s encode). Only
        unmodified weights mapped from a checkpoint file are affected.
    """

    max_hole_area: float = 256.0
    max_sprinkle_area: float = 0.0
    release_encoder_weights: bool = True


class ImagePredictor:
    """Concept (text / exemplar boxes) and interactive (clicks / box / mask) segmentation on cached features.

    ``set_image`` runs the ViT once; the detector neck and the tracker neck are computed on first use and cached,
    so ``segment`` and ``predict`` on the same image share one backbone pass.
    """

    def __init__(self, model: Sam3Model, tokenizer=None, cache: Optional[EncodingCache] = None,
                 options: PredictOptions = PredictOptions()) -> None:
        """Args:
            model: a loaded ``Sam3Model`` (``sam3kit.load``).
            tokenizer: overrides ``model.tokenizer``.
            cache: image-encoding cache; by default a private in-memory LRU of 8 images. Share one between
                predictors, or give it a directory to keep encodings across runs.
            options: post-processing of interactive masks.
        """
        self.options = options
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        self.cache = cache if cache is not None else EncodingCache()
        self._sizes: list[tuple[int, int]] = []  # (H, W) per image
        self._trunk: Optional[Tensor] = None
        self._det: Optional[DetectorImageFeatures] = None
        self._trk: Optional[TrackerImageFeatures] = None
        self._text_cache: OrderedDict[str, TextFeatures] = OrderedDict()

    # ------------------------------------------------------------------ image
    @torch.inference_mode()
    def set_image(self, image: Union[ImageInput, Sequence[ImageInput]]) -> None:
        """Decode and encode one image, or a list of images (a batch). Replaces the previous image."""
        batch = list(image) if isinstance(image, (list, tuple)) else [image]
        if not batch:
            raise InputError("set_image got an empty list of images")
        arrays = [load_image(im) for im in batch]
        self.reset_image()
        m = self.model
        S, dev, dt = m.config.image_size, m.device, m.dtype
        vit = m.config.detector.vit
        shape = (1, vit.hidden_size, vit.grid_size, vit.grid_size)
        keys = [cache_key(a, model_fingerprint(m), dt, S) for a in arrays]
        found = [self.cache.get(k, device=dev, dtype=dt, shape=shape) for k in keys]
        todo = [i for i, t in enumerate(found) if t is None]
        if todo:
            pixels = preprocess([arrays[i] for i in todo], S, device=dev, dtype=dt)
            backbone = m.detector_model.vision_encoder.backbone
            trunk = backbone(pixels)
            for j, i in enumerate(todo):
                found[i] = trunk[j:j + 1]
                self.cache.put(keys[i], found[i])
            if self.options.release_encoder_weights:
                release_mapped(backbone.parameters())
        trunk = torch.cat(found) if len(found) > 1 else found[0]
        # channels-last, as the ViT returns it: a disk entry reads back channels-first, and the necks' convolutions
        # on that layout take about 0.75 s more per neck at full size (and its image tokens are a transposed view)
        self._trunk = trunk.contiguous(memory_format=torch.channels_last)
        self._sizes = [(a.shape[0], a.shape[1]) for a in arrays]

    def reset_image(self) -> None:
        self._sizes, self._trunk, self._det, self._trk = [], None, None, None

    @property
    def is_image_set(self) -> bool:
        return self._trunk is not None

    @property
    def image_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each image of the current batch."""
        return list(self._sizes)

    def _require_image(self) -> None:
        if self._trunk is None:
            raise InputError("no image is set: call set_image(image) first")

    def detector_features(self) -> DetectorImageFeatures:
        self._require_image()
        if self._det is None:
            det = self.model.detector_model
            self._det = det.with_image_terms(det.vision_encoder.features_from_trunk(self._trunk))
        return self._det

    def tracker_features(self) -> TrackerImageFeatures:
        self._require_image()
        if not self.model.has_tracker:
            raise InputError("this checkpoint is detector-only (no tracker weights): interactive prediction needs "
                             "the full facebook/sam3 checkpoint")
        if self._trk is None:
            self._trk = self.model.tracker_features(self._trunk)
        return self._trk

    # ------------------------------------------------------------------ concepts
    def _text_features(self, text: str) -> TextFeatures:
        hit = self._text_cache.get(text)
        if hit is not None:
            self._text_cache.move_to_end(text)
            return hit
        if self.tokenizer is None:  # a model built in memory: the bundled CLIP vocabulary
            from ..tokenizer import Sam3Tokenizer

            self.tokenizer = Sam3Tokenizer.default()
        ids, pad = self.tokenizer([text], truncate=False)  # overlong text is an error, not a silent cut
        dev = self.model.device
        feats = self.model.detector_model.encode_text(ids.to(dev), pad.to(dev))
        self._text_cache[text] = feats
        if len(self._text_cache) > _TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return feats

    @torch.inference_mode()
    def segment(self, text: Optional[str] = None, boxes: Any = None, box_labels: Any = None, *,
                threshold: float = 0.5, mask_threshold: float = 0.5, return_mask_logits: bool = False,
                return_semantic: bool = False) -> Union[SegmentResult, list[SegmentResult]]:
        """Find every instance of a concept given by ``text`` and/or exemplar ``boxes``.

        Args:
            text: a noun phrase ("yellow school bus"); None with boxes only.
            boxes: (N, 4) pixel xyxy of the original image (the same boxes for every image of a batch).
            box_labels: (N,) 1 = positive exemplar, 0 = negative; default all positive.
            threshold: keep instances whose score (class x presence probability) is > threshold.
            mask_threshold: mask pixels whose probability is > mask_threshold.
        Returns:
            a ``SegmentResult`` (a list of them for a batch of images).
        """
        self._require_image()
        if text is None and boxes is None:
            raise InputError("segment needs a text prompt, exemplar boxes, or both")
        threshold = P.check_threshold(threshold, "threshold")
        mask_threshold = P.check_threshold(mask_threshold, "mask_threshold")
        text = P.check_text(text) if text is not None else VISUAL_PROMPT
        B = len(self._sizes)
        box_t = lab_t = None
        if boxes is not None:
            norm = []
            for (h, w) in self._sizes:
                b = P.check_boxes(boxes, w, h)
                cx, cy = (b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h
                bw, bh = (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h
                norm.append(np.stack([cx, cy, bw, bh], axis=1))
            labels = P.check_labels(box_labels, norm[0].shape[0], name="box_labels")
            box_t = torch.from_numpy(np.stack(norm)).to(self.model.device, self.model.dtype)
            lab_t = torch.from_numpy(labels)[None].expand(B, -1).to(self.model.device)
        elif box_labels is not None:
            raise InputError("box_labels were given without boxes")
        tf = self._text_features(text)
        tf = TextFeatures(tf.features.expand(B, -1, -1), tf.padding_mask.expand(B, -1))
        out = self.model.detector_model.forward_prompts(
            self.detector_features(), tf, box_t, lab_t, None, masks=True, semantic=return_semantic)
        scores = detection_scores(out.logits.float(), out.presence_logit.float())
        results = []
        for b, (h, w) in enumerate(self._sizes):
            keep = torch.nonzero(scores[b] > threshold).flatten()
            logits = upsample_logits(out.mask_logits[b, keep], h, w)
            masks = logits.sigmoid() > mask_threshold
            sem = None
            if return_semantic:
                sem = upsample_logits(out.semantic_logits[b, :1], h, w)[0].cpu().numpy()
            results.append(SegmentResult(
                masks=masks.cpu().numpy(),
                boxes=boxes_to_pixels(out.boxes[b, keep], h, w).cpu().numpy(),
                scores=scores[b, keep].cpu().numpy().astype(np.float32),
                presence=float(out.presence_logit[b].float().sigmoid()),
                query_indices=keep.cpu().numpy().astype(np.int64),
                mask_logits=logits.cpu().numpy() if return_mask_logits else None,
                semantic_logits=sem,
            ))
        return results if B > 1 else results[0]

    # ------------------------------------------------------------------ interactive
    @torch.inference_mode()
    def predict(self, points: Any = None, point_labels: Any = None, box: Any = None, mask_input: Any = None, *,
                multimask: bool = True, image_index: int = 0) -> Union[PredictResult, list[PredictResult]]:
        """Segment one object from clicks, a box and/or a previous mask (SAM-style).

        Args:
            points: (N, 2) pixel (x, y) of the original image; or (K, N, 2) for K objects at once.
            point_labels: (N,) or (K, N): 1 foreground, 0 background; default all foreground.
            box: (4,) pixel xyxy, or (K, 4) with K objects.
            mask_input: low-resolution logits of a previous result (``low_res_logits[i]``), or (K, ...) for K objects.
            multimask: three masks (True) or one (False, with the official stability fallback).
            image_index: which image of a batch.
        Returns:
            a ``PredictResult``, or a list of K for a batch of prompt sets.
        """
        self._require_image()
        if points is None and box is None and mask_input is None:
            raise InputError("predict needs at least one prompt: points, a box or a mask_input")
        if not 0 <= image_index < len(self._sizes):
            raise InputError(f"image_index {image_index} is out of range for a batch of {len(self._sizes)}")
        h, w = self._sizes[image_index]
        feats = self.tracker_features()
        S = self.model.config.image_size
        lowres = 4 * self.model.config.tracker.grid_size
        batched, K = _object_count(points, box, mask_input)
        pts_l, lab_l, box_l, msk_l = [], [], [], []
        for k in range(K):
            pk = None if points is None else (points[k] if batched else points)
            lk = None if point_labels is None else (point_labels[k] if batched else point_labels)
            bk = None if box is None else (box[k] if batched else box)
            mk = None if mask_input is None else (mask_input[k] if batched else mask_input)
            if pk is not None:
                p = P.check_points(pk, w, h)
                pts_l.append(p * np.array([S / w, S / h], dtype=np.float32))
                lab_l.append(P.check_labels(lk, p.shape[0], name="point_labels"))
            elif lk is not None:
                raise InputError("point_labels were given without points")
            if bk is not None:
                bb = P.check_boxes(bk, w, h, name="box", single=True)
                box_l.append(bb * np.array([S / w, S / h, S / w, S / h], dtype=np.float32))
            if mk is not None:
                msk_l.append(P.check_mask_input(mk, lowres))
        for name, lst in (("points", pts_l), ("box", box_l), ("mask_input", msk_l)):
            if lst and len(lst) != K:
                raise InputError(f"{name} must be given for every object of the batch or for none")
        if pts_l and len({p.shape[0] for p in pts_l}) > 1:
            raise InputError("every object of a batch must have the same number of points")
        dev, dt = self.model.device, self.model.dtype
        t = lambda xs, dtype=dt: torch.from_numpy(np.stack(xs)).to(dev, dtype) if xs else None  # noqa: E731
        feat = TrackerImageFeatures(
            embed=feats.embed[image_index:image_index + 1].expand(K, -1, -1, -1),
            high_res=[f[image_index:image_index + 1].expand(K, -1, -1, -1) for f in feats.high_res],
            dense_pe=feats.dense_pe)
        out = self.model.tracker_model.predict(feat, t(pts_l), t(lab_l, torch.int64), t(box_l), t(msk_l),
                                               multimask=multimask)
        logits = out.mask_logits.float()
        filled = fill_small_regions(logits.flatten(0, 1), max_hole_area=self.options.max_hole_area,
                                    max_sprinkle_area=self.options.max_sprinkle_area).view_as(logits)
        results = []
        for k in range(K):
            up = upsample_logits(filled[k], h, w)
            iou = out.iou_scores[k].float().cpu().numpy()
            results.append(PredictResult(
                masks=(up > 0).cpu().numpy(), iou_scores=iou,
                object_score=float(out.object_score_logit[k].float().sigmoid().reshape(-1)[0]),
                low_res_logits=logits[k].cpu().numpy(), best=int(np.argmax(iou))))
        return results if batched else results[0]


def model_fingerprint(model: Sam3Model) -> str:
    """Identity of a model's weights for the encoding cache: set by ``sam3kit.load`` from the checkpoint files,
    else a random id per model object (so an in-memory model never shares entries with another)."""
    fp = getattr(model, "fingerprint", None)
    if fp is None:
        import uuid

        fp = f"mem-{uuid.uuid4().hex}"
        model.fingerprint = fp
    return fp


def _object_count(points: Any, box: Any, mask_input: Any) -> tuple[bool, int]:
    """Whether the prompts describe a batch of K objects, and K."""
    if points is not None:
        a = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=object)
        if a.ndim == 3:
            return True, a.shape[0]
    if box is not None:
        a = np.asarray(box.detach().cpu() if hasattr(box, "detach") else box, dtype=object)
        if a.ndim == 2:
            return True, a.shape[0]
    if mask_input is not None:
        a = np.asarray(mask_input.detach().cpu() if hasattr(mask_input, "detach") else mask_input, dtype=object)
        if a.ndim == 4 or (a.ndim == 3 and a.shape[0] > 1):
            return True, a.shape[0]
    return False, 1
