"""The whole SAM 3 model: one ViT shared by the detector (concepts) and the tracker (objects).

Module names mirror the released Hugging Face ``model.safetensors`` (``detector_model.*``, ``tracker_neck.*``,
``tracker_model.*``) so that checkpoint keys map onto parameters one to one. The methods below are what the
pipelines call, so that no pipeline depends on that module tree.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor, nn

from ..config import Sam3Config
from ..errors import InputError
from .detector import Detector
from .features import (DetectorImageFeatures, DetectorOutput, ImageFeatures, TextFeatures, TrackerImageFeatures,
                       TrackerOutput)
from .neck import FPNNeck
from .tracker.tracker import Tracker

if TYPE_CHECKING:
    from ..tokenizer import Sam3Tokenizer

NO_TRACKER = ("this checkpoint is detector-only (no tracker weights): interactive prediction needs the full "
              "facebook/sam3 checkpoint")


class Sam3Model(nn.Module):
    """Holds the weights; stateless. ``tracker_neck``/``tracker_model`` are None for detector-only checkpoints.

    Attributes besides the modules:
        tokenizer: the checkpoint's tokenizer (``sam3kit.load`` sets it from the files beside the weights);
            None = the bundled CLIP vocabulary (``Sam3Tokenizer.default()``), built by the pipelines on first use.
        fingerprint: identity of the weights, part of every image-encoding cache key. A random ``mem-<hex>`` id
            per model object by default (an in-memory model never shares cache entries with another);
            ``sam3kit.load`` replaces it with the checkpoint's identity, a speed function that changes the
            numbers (``speed.quantize_int8``) extends it.
    """

    def __init__(self, config: Sam3Config) -> None:
        super().__init__()
        self.config = config
        self.tokenizer: Optional[Sam3Tokenizer] = None
        self.fingerprint: str = f"mem-{uuid.uuid4().hex}"
        self.detector_model = Detector(config.detector)
        if config.tracker is not None:
            self.tracker_neck = FPNNeck(config.detector.vit.hidden_size, config.detector.neck)
            self.tracker_model = Tracker(config.tracker)
        else:
            self.tracker_neck = None
            self.tracker_model = None

    @property
    def has_tracker(self) -> bool:
        return self.tracker_model is not None

    # ------------------------------------------------------------------ image
    def image_trunk_module(self) -> nn.Module:
        """The ViT shared by the detector and the tracker (its weights are most of the model: the pipelines'
        memory policy releases their pages after encoding)."""
        return self.detector_model.vision_encoder.backbone

    def image_trunk(self, pixels: Tensor) -> Tensor:
        """The ViT: pixels (B, 3, S, S) normalised to [-1, 1], S = ``config.image_size`` -> trunk (B, C, g, g)
        (channels-last in memory), the input of both necks."""
        return self.image_trunk_module()(pixels)

    def detector_features(self, trunk: Tensor, *, image_terms: bool = True) -> DetectorImageFeatures:
        """Detector-neck levels of a trunk (B, C, g, g) and, with ``image_terms``, the prompt-independent work of
        every prompt on these images (``Detector.with_image_terms``: the DETR encoder's first self-attention and
        the image part of the segmentation head), computed once here instead of once per prompt."""
        feats = self.detector_model.vision_encoder.features_from_trunk(trunk)
        return self.detector_model.with_image_terms(feats) if image_terms else feats

    def tracker_features(self, trunk: Tensor) -> TrackerImageFeatures:
        """Tracker-neck levels of a trunk (B, C, g, g), with ``conv_s0``/``conv_s1`` applied."""
        if not self.has_tracker:
            raise InputError(NO_TRACKER)
        fpn = self.tracker_neck(trunk, levels=(0, 1, 2))
        return self.tracker_model.image_features(fpn)

    def encode_image(self, pixels: Tensor, *, detector: bool = True, tracker: bool = False) -> ImageFeatures:
        """The ViT once and the necks that are asked for, without the prompt-independent image terms (the plain
        features the parity tests and benchmarks compare).

        Args:
            pixels: (B, 3, S, S) normalised to [-1, 1], S = ``config.image_size``.
        """
        if tracker and not self.has_tracker:
            raise InputError(NO_TRACKER)
        trunk = self.image_trunk(pixels)
        out = ImageFeatures()
        if detector:
            out.detector = self.detector_features(trunk, image_terms=False)
        if tracker:
            out.tracker = self.tracker_features(trunk)
        return out

    # ------------------------------------------------------------------ prompts
    def encode_text(self, input_ids: Tensor, padding_mask: Tensor) -> TextFeatures:
        """Token ids (B, L) int64 and padding mask (B, L) bool (True = pad) -> TextFeatures (B, L, d).

        Encodes the L positions it is given: callers cut the trailing columns that are padding in every row
        first (the text transformer is causal and every reader masks padding, so the detections are the same)."""
        return self.detector_model.encode_text(input_ids, padding_mask)

    def detect(self, image: DetectorImageFeatures, text: TextFeatures, boxes: Optional[Tensor] = None,
               box_labels: Optional[Tensor] = None, box_padding: Optional[Tensor] = None, *,
               masks: bool = True, semantic: bool = True) -> DetectorOutput:
        """Concept detection (``Detector.forward_prompts``): boxes are (B, Nb, 4) normalised cxcywh of the model
        input; the output boxes are normalised xyxy."""
        return self.detector_model.forward_prompts(image, text, boxes, box_labels, box_padding, masks=masks,
                                                   semantic=semantic)

    def predict_masks(self, features: TrackerImageFeatures, points: Optional[Tensor] = None,
                      point_labels: Optional[Tensor] = None, boxes: Optional[Tensor] = None,
                      mask_input: Optional[Tensor] = None, *, multimask: bool = True) -> TrackerOutput:
        """Interactive masks (``Tracker.predict``): points (B, N, 2) and boxes (B, 4) in pixels of the model input
        (0..S), mask_input (B, 1, 4g, 4g) low-resolution logits."""
        if not self.has_tracker:
            raise InputError(NO_TRACKER)
        return self.tracker_model.predict(features, points, point_labels, boxes, mask_input, multimask=multimask)

    # ------------------------------------------------------------------ placement
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
