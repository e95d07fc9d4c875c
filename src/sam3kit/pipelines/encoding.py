"""Image encoding, the one place where pixels become features: ``ImageEncoder`` -> ``ImageState``.

``ImageEncoder.encode(image)`` decodes the image, looks its encoding up in an ``EncodingCache``, otherwise
preprocesses it (square resize, [-1, 1]) and runs the ViT, applies the memory policy of ``EncoderOptions`` and
returns an ``ImageState``: the ViT output (the trunk) with the image's size and coordinate transform. The two necks
run on first use, once per state: ``state.detector_features()`` for concept prompts (with the prompt-independent
image terms) and ``state.tracker_features()`` for interactive prompts and video tracking.

Its three users:
    - ``ImagePredictor`` holds one state (``set_image`` / ``set_images``) and answers prompts on it.
    - A video session encodes one frame at a time and keeps the states of the frames it still needs::

          encoder = ImageEncoder(model, EncodingCache(max_items=0))   # frames are seldom seen twice
          state = encoder.encode(frame)                                # (H, W, 3) uint8
          feats = state.tracker_features()                             # conditioning / memory of this frame

    - A server shares one encoder (and so one cache and one model) between its request threads: ``encode`` keeps
      no state of its own, the cache is locked, and each state computes its necks once even when several threads
      ask at the same moment. Threads that miss the same image at once each run the ViT.

States are tensors on the model's device; dropping the state frees them (the cache keeps its own reference to the
trunk).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..io.image import ImageInput, load_image
from ..model.features import DetectorImageFeatures, TrackerImageFeatures
from ..model.sam3 import Sam3Model
from ..weights.pages import release_mapped
from .cache import EncodingCache, cache_key
from .coords import ImageTransform
from .preprocess import preprocess


@dataclass(frozen=True)
class EncoderOptions:
    """Memory policy of an ``ImageEncoder``.

    release_encoder_weights: after the ViT has run, give the pages of its memory-mapped weights back to the page
        cache (``weights.pages.release_mapped``): the resident memory stays lower by the ViT's weights (about
        1.8 GB at full size in fp32) while prompts run, and the next encoding reads them back from the page cache
        (memory, not disk, unless the system is short of it). Only unmodified weights mapped from a checkpoint
        file are affected; a model built in memory, converted to another dtype or quantized keeps its weights.
    """

    release_encoder_weights: bool = True


class ImageState:
    """One ``ImageEncoder.encode`` result: B encoded images (B = 1 for ``encode``, one video frame included).

    Attributes:
        trunk: (B, C, g, g) ViT output on the model's device, channels-last in memory (the layout the ViT returns
            and the necks' convolutions are fastest on).
        transforms: one ``ImageTransform`` per image (original size <-> model input).
    """

    def __init__(self, model: Sam3Model, trunk: Tensor, transforms: Sequence[ImageTransform]) -> None:
        if trunk.shape[0] != len(transforms):
            raise AssertionError(f"trunk batch {trunk.shape[0]} != {len(transforms)} transforms")
        self.model = model
        self.trunk = trunk
        self.transforms = tuple(transforms)
        self._detector: Optional[DetectorImageFeatures] = None
        self._tracker: Optional[TrackerImageFeatures] = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return (f"ImageState(images={len(self)}, sizes={self.sizes}, trunk={tuple(self.trunk.shape)}, "
                f"detector_features={self.has_detector_features}, tracker_features={self.has_tracker_features})")

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each original image."""
        return [t.image_size for t in self.transforms]

    @property
    def has_detector_features(self) -> bool:
        return self._detector is not None

    @property
    def has_tracker_features(self) -> bool:
        return self._tracker is not None

    @torch.inference_mode()
    def detector_features(self) -> DetectorImageFeatures:
        """Detector-neck levels and prompt-independent image terms of the B images (computed once, then kept)."""
        with self._lock:
            if self._detector is None:
                self._detector = self.model.detector_features(self.trunk)
            return self._detector

    @torch.inference_mode()
    def tracker_features(self) -> TrackerImageFeatures:
        """Tracker features of the B images (computed once, then kept). ``InputError`` for a detector-only
        checkpoint."""
        with self._lock:
            if self._tracker is None:
                self._tracker = self.model.tracker_features(self.trunk)
            return self._tracker


class ImageEncoder:
    """Preprocessing, the encoding cache, the ViT and its memory policy for one model.

    Args:
        model: a loaded ``Sam3Model`` (``sam3kit.load``).
        cache: image-encoding cache; by default a private in-memory LRU of 8 images. Share one between encoders
            of the same model or give it a directory to keep encodings across runs.
        options: the memory policy.
    """

    def __init__(self, model: Sam3Model, cache: Optional[EncodingCache] = None,
                 options: EncoderOptions = EncoderOptions()) -> None:
        if not isinstance(options, EncoderOptions):
            raise InputError(f"options must be an EncoderOptions, got {type(options).__name__}")
        self.model = model
        self.cache = cache if cache is not None else EncodingCache()
        self.options = options

    def encode(self, image: ImageInput) -> ImageState:
        """One image (a path, PIL image or (H, W, 3) uint8 array) -> its ``ImageState`` (B = 1)."""
        if isinstance(image, (list, tuple)):
            raise InputError("encode takes one image; for a list of images use encode_batch")
        return self.encode_arrays([load_image(image)])

    def encode_batch(self, images: Sequence[ImageInput]) -> ImageState:
        """A list of images -> one ``ImageState`` of B = len(images) images (any sizes; only the ones not in the
        cache run through the ViT, together)."""
        if not isinstance(images, (list, tuple)):
            raise InputError(f"encode_batch takes a list of images, got {type(images).__name__}; for one image "
                             "use encode")
        if not images:
            raise InputError("encode_batch got an empty list of images")
        return self.encode_arrays([load_image(im) for im in images])

    @torch.inference_mode()
    def encode_arrays(self, arrays: Sequence[np.ndarray]) -> ImageState:
        """Decoded RGB uint8 arrays (H, W, 3) -> their ``ImageState`` (the step after decoding, for callers that
        decode themselves, such as a video reader)."""
        if not arrays:
            raise InputError("no images to encode")
        m = self.model
        S, dev, dt = m.config.image_size, m.device, m.dtype
        vit = m.config.detector.vit
        shape = (1, vit.hidden_size, vit.grid_size, vit.grid_size)
        cached = self.cache.enabled
        keys = [cache_key(a, m.fingerprint, dt, S) if cached else None for a in arrays]
        found: list[Optional[Tensor]] = [self.cache.get(k, device=dev, dtype=dt, shape=shape) if cached else None
                                         for k in keys]
        todo = [i for i, t in enumerate(found) if t is None]
        if todo:
            trunk = m.image_trunk(preprocess([arrays[i] for i in todo], S, device=dev, dtype=dt))
            for j, i in enumerate(todo):
                found[i] = trunk[j:j + 1]
                if cached:
                    self.cache.put(keys[i], found[i])
            if self.options.release_encoder_weights and dev.type == "cpu":  # only host memory is file-mapped
                release_mapped(m.image_trunk_module().parameters())
        trunk = torch.cat(found) if len(found) > 1 else found[0]
        # channels-last, as the ViT returns it: a disk entry reads back channels-first, on which the necks'
        # convolutions take a slower path (and the image tokens would be a transposed view)
        trunk = trunk.contiguous(memory_format=torch.channels_last)
        transforms = [ImageTransform(height=a.shape[0], width=a.shape[1], size=S) for a in arrays]
        return ImageState(m, trunk, transforms)
