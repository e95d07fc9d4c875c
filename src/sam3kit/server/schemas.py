"""The request and answer bodies of the ``/v1`` API (pydantic models; they make ``/openapi.json``).

Requests are strict: unknown fields, a string where a number goes, a boolean where a label goes, NaN or
infinity are refused (422) before the model runs. Coordinates are pixels of the original image (or frame):
points ``[x, y]``, boxes ``[x1, y1, x2, y2]``; labels 1 = foreground / positive, 0 = background / negative.
Whether a coordinate lies inside the image is checked against the image by the library (422 with its message).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

MAX_PROMPTS = 256  # points or boxes in one request
MAX_TEXT = 1000  # characters of a text prompt (the model reads 30 tokens; longer is refused by the library)

Point = Annotated[list[float], Field(min_length=2, max_length=2, description="[x, y] in pixels")]
Box = Annotated[list[float], Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")]
Label = Annotated[StrictInt, Field(ge=0, le=1)]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class Rle(BaseModel):
    """A binary mask as COCO RLE (pycocotools' compressed form): ``size`` [height, width], ``counts`` its string."""

    model_config = ConfigDict(strict=True, extra="forbid")
    size: Annotated[list[StrictInt], Field(min_length=2, max_length=2)]
    counts: str


class ErrorAnswer(BaseModel):
    error: str = Field(description="a short machine-readable code, e.g. image_not_found")
    message: str = Field(description="what went wrong and how to fix it")


# ----------------------------------------------------------------------------- images
class ImageStatus(BaseModel):
    image_id: str = Field(description="the content's id: the same bytes always give the same id")
    width: int
    height: int
    status: Literal["encoding", "ready", "failed"]
    progress: float = Field(description="fraction of the encoding done, 0..1")
    error: Optional[str] = Field(None, description="why the encoding failed")


class SegmentRequest(Strict):
    """Every instance of a concept: a text, exemplar boxes, or both."""

    text: Optional[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = None
    boxes: Optional[Annotated[list[Box], Field(min_length=1, max_length=MAX_PROMPTS)]] = None
    box_labels: Optional[Annotated[list[Label], Field(max_length=MAX_PROMPTS)]] = None
    threshold: Threshold = Field(0.5, description="keep instances scoring above it")
    mask_threshold: Threshold = 0.5


class SegmentObject(BaseModel):
    score: float = Field(description="sigmoid(class logit) x sigmoid(presence logit)")
    box: list[float] = Field(description="[x1, y1, x2, y2] pixels, not clipped")
    mask: Rle


class SegmentAnswer(BaseModel):
    segment_id: str = Field(description="names this answer in a later predict's mask_input")
    objects: list[SegmentObject] = Field(description="in the detector's query order (not sorted by score)")
    presence: float = Field(description="probability that the concept is in the image at all")


class MaskInput(Strict):
    """A mask to refine: object ``object`` of a ``segment`` answer (the latest on the image unless ``segment_id``
    names another of its recent ones), or a ``mask`` of the image's size."""

    object: Optional[Annotated[StrictInt, Field(ge=0)]] = None
    segment_id: Optional[str] = None
    mask: Optional[Rle] = None

    @model_validator(mode="after")
    def _one(self):
        if (self.object is None) == (self.mask is None):
            raise ValueError('give either "object" (an index into a segment answer) or "mask" (an RLE)')
        if self.segment_id is not None and self.object is None:
            raise ValueError('"segment_id" goes with "object"')
        return self


class PredictRequest(Strict):
    """One object from clicks, a box and/or a mask to refine."""

    points: Optional[Annotated[list[Point], Field(min_length=1, max_length=MAX_PROMPTS)]] = None
    point_labels: Optional[Annotated[list[Label], Field(max_length=MAX_PROMPTS)]] = None
    box: Optional[Box] = None
    mask_input: Optional[MaskInput] = None
    multimask: bool = Field(True, description="three masks (True) or one")


class PredictAnswer(BaseModel):
    masks: list[Rle] = Field(description="three masks with multimask, else one")
    iou_scores: list[float]
    object_score: float = Field(description="probability that the object is present")
    best: int = Field(description="index of the mask with the highest predicted IoU")


# ----------------------------------------------------------------------------- videos
class VideoStatus(BaseModel):
    session_id: str
    width: int
    height: int
    num_frames: Optional[int]
    fps: Optional[float]
    objects: list[int] = Field(description="object ids, in creation order")
    concepts: int = Field(description="concepts added (their indices are 0, 1, ...)")
    frames_with_results: int
    busy: bool = Field(description="True while a propagation of this session runs")


class FrameObject(BaseModel):
    id: int
    score: float = Field(description="object-presence probability")
    box: list[float] = Field(description="[x1, y1, x2, y2]: first and last foreground column and row; zeros if empty")
    mask: Rle
    concept: int = Field(-1, description="the index of the concept that found it; -1: made by clicks, a box or a mask")


class FrameAnswer(BaseModel):
    """One frame, the shape of a ``sam3kit track`` frames.jsonl line."""

    frame_index: int
    objects: list[FrameObject]


class PromptAnswer(FrameAnswer):
    obj_id: int = Field(description="the object the prompt went to (the new id when none was given)")


class ConceptAnswer(FrameAnswer):
    concept: int = Field(description="this concept's index")


class VideoPromptRequest(Strict):
    """Clicks, a box or a mask for one object on one frame (``VideoSession.add_prompt``)."""

    frame: Annotated[StrictInt, Field(ge=0)]
    obj_id: Optional[Annotated[StrictInt, Field(ge=0)]] = Field(None, description="None: a new object")
    points: Optional[Annotated[list[Point], Field(min_length=1, max_length=MAX_PROMPTS)]] = None
    point_labels: Optional[Annotated[list[Label], Field(max_length=MAX_PROMPTS)]] = None
    box: Optional[Box] = None
    mask: Optional[Rle] = None
    clear_old_points: bool = False


class VideoConceptRequest(Strict):
    """Every instance of a text and/or exemplar boxes on one frame, then tracked (``VideoSession.add_concept``)."""

    frame: Annotated[StrictInt, Field(ge=0)]
    text: Optional[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = None
    boxes: Optional[Annotated[list[Box], Field(min_length=1, max_length=MAX_PROMPTS)]] = None
    box_labels: Optional[Annotated[list[Label], Field(max_length=MAX_PROMPTS)]] = None


# ----------------------------------------------------------------------------- service
class Health(BaseModel):
    status: Literal["ok"]
    model_busy: bool
    images: int
    sessions: int


class Info(BaseModel):
    sam3kit: str
    model: dict
    limits: dict
    features: dict
