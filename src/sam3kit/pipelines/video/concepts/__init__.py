"""Concept detect-and-track in videos (official ``Sam3VideoBase``): ``options`` (``ConceptTrackOptions``), one
stateless module per step (``detections``: scores, NMS; ``associate``; ``hotstart``; ``occlusion``; ``overlap``:
the two non-overlap rules; ``confirmation``; ``outputs``: what a frame reports and the hot-start buffer), ``concept``
(one concept's state) and ``tracker`` (``ConceptTracker``, the per-frame algorithm on the session's groups)."""

from .options import ConceptTrackOptions

__all__ = ["ConceptTrackOptions"]
