"""Text prompts: tokenize, cut the padding columns on the CPU, encode, and keep recent encodings.

The tokenizer pads every prompt to the context length (32 tokens). The text transformer is causal and every reader
of its output masks padding, so the columns after the last real token of the batch change no detection: they are
cut here, on the CPU, before the ids reach the device (the model encodes exactly what it is given).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor

from ..model.features import TextFeatures
from ..model.sam3 import Sam3Model

if TYPE_CHECKING:
    from ..tokenizer import Sam3Tokenizer


def trim_padding(input_ids: Tensor, padding_mask: Tensor) -> tuple[Tensor, Tensor]:
    """(B, L) ids and padding mask (True = pad) -> both cut to the longest real length of the batch (L' <= L:
    the last position that is not padding in some row, plus one; at least 1). CPU tensors in, views out."""
    used = (~padding_mask.bool()).any(dim=0)
    real = torch.nonzero(used)
    n = int(real.max()) + 1 if real.numel() else 1
    return input_ids[:, :n], padding_mask[:, :n]


class TextFeatureCache:
    """Encoded prompts of one model, most recent ``max_items`` kept (a prompt repeated on many images or frames is
    encoded once). Safe to share between threads.

    Args:
        model: the model whose text encoder runs.
        tokenizer: overrides ``model.tokenizer``; when both are None the bundled CLIP vocabulary is used
            (``Sam3Tokenizer.default()``, built on first use).
        max_items: prompts kept.
    """

    def __init__(self, model: Sam3Model, tokenizer: Optional[Sam3Tokenizer] = None, max_items: int = 32) -> None:
        self.model = model
        self._tokenizer = tokenizer
        self.max_items = max_items
        self._items: OrderedDict[str, TextFeatures] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def tokenizer(self) -> Sam3Tokenizer:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self.model.tokenizer
            if self._tokenizer is None:  # a model built in memory, not by sam3kit.load
                from ..tokenizer import Sam3Tokenizer

                self._tokenizer = Sam3Tokenizer.default()
            return self._tokenizer

    @torch.inference_mode()
    def get(self, text: str) -> TextFeatures:
        """Features (1, L', d) and padding mask (1, L') of one prompt; an overlong prompt raises ``InputError``."""
        with self._lock:
            hit = self._items.get(text)
            if hit is not None:
                self._items.move_to_end(text)
                return hit
        ids, pad = trim_padding(*self.tokenizer([text], truncate=False))  # overlong text: an error, not a cut
        dev = self.model.device
        feats = self.model.encode_text(ids.to(dev), pad.to(dev))
        with self._lock:
            self._items[text] = feats
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return feats
