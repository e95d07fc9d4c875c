"""The whole SAM 3 model: one ViT shared by the detector (concepts) and the tracker (objects).

Module names mirror the released Hugging Face ``model.safetensors`` (``detector_model.*``, ``tracker_neck.*``,
``tracker_model.*``) so that checkpoint keys map onto parameters one to one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import Sam3Config
from .detector import Detector
from .features import ImageFeatures, TrackerImageFeatures
from .neck import FPNNeck
from .tracker.tracker import Tracker


class Sam3Model(nn.Module):
    """Holds the weights; stateless. ``tracker_neck``/``tracker_model`` are None for detector-only checkpoints."""

    def __init__(self, config: Sam3Config) -> None:
        super().__init__()
        self.config = config
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

    def encode_image(self, pixels: Tensor, *, detector: bool = True, tracker: bool = False) -> ImageFeatures:
        """Run the ViT once and the necks that are asked for.

        Args:
            pixels: (B, 3, S, S) normalised to [-1, 1], S = ``config.image_size``.
        """
        if tracker and not self.has_tracker:
            raise ValueError("this checkpoint has no tracker (detector-only); interactive masks need facebook/sam3")
        trunk = self.detector_model.vision_encoder.backbone(pixels)
        out = ImageFeatures()
        if detector:
            out.detector = self.detector_model.vision_encoder.features_from_trunk(trunk)
        if tracker:
            out.tracker = self.tracker_features(trunk)
        return out

    def tracker_features(self, trunk: Tensor) -> TrackerImageFeatures:
        """Tracker-neck levels of a ViT output (B, C, g, g), with ``conv_s0``/``conv_s1`` applied."""
        fpn = self.tracker_neck(trunk, levels=(0, 1, 2))
        return self.tracker_model.image_features(fpn)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
