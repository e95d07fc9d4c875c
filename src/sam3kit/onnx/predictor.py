"""``OnnxPredictor``: ``ImagePredictor``'s ``set_image`` / ``segment`` / ``predict`` (and their batch forms
``set_images`` / ``segment_batch`` / ``predict_batch``) on an export folder, through ONNX Runtime, without PyTorch.

The same prompts, checks, options and result types (``SegmentResult``, ``PredictResult``) as ``ImagePredictor``;
the pre- and post-processing are the numpy forms of its torch code (``preprocess.py``, ``postprocess.py``,
``components.py``). What it imports: numpy, onnxruntime, tokenizers (with ftfy, the official text cleaning),
Pillow (image files) and sam3kit's own torch-free modules.

Where it can differ from ``ImagePredictor`` (the tests measure each): the graphs' float32 arithmetic is ONNX
Runtime's (differences of float32 rounding, within 1e-4 on every output of the tiny test models); the detector graph
computes the per-image prompt terms for every prompt (``ImagePredictor`` keeps them per image: the same numbers up
to rounding); so instances whose score is within rounding of ``threshold`` and mask pixels whose probability is
within rounding of ``mask_threshold`` may go the other way. The image resize is the same integer arithmetic as
torch's CPU uint8 kernel (bit-exact in the tests).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import InputError
from ..io.image import ImageInput, load_image
from ..pipelines import prompts as P
from ..pipelines.options import PredictOptions, SegmentOptions, segment_options
from ..pipelines.results import PredictResult, SegmentResult
from .components import fill_small_regions
from .contract import PRECISIONS, graph_specs, graph_variant
from .manifest import Manifest, read_manifest
from .postprocess import detection_scores, sigmoid, upsample_logits
from .preprocess import pixel_values
from .sessions import GraphSession, resolve_providers

log = logging.getLogger(__name__)

VISUAL_PROMPT = "visual"  # the text the official API uses when only boxes are given (as ImagePredictor)
NO_TRACKER = ("this export is of a detector-only checkpoint (no prompt_encoder_mask_decoder.onnx): interactive "
              "prediction needs the full facebook/sam3 checkpoint")


class _Image:
    """The encoding of the current image(s): their (H, W) and the vision encoder's outputs (batch = images)."""

    def __init__(self, sizes: list[tuple[int, int]], features: dict[str, np.ndarray]) -> None:
        self.sizes, self.features = sizes, features

    def __len__(self) -> int:
        return len(self.sizes)


class OnnxPredictor:
    """Concept (text / exemplar boxes) and interactive (clicks / box / mask) segmentation with exported graphs.

    ``set_image`` runs the vision encoder once; ``segment`` and ``predict`` answer prompts on its outputs.
    Sessions open on first use (a click-only user never loads the text encoder and the detector).

    Args:
        export_dir: a folder written by ``sam3kit export onnx`` (``sam3kit.onnx.export_onnx``).
        providers: ONNX Runtime execution providers, e.g. ``["CUDAExecutionProvider", "CPUExecutionProvider"]``;
            None = the CPU provider.
        precision: which variant of the graphs to run: "fp32"; "int8" (the int8 vision encoder of ``--int8``, the
            other graphs fp32); "fp16" (the graphs of ``--fp16``, meant for GPU providers).
        options: post-processing of interactive masks (as ``ImagePredictor``).
        threads: ONNX Runtime intra-op threads per session; None = its default (one per core).
        verify: check every byte of the graph files against the manifest's SHA-256 (sizes and sampled blocks are
            always checked).
    """

    def __init__(self, export_dir: Union[str, Path], providers: Optional[Sequence[str]] = None, *,
                 precision: str = "fp32", options: PredictOptions = PredictOptions(), threads: Optional[int] = None,
                 verify: bool = False, text_cache_size: int = 32) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if not isinstance(options, PredictOptions):
            raise InputError(f"options must be a PredictOptions, got {type(options).__name__}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        self.manifest: Manifest = read_manifest(Path(export_dir))
        self.dims = self.manifest.dims
        self.options = options
        self.precision = precision
        self.providers = resolve_providers(providers)
        self._threads = threads
        self._specs = graph_specs(self.dims)
        self._paths = {name: self.manifest.graph_file(name, graph_variant(name, self.precision), verify=verify)
                       for name in self.manifest.graph_names()}
        self.tokenizer = self._tokenizer()
        self._sessions: dict[str, GraphSession] = {}
        self._texts: OrderedDict[str, tuple[np.ndarray, np.ndarray, int]] = OrderedDict()
        self._text_cache_size = text_cache_size
        self._image: Optional[_Image] = None

    def _tokenizer(self):
        from ..tokenizer import Sam3Tokenizer

        files = {f.name: f for f in self.manifest.tokenizer_files()}
        ctx = int(self.manifest.data["tokenizer"].get("context_length", self.dims.context_length))
        if "tokenizer.json" in files:
            return Sam3Tokenizer.from_files(files["tokenizer.json"], context_length=ctx)
        return Sam3Tokenizer.from_files(vocab=files["vocab.json"], merges=files["merges.txt"], context_length=ctx)

    def session(self, name: str) -> GraphSession:
        """The (checked) session of graph ``name``, opened on first use."""
        s = self._sessions.get(name)
        if s is None:
            if name not in self._paths:
                raise InputError(NO_TRACKER)
            s = self._sessions[name] = GraphSession(self._paths[name], self._specs[name], self.providers,
                                                    self._threads)
        return s

    @property
    def has_tracker(self) -> bool:
        return self.dims.has_tracker

    @property
    def fingerprint(self) -> str:
        """The content fingerprint of the graphs this predictor runs (``Manifest.fingerprint``): what
        ``Sam3Model.fingerprint`` is for a checkpoint, e.g. for a job's skip check."""
        return self.manifest.fingerprint({name: graph_variant(name, self.precision) for name in self._paths})

    # ------------------------------------------------------------------ image
    def set_image(self, image: ImageInput) -> None:
        """Decode and encode one image (a path, PIL image or (H, W, 3) uint8 array). Replaces the previous one."""
        if isinstance(image, (list, tuple)):
            raise InputError("set_image takes one image; for a list of images use set_images (then segment_batch)")
        self._encode([load_image(image)])  # a decoding error keeps the previous image

    def set_images(self, images: Sequence[ImageInput]) -> None:
        """Decode and encode a list of images (any sizes) in one vision-encoder run: ``ImagePredictor.set_images``
        (``segment_batch`` answers a prompt on all of them, ``predict`` on one by ``image_index``)."""
        if not isinstance(images, (list, tuple)):
            raise InputError(f"set_images takes a list of images, got {type(images).__name__}; for one image use "
                             "set_image")
        if not images:
            raise InputError("set_images got an empty list of images")
        self._encode([load_image(im) for im in images])

    def _encode(self, arrays: list[np.ndarray]) -> None:
        self._image = None  # its features can go while the new images are encoded
        feats = self.session("vision_encoder").run({"pixel_values": pixel_values(arrays, self.dims.image_size)})
        self._image = _Image([(a.shape[0], a.shape[1]) for a in arrays], feats)

    def reset_image(self) -> None:
        self._image = None

    @property
    def is_image_set(self) -> bool:
        return self._image is not None

    @property
    def image_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each current image, or []."""
        return list(self._image.sizes) if self._image is not None else []

    def _require_image(self) -> _Image:
        if self._image is None:
            raise InputError("no image is set: call set_image(image) first")
        return self._image

    # ------------------------------------------------------------------ concepts
    def segment(self, text: Optional[str] = None, boxes: Any = None, box_labels: Any = None, *,
                options: Optional[SegmentOptions] = None, threshold: Optional[float] = None,
                mask_threshold: Optional[float] = None, return_mask_logits: Optional[bool] = None,
                return_semantic: Optional[bool] = None, truncate_text: Optional[bool] = None) -> SegmentResult:
        """Every instance of a concept given by ``text`` and/or exemplar ``boxes`` ((N, 4) pixel xyxy,
        ``box_labels`` (N,) 1 positive / 0 negative): ``ImagePredictor.segment``, the same arguments and result."""
        img = self._require_image()
        if len(img) > 1:
            raise InputError(f"a batch of {len(img)} images is set (set_images): use segment_batch, which returns "
                             "one SegmentResult per image")
        opts = segment_options(options, threshold=threshold, mask_threshold=mask_threshold,
                               return_mask_logits=return_mask_logits, return_semantic=return_semantic,
                               truncate_text=truncate_text)
        return self._segment(img, text, boxes, box_labels, opts)[0]

    def segment_batch(self, text: Optional[str] = None, boxes: Any = None, box_labels: Any = None, *,
                      options: Optional[SegmentOptions] = None, threshold: Optional[float] = None,
                      mask_threshold: Optional[float] = None, return_mask_logits: Optional[bool] = None,
                      return_semantic: Optional[bool] = None,
                      truncate_text: Optional[bool] = None) -> list[SegmentResult]:
        """``segment`` on every current image in one detector run (the same prompt; exemplar boxes in pixels of
        each image): ``ImagePredictor.segment_batch``, one ``SegmentResult`` per image, in order."""
        img = self._require_image()
        opts = segment_options(options, threshold=threshold, mask_threshold=mask_threshold,
                               return_mask_logits=return_mask_logits, return_semantic=return_semantic,
                               truncate_text=truncate_text)
        return self._segment(img, text, boxes, box_labels, opts)

    def _segment(self, img: _Image, text: Optional[str], boxes: Any, box_labels: Any,
                 opts: SegmentOptions) -> list[SegmentResult]:
        if text is None and boxes is None:
            raise InputError("segment needs a text prompt, exemplar boxes, or both")
        text = P.check_text(text) if text is not None else VISUAL_PROMPT
        B = len(img)
        if boxes is not None:  # normalised cxcywh of each image
            xyxy = [P.check_boxes(boxes, w, h) for h, w in img.sizes]
            labels = P.check_labels(box_labels, xyxy[0].shape[0], name="box_labels")
            box_in = np.stack([_xyxy_to_cxcywh(b) / np.array([w, h, w, h], dtype=np.float32)
                               for b, (h, w) in zip(xyxy, img.sizes)])
        elif box_labels is not None:
            raise InputError("box_labels were given without boxes")
        else:  # one padding box: the graph's text-only prompt
            box_in, labels = np.zeros((B, 1, 4), dtype=np.float32), np.array([-1], dtype=np.int64)
        features, padding = self._text(text, opts.truncate_text)
        f = img.features
        out = self.session("detector").run({
            "detector_embeddings.0": f["detector_embeddings.0"], "detector_embeddings.1": f["detector_embeddings.1"],
            "detector_embeddings.2": f["detector_embeddings.2"], "text_features": np.repeat(features, B, axis=0),
            "text_padding_mask": np.repeat(padding, B, axis=0), "input_boxes": box_in.astype(np.float32),
            "input_box_labels": np.repeat(labels[None].astype(np.int64), B, axis=0)})
        scores = detection_scores(out["logits"], out["presence_logits"])
        results = []
        for b, (h, w) in enumerate(img.sizes):
            keep = np.flatnonzero(scores[b] > opts.threshold)  # ascending: the official query order
            logits = upsample_logits(out["pred_masks"][b, keep], h, w)
            sem = upsample_logits(out["semantic_logits"][b, :1], h, w)[0] if opts.return_semantic else None
            results.append(SegmentResult(
                masks=sigmoid(logits) > opts.mask_threshold,
                boxes=out["pred_boxes"][b, keep].astype(np.float32) * np.array([w, h, w, h], dtype=np.float32),
                scores=scores[b, keep].astype(np.float32),
                presence=float(sigmoid(out["presence_logits"][b])),
                query_indices=keep.astype(np.int64),
                mask_logits=logits if opts.return_mask_logits else None,
                semantic_logits=sem))
        return results

    def text_features(self, text: str, *, truncate: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The encoded ``text``: features (1, L', d) and padding mask (1, L') as ``segment`` reads them, kept for
        the next prompts. ``InputError`` for an empty or overlong text (``truncate`` cuts it, as
        ``TextFeatureCache.get``): a caller can check its texts once before the first image."""
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"text prompt must be a non-empty string, got {text!r}")
        return self._text(text, truncate)

    def _text(self, text: str, truncate: bool) -> tuple[np.ndarray, np.ndarray]:
        """Text features (1, L', d) and padding mask (1, L') of a prompt, cut after its last token (as
        ``pipelines.text.TextFeatureCache``); recent prompts are kept."""
        tok = self.tokenizer
        hit = self._texts.get(text)
        n = hit[2] if hit is not None else tok.num_tokens(text)
        if n > tok.context_length and not truncate:
            quoted = repr(text if len(text) <= 40 else text[:40] + "…")
            raise InputError(
                f"text prompt {quoted} is {n} tokens long, the model reads at most {tok.context_length}: shorten it, "
                "or allow the official cut to its first tokens (truncate_text=True; --truncate-text in the command "
                "line)")
        if hit is not None:
            self._texts.move_to_end(text)
            return hit[0], hit[1]
        ids, pad = tok.arrays([text], truncate=truncate)
        real = np.flatnonzero((~pad).any(axis=0))
        cut = int(real.max()) + 1 if real.size else 1
        ids, pad = ids[:, :cut], pad[:, :cut]
        feats = self.session("text_encoder").run({"input_ids": ids})["text_features"]
        self._texts[text] = (feats, pad, n)
        while len(self._texts) > self._text_cache_size:
            self._texts.popitem(last=False)
        return feats, pad

    # ------------------------------------------------------------------ interactive
    def predict(self, points: Any = None, point_labels: Any = None, box: Any = None, mask_input: Any = None, *,
                multimask: bool = True, image_index: int = 0) -> PredictResult:
        """One object from clicks ((N, 2) pixel (x, y), ``point_labels`` (N,) 1 / 0), a box ((4,) pixel xyxy)
        and/or a previous mask (``result.low_res_logits[i]``): ``ImagePredictor.predict``, the same arguments and
        result (``image_index``: which image of ``set_images``)."""
        img = self._require_image()
        one = P.one_object(points, point_labels, box, mask_input)
        return self._predict(img, [one], multimask, image_index, batched=False)[0]

    def predict_batch(self, points: Any = None, point_labels: Any = None, box: Any = None, mask_input: Any = None,
                      *, multimask: bool = True, image_index: int = 0) -> list[PredictResult]:
        """K objects of one image in one decoder run: ``ImagePredictor.predict_batch`` (points (K, N, 2),
        point_labels (K, N), box (K, 4), mask_input (K, 4g, 4g); each kind for every object or for none)."""
        img = self._require_image()
        objects = P.split_objects(points, point_labels, box, mask_input)
        return self._predict(img, objects, multimask, image_index, batched=True)

    def _predict(self, img: _Image, objects: list[P.Prompt], multimask: bool, image_index: int, *,
                 batched: bool) -> list[PredictResult]:
        """Masks of K objects of image ``image_index``: the graph's (1, K, ...) prompt axes."""
        if not self.has_tracker:
            raise InputError(NO_TRACKER)
        if not isinstance(image_index, (int, np.integer)) or not 0 <= image_index < len(img):
            raise InputError(f"image_index {image_index!r} is out of range for a batch of {len(img)}")
        (h, w), S, m = img.sizes[image_index], self.dims.image_size, self.dims.mask_size
        checked = P.check_objects(objects, w, h, m, batched=batched)
        scale = np.array([S / w, S / h], dtype=np.float32)
        pts = [p * scale for p, _, _, _ in checked if p is not None]
        labels = [lab for _, lab, _, _ in checked if lab is not None]
        boxes = [b * np.tile(scale, 2) for _, _, b, _ in checked if b is not None]
        masks = [mk[0] for _, _, _, mk in checked if mk is not None]
        feeds: dict[str, np.ndarray] = {
            # no clicks: (1, 1, 0, 2) points and (1, 1, 0) labels; no box: (1, 0, 4) (the graph's empty forms)
            "input_points": np.stack(pts)[None] if pts else np.zeros((1, 1, 0, 2), dtype=np.float32),
            "input_labels": np.stack(labels)[None] if labels else np.zeros((1, 1, 0), dtype=np.int64),
            "input_boxes": np.stack(boxes)[None].astype(np.float32) if boxes else np.zeros((1, 0, 4), np.float32)}
        if masks:
            feeds["input_masks"] = np.stack(masks)[None]
        f = img.features
        for name in ("image_embeddings.0", "image_embeddings.1", "image_embeddings.2"):
            feeds[name] = f[name][image_index:image_index + 1]
        names = (("iou_scores", "pred_masks", "object_score_logits") if multimask else
                 ("single_iou_scores", "single_pred_masks", "object_score_logits"))
        out = self.session("prompt_encoder_mask_decoder").run(feeds, outputs=names)
        results = []
        for k in range(len(objects)):
            iou, logits, obj = (out[n][0, k] for n in names)
            filled = fill_small_regions(logits, max_hole_area=self.options.max_hole_area,
                                        max_sprinkle_area=self.options.max_sprinkle_area)
            iou = iou.astype(np.float32)
            results.append(PredictResult(masks=upsample_logits(filled, h, w) > 0, iou_scores=iou,
                                         object_score=float(sigmoid(obj.reshape(-1)[0])),
                                         low_res_logits=logits.astype(np.float32), best=int(np.argmax(iou))))
        return results


def _xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    """(N, 4) float32 xyxy -> cxcywh in float32 (the same operations as ``ops.boxes.box_xyxy_to_cxcywh``)."""
    x0, y0, x1, y1 = (b[:, i] for i in range(4))
    return np.stack([(x0 + x1) / np.float32(2), (y0 + y1) / np.float32(2), x1 - x0, y1 - y0], axis=-1)
