"""``Concept``: one ``add_concept`` call and everything the detect-and-track algorithm remembers about it (the
official per-session ``tracker_metadata`` and tracker inference states, one set per concept here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from torch import Tensor

from ....model.features import TextFeatures
from ..group import TrackGroup
from .confirmation import Confirmation
from .hotstart import HotstartBook


@dataclass(frozen=True)
class ConceptPrompt:
    """What defines a concept.

    text: the noun phrase, or None for exemplars only (the detector then reads the official placeholder "visual").
    frame: the frame of the exemplars (and of the first detection).
    boxes: (1, K, 4) normalised cxcywh of the model input, or None; box_labels: (1, K) int64 1 / 0.
    """

    text: Optional[str]
    frame: int
    boxes: Optional[Tensor] = None
    box_labels: Optional[Tensor] = None

    def exemplars_on(self, frame: int) -> bool:
        """Whether the exemplar boxes prompt ``frame`` (their own frame only: there, new objects may come without a
        text)."""
        return self.boxes is not None and frame == self.frame

    def detects_on(self, frame: int) -> bool:
        """Whether detections may create or match tracks on ``frame``: with a text, on every frame; exemplars alone
        only on their frame (official ``allow_new_detections``)."""
        return self.text is not None or self.exemplars_on(frame)


@dataclass
class Concept:
    """One concept of a session.

    index: its position among the session's concepts (the order of ``add_concept`` calls).
    text_features: the encoded prompt text (or the placeholder).
    groups: its tracker states, one per frame's bucket of new detections (official: a new inference state per
        frame where objects are born), in creation order; the concept's objects are their rows in this order.
    book: the hot-start bookkeeping; last_occluded: object id -> last frame it was empty or suppressed.
    scores: object id -> the probability reported for it (its birth detection's; 1.0 after a refinement click).
    confirmation: object id -> masklet confirmation state (only with confirmation enabled).
    full_pending: direction (reverse?) -> a full detect-and-track pass is still to run in that direction (the
        official first forward and backward propagations after a prompt); later passes fetch the results.
    refined: direction -> objects refined by clicks whose groups a pass must track again (official partial
        propagation).
    exemplars_ahead: the frame after the exemplars' frame until its first detection, which reads the exemplars too
        (the official detector computes each frame's detections one frame ahead, while processing the previous
        frame and with that frame's prompt, so the frame after the exemplars' gets them; once); else None.
    """

    index: int
    prompt: ConceptPrompt
    text_features: TextFeatures
    groups: list[TrackGroup] = field(default_factory=list)
    book: HotstartBook = field(default_factory=HotstartBook)
    last_occluded: dict[int, int] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    confirmation: dict[int, Confirmation] = field(default_factory=dict)
    full_pending: dict[bool, bool] = field(default_factory=lambda: {False: True, True: True})
    refined: dict[bool, set] = field(default_factory=lambda: {False: set(), True: set()})
    exemplars_ahead: Optional[int] = None

    def __post_init__(self) -> None:
        if self.prompt.boxes is not None:
            self.exemplars_ahead = self.prompt.frame + 1

    @property
    def object_ids(self) -> list[int]:
        return [oid for g in self.groups for oid in g.object_ids]

    def group_of(self, obj_id: int) -> Optional[TrackGroup]:
        for g in self.groups:
            if obj_id in g.object_ids:
                return g
        return None

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in self.groups)
