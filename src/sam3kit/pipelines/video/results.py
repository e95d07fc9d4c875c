"""``FrameResult`` (what every video call returns for one frame) and ``ResultStore`` (the compact copy a session
keeps of every frame it has produced, run-length encoded, so that any frame can be read again)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ...io.rle import decode_rle, encode_rle


@dataclass
class FrameResult:
    """The objects of one video frame. Arrays are numpy; coordinates are pixels of the original frame.

    frame_index: index of the frame in the video.
    object_ids: (N,) int64, in the order the objects were created.
    masks: (N, H, W) bool at the frame's size; an object absent from the frame has an all-false mask (it is
        never dropped).
    boxes: (N, 4) float32 pixel xyxy of each mask: the first and last column and row of the mask (inclusive
        pixel indices, as ``torchvision.ops.masks_to_boxes``); zeros for an empty mask.
    scores: (N,) float32 object-presence probability (sigmoid of the tracker's object-score logit; 0 for an
        object that has no output on this frame yet).
    mask_logits: (N, H, W) float32 mask logits at the frame's size with ``VideoOptions(return_logits=True)``, else
        None. Logits are not stored: results read again with ``VideoSession.result`` carry none, and an object of
        another group that is not recomputed on a prompted frame gets +-10 from its stored mask (in a session with
        concepts every object gets +-10 from its final mask).
    concepts: (N,) int64, the concept that found each object (the index of its ``add_concept`` call, 0, 1, ...),
        -1 for an object created by ``add_prompt``.

    In a session with concepts (``VideoSession.add_concept``), an object found by a concept is listed only on the
    frames where it is shown (official: a non-empty mask, not hidden by the heuristics), ``scores`` holds the
    probability of the detection that created it (1.0 once refined by clicks; the official ``out_probs``), and the
    masks of all listed objects never overlap (each pixel goes to the object the tracker is most sure of).
    Objects created by ``add_prompt`` are always listed, as without concepts.
    """

    frame_index: int
    object_ids: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    mask_logits: Optional[np.ndarray] = None
    concepts: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.concepts is None:
            self.concepts = np.full((len(self.object_ids),), -1, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.object_ids.shape[0])

    def mask_of(self, obj_id: int) -> np.ndarray:
        """(H, W) bool mask of one object."""
        hits = np.nonzero(self.object_ids == obj_id)[0]
        if not len(hits):
            raise InputError(f"object {obj_id} is not in this result; objects: {self.object_ids.tolist()}")
        return self.masks[hits[0]]


def boxes_from_masks(masks: Tensor) -> Tensor:
    """(N, H, W) bool -> (N, 4) float32 xyxy: first/last foreground column and row (inclusive); zeros if empty."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4)
    cols = masks.any(dim=1)  # (N, W)
    rows = masks.any(dim=2)  # (N, H)
    xs = torch.arange(w, device=masks.device)
    ys = torch.arange(h, device=masks.device)
    big = max(h, w)
    x0 = torch.where(cols, xs, big).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1)
    y0 = torch.where(rows, ys, big).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return torch.where(cols.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


@dataclass
class StoredObject:
    """One object on one frame, compactly: its mask (COCO RLE at the frame's size and at the 4g low resolution),
    box, presence score, object-score logit and best predicted IoU; for an object found by a concept also the
    concept and its non-overlap priority on this frame (official tracker score: the presence probability, the
    detection probability on its first frame)."""

    rle: dict
    low_res_rle: dict
    box: tuple[float, float, float, float]
    score: float
    object_score: float
    iou: float
    concept: int = -1
    priority: Optional[float] = None

    @property
    def nbytes(self) -> int:
        """What the record takes in Python (objects, dicts, strings, numbers), as ``sys.getsizeof`` counts it."""
        n = sys.getsizeof(self) + sys.getsizeof(self.__dict__) + sys.getsizeof(self.box)
        n += sum(sys.getsizeof(v) for v in (*self.box, self.score, self.object_score, self.iou, self.concept,
                                               self.priority))
        for r in (self.rle, self.low_res_rle):
            n += sys.getsizeof(r) + sys.getsizeof(r["counts"]) + sys.getsizeof(r["size"])
            n += sum(sys.getsizeof(v) for v in r["size"])
        return n


_SLOT_BYTES = 3 * 8 + 28
"""A dict entry (hash, key, value pointers) and its int key."""


class ResultStore:
    """Every frame's latest result per object, run-length encoded (a few hundred bytes per object and frame)."""

    def __init__(self) -> None:
        self._frames: dict[int, dict[int, StoredObject]] = {}
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def frames(self) -> list[int]:
        return sorted(self._frames)

    def put(self, frame: int, obj_id: int, mask: np.ndarray, low_res_mask: np.ndarray, box, score: float,
            object_score: float, iou: float, *, concept: int = -1, priority: Optional[float] = None) -> None:
        rec = StoredObject(encode_rle(mask), encode_rle(low_res_mask), tuple(float(v) for v in box), float(score),
                           float(object_score), float(iou), int(concept),
                           None if priority is None else float(priority))
        self.put_record(frame, obj_id, rec)

    def put_record(self, frame: int, obj_id: int, rec: StoredObject) -> None:
        objs = self._frames.get(frame)
        if objs is None:
            objs = self._frames[frame] = {}
            self.nbytes += sys.getsizeof(objs) + _SLOT_BYTES
        old = objs.get(obj_id)
        if old is not None:
            self.nbytes -= old.nbytes
        objs[obj_id] = rec
        self.nbytes += rec.nbytes

    def put_logits(self, frame: int, obj_id: int, logits: Tensor, low_res: Tensor, object_score: float,
                   iou: float) -> None:
        """Store an object's output from its (H, W) logits at the frame's size and (4g, 4g) low-resolution logits."""
        self.put_logits_batch(frame, [obj_id], logits[None], low_res[None],
                              torch.tensor([object_score], dtype=torch.float64),
                              torch.tensor([iou], dtype=torch.float64))

    def put_logits_batch(self, frame: int, obj_ids: list[int], logits: Tensor, low_res: Tensor,
                         object_scores: Tensor, ious: Tensor) -> dict[int, tuple[np.ndarray, float]]:
        """``put_logits`` for N objects at once: (N, H, W) logits at the frame's size, (N, 4g, 4g) low-resolution
        logits, (N,) object-score logits and best IoUs, with one device-to-host copy of each instead of one per
        object (the same records). Returns obj id -> (the (H, W) bool mask, the presence score), what ``combine``
        takes as ``on_host`` so that it copies nothing again."""
        mask = logits > 0
        boxes = boxes_from_masks(mask).tolist()
        masks, lows = mask.cpu().numpy(), (low_res > 0).cpu().numpy()
        obj = object_scores.reshape(-1).double().tolist()  # exact for every float dtype
        iou = ious.reshape(-1).double().tolist()
        out = {}
        for i, oid in enumerate(obj_ids):
            score = float(torch.sigmoid(torch.tensor(obj[i])))
            self.put(frame, oid, masks[i], lows[i], boxes[i], score, obj[i], iou[i])
            out[oid] = (masks[i], score)
        return out

    def combine(self, frame: int, object_ids: list[int], computed: dict[int, tuple[Tensor, Tensor]],
                frame_size: tuple[int, int], *, with_logits: bool,
                on_host: Optional[dict[int, tuple[np.ndarray, float]]] = None) -> FrameResult:
        """A frame's ``FrameResult`` for ``object_ids``: ``computed`` (obj id -> ((H, W) logits, object-score
        logit)) for the objects just computed, the stored result (or an empty mask, score 0) for the others. With
        ``with_logits`` the stored objects get logits +-10 from their stored mask (logits are not stored).
        ``on_host``: obj id -> (bool mask, score) of computed objects already copied to the host
        (``put_logits_batch``), used instead of copying their logits again."""
        on_host = on_host or {}
        h, w = frame_size
        stored = self.frame_result(frame, [i for i in object_ids if i not in computed], h, w)
        pos = {oid: k for k, oid in enumerate(stored.object_ids.tolist())}
        n = len(object_ids)
        masks = np.zeros((n, h, w), dtype=bool)
        scores = np.zeros((n,), dtype=np.float32)
        logits_out = np.zeros((n, h, w), dtype=np.float32) if with_logits else None
        for i, oid in enumerate(object_ids):
            if oid in computed:
                lg, sc = computed[oid]
                if oid in on_host:
                    masks[i], scores[i] = on_host[oid]
                else:
                    masks[i] = (lg > 0).cpu().numpy()
                    scores[i] = float(torch.sigmoid(sc.float()))
                if logits_out is not None:
                    logits_out[i] = lg.float().cpu().numpy()
            else:
                k = pos[oid]
                masks[i], scores[i] = stored.masks[k], stored.scores[k]
                if logits_out is not None:
                    logits_out[i] = np.where(stored.masks[k], 10.0, -10.0)
        boxes = boxes_from_masks(torch.from_numpy(masks)).numpy().astype(np.float32)
        return FrameResult(frame_index=frame, object_ids=np.asarray(object_ids, dtype=np.int64), masks=masks,
                           boxes=boxes, scores=scores, mask_logits=logits_out)

    def get(self, frame: int, obj_id: int) -> Optional[StoredObject]:
        return self._frames.get(frame, {}).get(obj_id)

    def records(self, frame: int) -> dict[int, StoredObject]:
        """The stored objects of a frame (obj id -> record; a copy of the mapping)."""
        return dict(self._frames.get(frame, {}))

    def drop(self, frame: int, obj_id: int) -> None:
        """Forget one object's result on one frame (the frame stays produced)."""
        rec = self._frames.get(frame, {}).pop(obj_id, None)
        if rec is not None:
            self.nbytes -= rec.nbytes

    def mark(self, frame: int) -> None:
        """A frame produced with no object on it (a concept found nothing): ``has_frame`` is then True."""
        if frame not in self._frames:
            self._frames[frame] = {}
            self.nbytes += sys.getsizeof(self._frames[frame]) + _SLOT_BYTES

    def has_frame(self, frame: int) -> bool:
        return frame in self._frames

    def drop_object(self, obj_id: int, *, keep_frames: bool = False) -> None:
        """Forget an object's results on every frame; a frame left without results is forgotten too unless
        ``keep_frames``."""
        for frame in list(self._frames):
            rec = self._frames[frame].pop(obj_id, None)
            if rec is not None:
                self.nbytes -= rec.nbytes
            if not self._frames[frame] and not keep_frames:
                self.nbytes -= sys.getsizeof(self._frames[frame]) + _SLOT_BYTES
                del self._frames[frame]

    def clear(self) -> None:
        self._frames.clear()
        self.nbytes = 0

    def frame_result(self, frame: int, object_ids: list[int], height: int, width: int) -> FrameResult:
        """The stored result of ``frame`` for ``object_ids`` (objects without a stored result: empty, score 0)."""
        recs = self._frames.get(frame, {})
        n = len(object_ids)
        masks = np.zeros((n, height, width), dtype=bool)
        boxes = np.zeros((n, 4), dtype=np.float32)
        scores = np.zeros((n,), dtype=np.float32)
        for i, oid in enumerate(object_ids):
            rec = recs.get(oid)
            if rec is None:
                continue
            masks[i] = decode_rle(rec.rle)
            boxes[i] = rec.box
            scores[i] = rec.score
        return FrameResult(frame_index=frame, object_ids=np.asarray(object_ids, dtype=np.int64), masks=masks,
                           boxes=boxes, scores=scores)

    def low_res_mask(self, frame: int, obj_id: int) -> Optional[np.ndarray]:
        rec = self.get(frame, obj_id)
        return None if rec is None else decode_rle(rec.low_res_rle)
