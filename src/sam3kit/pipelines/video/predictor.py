"""``VideoPredictor``: a model and the video options; ``start(video)`` opens a ``VideoSession``.

    predictor = sam3kit.VideoPredictor(model)
    with predictor.start("clip.mp4") as session:             # a file, a folder of frames, a list, an iterator
        session.add_prompt(0, points=[[320, 240]])           # object 1 from a click on frame 0
        for result in session.propagate():                    # both directions from the earliest prompted frame
            ...                                               # result.masks (N, H, W), result.object_ids ...

    with predictor.start("clip.mp4") as session:
        session.add_concept(0, text="a person")              # every person on frame 0 (official detect-and-track)
        for result in session.propagate():                    # detected and tracked, new people as they appear
            ...                                               # result.concepts: which concept found each object
"""

from __future__ import annotations

from typing import Any, Optional

from ...errors import InputError
from ...io.video import FrameSource, open_video
from ...model.sam3 import NO_TRACKER, Sam3Model
from ..cache import EncodingCache
from ..encoding import EncoderOptions, ImageEncoder
from ..text import TextFeatureCache
from .options import VideoOptions
from .session import VideoSession


class VideoPredictor:
    """Click / box / mask tracking and concept detect-and-track in videos. Holds the model (composition), the
    options and the encoded concept texts; every ``start`` opens an independent session.

    Args:
        model: a loaded ``Sam3Model`` with its tracker (``sam3kit.load("facebook/sam3")``).
        options: ``VideoOptions`` (default: the released video model's tracker).
        encoder: an ``ImageEncoder`` of ``model`` to encode frames with (shared with other predictors); by default
            one without an in-memory cache (frames are seldom seen twice) that keeps the ViT's weights resident.
    """

    def __init__(self, model: Sam3Model, options: VideoOptions = VideoOptions(), *,
                 encoder: Optional[ImageEncoder] = None) -> None:
        if not isinstance(model, Sam3Model):
            raise InputError(f"model must be a Sam3Model (sam3kit.load), got {type(model).__name__}")
        if not model.has_tracker:
            raise InputError(NO_TRACKER)
        if not isinstance(options, VideoOptions):
            raise InputError(f"options must be a VideoOptions, got {type(options).__name__}")
        if encoder is None:
            encoder = ImageEncoder(model, EncodingCache(max_items=0), EncoderOptions(release_encoder_weights=False))
        elif encoder.model is not model:
            raise InputError("encoder= encodes with another model than the predictor's")
        self.model = model
        self.options = options
        self.encoder = encoder
        self.texts = TextFeatureCache(model)  # concept prompts, encoded once for all sessions

    def start(self, video: Any, *, max_pixels: Optional[int] = None) -> VideoSession:
        """Open a session on ``video``: a video file (PyAV), a folder of frames (numeric order), a list of frames
        (paths, PIL images, (H, W, 3) uint8 arrays), an iterator of frames (a stream: frames are pulled as
        propagation reaches them), or a ``FrameSource`` (left open when the session closes).

        Raises ``ImageError`` for a missing, unreadable or empty video, ``InputError`` for another kind of input.
        """
        owns = not isinstance(video, FrameSource)
        source = open_video(video, max_pixels=max_pixels)
        return VideoSession(self.model, source, self.encoder, self.options, owns_source=owns, texts=self.texts)
