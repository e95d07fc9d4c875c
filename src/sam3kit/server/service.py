"""``Sam3Service``: what one server process holds: the model, the model lock, one ``ImagePredictor`` (used under
the lock, on the encoding of the image each request names), the image store and the video sessions."""

from __future__ import annotations

import secrets
from typing import Any, Optional

from ..errors import InputError
from ..io.rle import decode_rle
from ..model.sam3 import Sam3Model
from ..pipelines.cache import EncodingCache
from ..pipelines.encoding import ImageEncoder
from ..pipelines.image import ImagePredictor
from .answers import mask_to_mask_input, predict_answer, segment_answer
from .errors import ApiError
from .images import ImageStore
from .runner import ModelRunner
from .settings import ServerSettings
from .videos import VideoStore


class Sam3Service:
    """The model and everything the requests share.

    Args:
        model: a loaded ``Sam3Model`` (``sam3kit.load``).
        settings: the limits (``ServerSettings``).
        model_source: what the model was loaded from, shown by ``/v1/info``.
    """

    def __init__(self, model: Sam3Model, settings: ServerSettings = ServerSettings(), *,
                 model_source: Optional[str] = None) -> None:
        if not isinstance(model, Sam3Model):
            raise InputError(f"model must be a Sam3Model (sam3kit.load), got {type(model).__name__}")
        if not isinstance(settings, ServerSettings):
            raise InputError(f"settings must be a ServerSettings, got {type(settings).__name__}")
        self.model = model
        self.settings = settings
        self.model_source = model_source
        self.runner = ModelRunner(settings.model_wait_s)
        # The store keeps the encodings; the encoder's own cache would only hold a second reference to them.
        self.encoder = ImageEncoder(model, EncodingCache(max_items=0))
        self.predictor = ImagePredictor(model, encoder=self.encoder)
        self.images = ImageStore(self.encoder, self.runner, settings)
        self.videos: Optional[VideoStore] = None
        if model.has_tracker:
            from ..pipelines.video import VideoPredictor

            self.videos = VideoStore(VideoPredictor(model), self.runner, settings)

    @property
    def mask_input_size(self) -> int:
        """Side of the low-resolution mask grid (4g: 288 at the released size)."""
        return 4 * self.model.config.tracker.grid_size

    def require_videos(self) -> VideoStore:
        if self.videos is None:
            raise ApiError(422, "no_tracker", "this checkpoint has no tracker (detector only): videos need the full "
                                              "SAM 3 checkpoint")
        return self.videos

    # ------------------------------------------------------------------ images
    def segment(self, image_id: str, text: Optional[str], boxes: Any, box_labels: Any, threshold: float,
                mask_threshold: float) -> dict[str, Any]:
        with self.images.use(image_id) as (entry, state):
            with self.runner.hold("segment"):
                self.predictor.set_state(state)
                try:
                    result = self.predictor.segment(text=text, boxes=boxes, box_labels=box_labels,
                                                    threshold=threshold, mask_threshold=mask_threshold)
                finally:
                    self.predictor.reset_image()
            answer = segment_answer(result, secrets.token_hex(8))
            entry.remember_answer(answer["segment_id"], [o["mask"] for o in answer["objects"]])
        return answer

    def predict(self, image_id: str, points: Any, point_labels: Any, box: Any, mask_input: Optional[dict],
                multimask: bool) -> dict[str, Any]:
        if not self.model.has_tracker:
            raise ApiError(422, "no_tracker", "this checkpoint has no tracker (detector only): predict (clicks, "
                                              "boxes) needs the full SAM 3 checkpoint; segment works")
        with self.images.use(image_id) as (entry, state):
            low = None if mask_input is None else self._mask_input(entry, mask_input)
            with self.runner.hold("predict"):
                self.predictor.set_state(state)
                try:
                    result = self.predictor.predict(points=points, point_labels=point_labels, box=box,
                                                    mask_input=low, multimask=multimask)
                finally:
                    self.predictor.reset_image()
        return predict_answer(result)

    def _mask_input(self, entry, mask_input: dict):
        """``{"object": k[, "segment_id"]}`` or ``{"mask": RLE}`` -> (4g, 4g) float32 logits."""
        if mask_input.get("mask") is not None:
            rle = mask_input["mask"]
            if list(rle["size"]) != [entry.height, entry.width]:
                raise ApiError(422, "invalid_input", f"mask_input.mask has size {list(rle['size'])}, the image is "
                                                     f"[{entry.height}, {entry.width}] ([height, width])")
            try:
                mask = decode_rle(rle)
            except Exception as e:  # noqa: BLE001 - pycocotools raises plain errors on a bad string
                raise ApiError(422, "invalid_input", f"mask_input.mask is not a valid COCO RLE ({e})") from e
        else:
            answers = entry.answers
            sid = mask_input.get("segment_id")
            if sid is None:
                if not answers:
                    raise ApiError(409, "no_segment_answer", f"image {entry.image_id} has no segment answer yet: "
                                                             "mask_input.object refers to one (POST .../segment)")
                sid = next(reversed(answers))
            masks = answers.get(sid)
            if masks is None:
                raise ApiError(409, "segment_answer_gone", f"segment answer {sid} is not among the last "
                                                           f"{len(answers)} on image {entry.image_id}; segment again")
            k = mask_input["object"]
            if not 0 <= k < len(masks):
                raise ApiError(422, "invalid_input", f"mask_input.object {k} is out of range: segment answer {sid} "
                                                     f"has {len(masks)} object{'s' if len(masks) != 1 else ''}")
            mask = decode_rle(masks[k])
        return mask_to_mask_input(mask, self.mask_input_size)

    # ------------------------------------------------------------------ service
    def info(self) -> dict[str, Any]:
        from .. import __version__

        m = self.model
        try:
            import av  # noqa: F401

            video_files = True
        except ImportError:
            video_files = False
        from ..pipelines.video import VideoSession

        return {"sam3kit": __version__,
                "model": {"source": self.model_source, "fingerprint": getattr(m, "fingerprint", None),
                          "device": str(m.device), "dtype": str(m.dtype).replace("torch.", ""),
                          "image_size": int(m.config.image_size), "tracker": bool(m.has_tracker),
                          "mask_input_size": self.mask_input_size if m.has_tracker else None},
                "limits": {k: v for k, v in self.settings.public().items() if k not in ("host", "port")},
                "features": {"video_files": video_files and m.has_tracker,
                             "video_concepts": m.has_tracker and hasattr(VideoSession, "add_concept")}}

    def close(self) -> None:
        self.images.close()
        if self.videos is not None:
            self.videos.close()
