"""Checks of the arguments of ``VideoSession`` calls: what was expected, what was got."""

from __future__ import annotations

import operator
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ...io.video import FrameOutOfRange


def frame_index(frame: Any, num_frames: Optional[int], name: str = "frame") -> int:
    """A frame index of a video of ``num_frames`` frames (None: a stream of unknown length). ``FrameOutOfRange``
    (an ``InputError`` and ``IndexError``) outside the video, ``InputError`` for a non-integer."""
    if isinstance(frame, (bool, np.bool_)):
        raise InputError(f"{name} must be a frame index (int), got {frame!r}")
    try:
        i = operator.index(frame)
    except TypeError:
        raise InputError(f"{name} must be a frame index (int), got {type(frame).__name__}") from None
    if i < 0:
        raise FrameOutOfRange(f"{name} {i} is out of range: frame indexes start at 0")
    if num_frames is not None and i >= num_frames:
        raise FrameOutOfRange(f"{name} {i} is out of range: the video has {num_frames} frames (0..{num_frames - 1})")
    return i


def object_id(obj_id: Any) -> int:
    """An object id: an int >= 0."""
    if isinstance(obj_id, (bool, np.bool_)):
        raise InputError(f"obj_id must be an int >= 0, got {obj_id!r}")
    try:
        oid = operator.index(obj_id)
    except TypeError:
        raise InputError(f"obj_id must be an int >= 0, got {type(obj_id).__name__}") from None
    if oid < 0:
        raise InputError(f"obj_id must be an int >= 0, got {oid}")
    return oid


def frame_mask(mask: Any, frame_size: tuple[int, int]) -> Tensor:
    """A mask prompt: (H, W) (or (1, H, W)) bool or 0/1 at the frame's size -> (H, W) bool tensor."""
    h, w = frame_size
    a = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.shape != (h, w):
        raise InputError(f"mask must be an (H, W) = ({h}, {w}) bool array at the frame's size, got shape "
                         f"{list(a.shape)}")
    if a.dtype != np.bool_:
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isin(a, (0, 1))):
            raise InputError("mask must be bool (or 0/1 values)")
        a = a.astype(bool)
    return torch.from_numpy(np.ascontiguousarray(a))
