"""The knobs of the image predictors (``ImagePredictor``, ``sam3kit.onnx.OnnxPredictor``): plain dataclasses that
import neither PyTorch nor a model, so that a runtime without PyTorch takes the same options."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np

from ..errors import InputError
from . import prompts as P


@dataclass(frozen=True)
class PredictOptions:
    """Post-processing of interactive masks (official ``SAM3InteractiveImagePredictor`` defaults).

    max_hole_area: background regions of at most this many low-resolution pixels (288 x 288 grid at release)
        become foreground before upsampling; 0 turns it off.
    max_sprinkle_area: foreground specks of at most this many low-resolution pixels become background.
    """

    max_hole_area: float = 256.0
    max_sprinkle_area: float = 0.0


@dataclass(frozen=True)
class SegmentOptions:
    """Knobs of ``segment`` / ``segment_batch`` (official ``Sam3Processor`` defaults).

    threshold: keep instances whose score (class x presence probability) is > threshold, in [0, 1].
    mask_threshold: mask pixels whose probability is > mask_threshold, in [0, 1].
    return_mask_logits: also return the (N, H, W) mask logits at the original size.
    return_semantic: also compute and return the (H, W) semantic-map logits.
    truncate_text: a text longer than the model's context (32 tokens with the start and end tokens) is cut to it,
        as the official model cuts every prompt (without a word there; a warning is logged here). False (default):
        such a text raises ``InputError``, since the words cut off are silently ignored.
    """

    threshold: float = 0.5
    mask_threshold: float = 0.5
    return_mask_logits: bool = False
    return_semantic: bool = False
    truncate_text: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", P.check_threshold(self.threshold, "threshold"))
        object.__setattr__(self, "mask_threshold", P.check_threshold(self.mask_threshold, "mask_threshold"))
        for name in ("return_mask_logits", "return_semantic", "truncate_text"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")


def segment_options(options: Optional[SegmentOptions], **overrides: Any) -> SegmentOptions:
    """``options`` (default ``SegmentOptions()``) with the keyword knobs that were given (not None) replaced."""
    if options is None:
        options = SegmentOptions()
    elif not isinstance(options, SegmentOptions):
        raise InputError(f"options must be a SegmentOptions, got {type(options).__name__}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(options, **given) if given else options
