"""Segment everything: automatic masks for a whole image without a prompt (SAM 1's automatic mask generator on
SAM 3's tracker head). ``ImagePredictor.segment_everything`` is the entry point; ``generator.py`` describes the
algorithm, one step per module: ``grid.py`` (clicks), ``crops.py`` (crop layers and the way back), ``stability.py``,
``boxes.py``, ``upsampled.py`` (scores and boxes at the image size without upsampling), ``nms.py``, ``regions.py``
(small holes and islands), ``options.py``. Importing the package (for ``EverythingOptions``) imports no PyTorch;
``segment_everything`` loads the generator on first use."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from ...errors import InputError
from .options import MAX_CROP_LAYERS, MAX_POINTS_PER_BATCH, MAX_POINTS_PER_SIDE, EverythingOptions

__all__ = ["EverythingOptions", "segment_everything", "everything_options", "MAX_POINTS_PER_SIDE",
           "MAX_POINTS_PER_BATCH", "MAX_CROP_LAYERS"]


def everything_options(options: Optional[EverythingOptions], **overrides: Any) -> EverythingOptions:
    """``options`` (default ``EverythingOptions()``) with the keyword knobs that were given (not None) replaced;
    the result is validated (``InputError``)."""
    if options is None:
        options = EverythingOptions()
    elif not isinstance(options, EverythingOptions):
        raise InputError(f"options must be an EverythingOptions, got {type(options).__name__}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(options, **given) if given else options


def __getattr__(name: str):
    if name == "segment_everything":  # the generator needs torch: imported when used
        from .generator import segment_everything

        return segment_everything
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
