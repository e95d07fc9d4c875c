"""The detector's image encoder: the shared ViT trunk and the detector neck (HF ``Sam3VisionModel``)."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import NeckConfig, ViTConfig
from .features import DetectorImageFeatures
from .neck import FPNNeck
from .position import sine_position_2d
from .vit import ViT

DETECTOR_LEVELS = (0, 1, 2)
"""Neck levels the detector reads: 4g, 2g, g (288, 144, 72 at release); the g/2 level is dropped."""


class VisionEncoder(nn.Module):
    """``backbone`` (the ViT, shared with the tracker) and ``neck`` (the detector's SimpleFPN).

    A container of the two (checkpoint keys ``detector_model.vision_encoder.*``) with no ``forward``: the ViT output
    feeds both necks, so callers run ``backbone`` once and then ``features_from_trunk`` (``Sam3Model.image_trunk``
    and ``Sam3Model.detector_features``)."""

    def __init__(self, vit: ViTConfig, neck: NeckConfig) -> None:
        super().__init__()
        self.backbone = ViT(vit)
        self.neck = FPNNeck(vit.hidden_size, neck)

    def features_from_trunk(self, trunk: Tensor) -> DetectorImageFeatures:
        """Detector features of a ViT output.

        Args:
            trunk: (B, C, g, g) output of ``backbone``.
        Returns:
            fpn = [(B, d, 4g, 4g), (B, d, 2g, 2g), (B, d, g, g)], pos = (d, g, g) sine map of the g x g level.
        """
        fpn = self.neck(trunk, levels=DETECTOR_LEVELS)
        last = fpn[-1]
        pos = sine_position_2d(last.shape[-2], last.shape[-1], last.shape[1], device=last.device, dtype=last.dtype)
        return DetectorImageFeatures(fpn=fpn, pos=pos)
