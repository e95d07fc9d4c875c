"""``ImagePredictor``: encode an image once, then answer concept prompts (``segment``) and interactive prompts
(``predict``) on its encoding. It wraps a model (composition); the encoding is an ``ImageEncoder``'s
``ImageState``, and the predictor holds the current one.

One result type per call: ``set_image`` / ``segment`` / ``predict`` take one image or one object;
``set_images`` / ``segment_batch`` / ``predict_batch`` take a batch and return lists.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..io.image import ImageInput, load_image
from ..model.features import DetectorImageFeatures, TextFeatures, TrackerImageFeatures
from ..model.sam3 import Sam3Model
from ..ops.components import fill_small_regions
from . import prompts as P
from .cache import EncodingCache
from .encoding import EncoderOptions, ImageEncoder, ImageState
from .everything import EverythingOptions, everything_options, segment_everything
from .postprocess import detection_scores, upsample_logits
from .options import PredictOptions, SegmentOptions
from .options import segment_options as _segment_options
from .results import PredictResult, SegmentResult
from .text import TextFeatureCache

log = logging.getLogger(__name__)

VISUAL_PROMPT = "visual"  # the text the official API uses when only boxes are given


class ImagePredictor:
    """Concept (text / exemplar boxes) and interactive (clicks / box / mask) segmentation on cached features.

    ``set_image`` runs the ViT once; the detector neck and the tracker neck are computed on first use and kept,
    so ``segment`` and ``predict`` on the same image share one backbone pass.
    """

    def __init__(self, model: Sam3Model, tokenizer=None, cache: Optional[EncodingCache] = None,
                 options: PredictOptions = PredictOptions(), *, encoder_options: Optional[EncoderOptions] = None,
                 encoder: Optional[ImageEncoder] = None) -> None:
        """Args:
            model: a loaded ``Sam3Model`` (``sam3kit.load``).
            tokenizer: overrides ``model.tokenizer``.
            cache: image-encoding cache; by default a private in-memory LRU of 8 images. Share one between
                predictors, or give it a directory to keep encodings across runs.
            options: post-processing of interactive masks.
            encoder_options: memory policy of the encoding (``EncoderOptions``; default: release the ViT's weight
                pages after each encoding).
            encoder: an ``ImageEncoder`` of ``model`` to use (shared with other predictors, a server's); it
                brings its own cache and options, so ``cache`` and ``encoder_options`` must then be None.
        """
        if not isinstance(options, PredictOptions):
            raise InputError(f"options must be a PredictOptions, got {type(options).__name__}")
        if encoder is not None:
            if cache is not None or encoder_options is not None:
                raise InputError("pass either encoder=, or cache= / encoder_options= (an encoder has its own)")
            if encoder.model is not model:
                raise InputError("encoder= encodes with another model than the predictor's")
        else:
            encoder = ImageEncoder(model, cache, encoder_options if encoder_options is not None else EncoderOptions())
        self.model = model
        self.options = options
        self.encoder = encoder
        self.texts = TextFeatureCache(model, tokenizer)
        self._state: Optional[ImageState] = None

    @property
    def cache(self) -> EncodingCache:
        return self.encoder.cache

    @property
    def tokenizer(self):
        return self.texts.tokenizer

    # ------------------------------------------------------------------ image
    def set_image(self, image: ImageInput) -> None:
        """Decode and encode one image (a path, PIL image or (H, W, 3) uint8 array). Replaces the previous one."""
        if isinstance(image, (list, tuple)):
            raise InputError("set_image takes one image; for a list of images use set_images (then segment_batch)")
        arrays = [load_image(image)]  # a decoding error keeps the previous image
        self._state = None  # its features can go while the new image is encoded
        self._state = self.encoder.encode_arrays(arrays)

    def set_images(self, images: Sequence[ImageInput]) -> None:
        """Decode and encode a list of images (a batch, any sizes); ``segment_batch`` then answers a prompt on all
        of them at once and ``predict`` on one (``image_index``). Replaces the previous image(s)."""
        if not isinstance(images, (list, tuple)):
            raise InputError(f"set_images takes a list of images, got {type(images).__name__}; for one image use "
                             "set_image")
        if not images:
            raise InputError("set_images got an empty list of images")
        arrays = [load_image(im) for im in images]
        self._state = None
        self._state = self.encoder.encode_arrays(arrays)

    def set_state(self, state: ImageState) -> None:
        """Use an ``ImageState`` encoded elsewhere (by ``ImageEncoder.encode`` of the same model)."""
        if not isinstance(state, ImageState):
            raise InputError(f"set_state takes an ImageState (ImageEncoder.encode), got {type(state).__name__}")
        if state.model is not self.model:
            raise InputError("this ImageState was encoded by another model than the predictor's")
        self._state = state

    def reset_image(self) -> None:
        self._state = None

    @property
    def state(self) -> Optional[ImageState]:
        """The encoding of the current image(s), or None."""
        return self._state

    @property
    def is_image_set(self) -> bool:
        return self._state is not None

    @property
    def image_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each image of the current batch."""
        return self._state.sizes if self._state is not None else []

    def _require_image(self) -> ImageState:
        if self._state is None:
            raise InputError("no image is set: call set_image(image) first")
        return self._state

    def detector_features(self) -> DetectorImageFeatures:
        return self._require_image().detector_features()

    def tracker_features(self) -> TrackerImageFeatures:
        return self._require_image().tracker_features()

    # ------------------------------------------------------------------ concepts
    def segment(self, text: Optional[str] = None, boxes: Any = None, box_labels: Any = None, *,
                options: Optional[SegmentOptions] = None, threshold: Optional[float] = None,
                mask_threshold: Optional[float] = None, return_mask_logits: Optional[bool] = None,
                return_semantic: Optional[bool] = None, truncate_text: Optional[bool] = None) -> SegmentResult:
        """Find every instance of a concept given by ``text`` and/or exemplar ``boxes`` in the image.

        Args:
            text: a noun phrase ("yellow school bus"); None with boxes only. A text longer than the model's
                context is an ``InputError`` unless ``truncate_text`` (``SegmentOptions``).
            boxes: (N, 4) pixel xyxy of the original image.
            box_labels: (N,) 1 = positive exemplar, 0 = negative; default all positive.
            options: the knobs as a ``SegmentOptions`` (default ``SegmentOptions()``); a keyword given here
                (``threshold``, ``mask_threshold``, ``return_mask_logits``, ``return_semantic``,
                ``truncate_text``, see ``SegmentOptions``) overrides its field.
        Returns:
            a ``SegmentResult``, instances in the detector's query order (the official order: not sorted by
            score). With a batch of images set (``set_images``), use ``segment_batch``.
        """
        state = self._require_image()
        if len(state) > 1:
            raise InputError(f"a batch of {len(state)} images is set (set_images): use segment_batch, which returns "
                             "one SegmentResult per image")
        opts = _segment_options(options, threshold=threshold, mask_threshold=mask_threshold,
                                return_mask_logits=return_mask_logits, return_semantic=return_semantic,
                                truncate_text=truncate_text)
        return self._segment(state, text, boxes, box_labels, opts)[0]

    def segment_batch(self, text: Optional[str] = None, boxes: Any = None, box_labels: Any = None, *,
                      options: Optional[SegmentOptions] = None, threshold: Optional[float] = None,
                      mask_threshold: Optional[float] = None, return_mask_logits: Optional[bool] = None,
                      return_semantic: Optional[bool] = None,
                      truncate_text: Optional[bool] = None) -> list[SegmentResult]:
        """``segment`` on every image of the current batch at once (the same prompt and exemplar boxes, in pixels
        of each image); one ``SegmentResult`` per image, in order (a list of one after ``set_image``)."""
        state = self._require_image()
        opts = _segment_options(options, threshold=threshold, mask_threshold=mask_threshold,
                                return_mask_logits=return_mask_logits, return_semantic=return_semantic,
                                truncate_text=truncate_text)
        return self._segment(state, text, boxes, box_labels, opts)

    @torch.inference_mode()
    def _segment(self, state: ImageState, text: Optional[str], boxes: Any, box_labels: Any,
                 opts: SegmentOptions) -> list[SegmentResult]:
        if text is None and boxes is None:
            raise InputError("segment needs a text prompt, exemplar boxes, or both")
        text = P.check_text(text) if text is not None else VISUAL_PROMPT
        B, dev = len(state), self.model.device
        box_t = lab_t = None
        if boxes is not None:
            norm = [tr.boxes_to_detector(P.check_boxes(boxes, tr.width, tr.height)) for tr in state.transforms]
            labels = P.check_labels(box_labels, norm[0].shape[0], name="box_labels")
            box_t = torch.stack(norm).to(dev, self.model.dtype)
            lab_t = torch.from_numpy(labels)[None].expand(B, -1).to(dev)
        elif box_labels is not None:
            raise InputError("box_labels were given without boxes")
        tf = self.texts.get(text, truncate=opts.truncate_text)
        tf = TextFeatures(tf.features.expand(B, -1, -1), tf.padding_mask.expand(B, -1))
        out = self.model.detect(state.detector_features(), tf, box_t, lab_t, None, masks=True,
                                semantic=opts.return_semantic)
        scores = detection_scores(out.logits.float(), out.presence_logit.float())
        results = []
        for b, tr in enumerate(state.transforms):
            h, w = tr.image_size
            keep = torch.nonzero(scores[b] > opts.threshold).flatten()  # ascending: the official query order
            logits = upsample_logits(out.mask_logits[b, keep], h, w)
            masks = logits.sigmoid() > opts.mask_threshold
            sem = None
            if opts.return_semantic:
                sem = upsample_logits(out.semantic_logits[b, :1], h, w)[0].cpu().numpy()
            results.append(SegmentResult(
                masks=masks.cpu().numpy(),
                boxes=tr.boxes_from_detector(out.boxes[b, keep]).cpu().numpy(),
                scores=scores[b, keep].cpu().numpy().astype(np.float32),
                presence=float(out.presence_logit[b].float().sigmoid()),
                query_indices=keep.cpu().numpy().astype(np.int64),
                mask_logits=logits.cpu().numpy() if opts.return_mask_logits else None,
                semantic_logits=sem,
            ))
        return results

    # ------------------------------------------------------------------ interactive
    def predict(self, points: Any = None, point_labels: Any = None, box: Any = None, mask_input: Any = None, *,
                multimask: bool = True, image_index: int = 0) -> PredictResult:
        """Segment one object from clicks, a box and/or a previous mask (SAM-style).

        Args:
            points: (N, 2) pixel (x, y) of the original image.
            point_labels: (N,): 1 foreground, 0 background; default all foreground.
            box: (4,) or (1, 4) pixel xyxy.
            mask_input: (4g, 4g) or (1, 4g, 4g) low-resolution logits of a previous result
                (``result.low_res_logits[i]``).
            multimask: three masks (True) or one (False, with the official stability fallback).
            image_index: which image of a batch (``set_images``).
        Returns:
            a ``PredictResult``. Several objects at once: ``predict_batch``.
        """
        state = self._require_image()
        one = P.one_object(points, point_labels, box, mask_input)
        return self._predict(state, [one], multimask, image_index, batched=False)[0]

    def predict_batch(self, points: Any = None, point_labels: Any = None, box: Any = None, mask_input: Any = None,
                      *, multimask: bool = True, image_index: int = 0) -> list[PredictResult]:
        """Segment K objects of one image at once; object k is ``predict(points[k], point_labels[k], box[k],
        mask_input[k])``.

        Args:
            points: (K, N, 2) pixel (x, y), the same number of points N for every object.
            point_labels: (K, N) 1 foreground, 0 background; default all foreground.
            box: (K, 4) pixel xyxy.
            mask_input: (K, 4g, 4g) or (K, 1, 4g, 4g) low-resolution logits.
            Each prompt kind is given for every object or for none.
        Returns:
            K ``PredictResult``, in order.
        """
        state = self._require_image()
        objects = P.split_objects(points, point_labels, box, mask_input)
        return self._predict(state, objects, multimask, image_index, batched=True)

    @torch.inference_mode()
    def _predict(self, state: ImageState, objects: list[tuple], multimask: bool, image_index: int, *,
                 batched: bool) -> list[PredictResult]:
        """Masks of K objects: ``objects`` = K (points, point_labels, box, mask_input) of one object each."""
        if not isinstance(image_index, (int, np.integer)) or not 0 <= image_index < len(state):
            raise InputError(f"image_index {image_index!r} is out of range for a batch of {len(state)}")
        tr = state.transforms[image_index]
        h, w = tr.image_size
        feats = state.tracker_features()
        lowres = 4 * self.model.config.tracker.grid_size
        checked = P.check_objects(objects, w, h, lowres, batched=batched)
        pts_l = [tr.points_to_model(p) for p, _, _, _ in checked if p is not None]
        lab_l = [torch.from_numpy(lab) for _, lab, _, _ in checked if lab is not None]
        box_l = [tr.boxes_to_model(b) for _, _, b, _ in checked if b is not None]
        msk_l = [torch.from_numpy(m) for _, _, _, m in checked if m is not None]
        dev, dt = self.model.device, self.model.dtype

        def stacked(xs: list[Tensor], dtype: torch.dtype = dt) -> Optional[Tensor]:
            return torch.stack(xs).to(dev, dtype) if xs else None

        K = len(objects)
        feat = TrackerImageFeatures(
            embed=feats.embed[image_index:image_index + 1].expand(K, -1, -1, -1),
            high_res=[f[image_index:image_index + 1].expand(K, -1, -1, -1) for f in feats.high_res],
            dense_pe=feats.dense_pe)
        out = self.model.predict_masks(feat, stacked(pts_l), stacked(lab_l, torch.int64), stacked(box_l),
                                       stacked(msk_l), multimask=multimask)
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
        return results

    # ------------------------------------------------------------------ everything
    def segment_everything(self, image: Optional[ImageInput] = None, *, options: Optional[EverythingOptions] = None,
                           points_per_side: Optional[int] = None, points_per_batch: Optional[int] = None,
                           pred_iou_thresh: Optional[float] = None, stability_score_thresh: Optional[float] = None,
                           stability_score_offset: Optional[float] = None, box_nms_thresh: Optional[float] = None,
                           crop_n_layers: Optional[int] = None, crop_nms_thresh: Optional[float] = None,
                           crop_overlap_ratio: Optional[float] = None,
                           crop_n_points_downscale_factor: Optional[int] = None,
                           min_mask_region_area: Optional[float] = None, multimask: Optional[bool] = None,
                           output_mode: Optional[str] = None) -> list[dict[str, Any]]:
        """Every object and part in the image, without a prompt: SAM 1's automatic mask generator (a grid of clicks
        through the interactive head, masks filtered and de-duplicated; ``sam3kit.pipelines.everything``).

        Args:
            image: set first (``set_image``; an image encoded before comes from the cache); None: the image set
                already. Crops (``crop_n_layers`` > 0) need it.
            options: the knobs as an ``EverythingOptions`` (SAM 1's names and defaults: 32 x 32 clicks, predicted
                IoU > 0.88, stability >= 0.95, box NMS 0.7, no crops); a keyword given here overrides its field.
        Returns:
            one dict per mask with SAM 1's keys: "segmentation" ((H, W) bool, or COCO RLE with
            ``output_mode="coco_rle"``), "area", "bbox" ([x, y, w, h], SAM 1's inclusive convention),
            "predicted_iou", "stability_score", "point_coords" ([[x, y]]), "crop_box" ([x, y, w, h]); by predicted
            IoU (within a crop; smaller crops first), as SAM 1 orders them. Each mask is ``predict`` on its click.
        """
        opts = everything_options(
            options, points_per_side=points_per_side, points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset, box_nms_thresh=box_nms_thresh, crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh, crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor, min_mask_region_area=min_mask_region_area,
            multimask=multimask, output_mode=output_mode)
        return segment_everything(self, opts, image)


