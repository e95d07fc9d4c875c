"""Video tracking from clicks, boxes and masks with the tracker's memory, and detect-and-track of concepts
(``VideoPredictor`` -> ``VideoSession``).

One concept per file: ``options`` (``VideoOptions``), ``results`` (``FrameResult`` and the compact result store),
``memory_bank`` (the bank and the pure policy choosing what each frame reads and what is kept), ``group`` (objects
tracked together: the official predictor's per-state algorithm), ``session`` (``VideoSession``), ``predictor``
(``VideoPredictor``), ``postprocess`` (low-resolution logits to the frame's output), ``checks`` (argument checks),
``passes`` (the frames of each propagation pass); ``concepts/``: concept detect-and-track (``add_concept``), its
options (``ConceptTrackOptions``), one module per heuristic and the ``ConceptTracker`` that runs them.
"""

from .concepts.options import ConceptTrackOptions
from .options import VideoOptions
from .predictor import VideoPredictor
from .results import FrameResult
from .session import VideoSession

__all__ = ["VideoOptions", "ConceptTrackOptions", "VideoPredictor", "VideoSession", "FrameResult"]
