"""Text prompts: tokenize, cut the padding columns on the CPU, encode, and keep recent encodings.

The tokenizer pads every prompt to the context length (32 tokens). The text transformer is causal and every reader
of its output masks padding, so the columns after the last real token of the batch change no detection: they are
cut here, on the CPU, before the ids reach the device (the model encodes exactly what it is given).

A prompt longer than the context is an ``InputError`` that quotes its first words and its length, unless truncation
is asked for (``truncate=True``; ``segment(..., truncate_text=True)``, ``--truncate-text``): it is then cut as the
official model cuts every prompt, silently there, with a warning here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor

from ..errors import InputError
from ..model.features import TextFeatures
from ..model.sam3 import Sam3Model

if TYPE_CHECKING:
    from ..tokenizer import Sam3Tokenizer


QUOTE_CHARS = 40  # how much of an overlong prompt its error quotes


def quote_text(text: str, n: int = QUOTE_CHARS) -> str:
    """A prompt as error messages quote it: its first ``n`` characters, then "…" when there is more."""
    return repr(text if len(text) <= n else text[:n] + "…")


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
        self._items: OrderedDict[str, tuple[TextFeatures, int]] = OrderedDict()  # features, token count
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

    def check(self, text: str, truncate: bool = False) -> int:
        """The length of ``text`` in tokens (with the start and end tokens); raises ``InputError`` if it is longer
        than the context and ``truncate`` is False."""
        tok = self.tokenizer
        n = tok.num_tokens(text)
        if n > tok.context_length and not truncate:
            raise InputError(
                f"text prompt {quote_text(text)} is {n} tokens long, the model reads at most {tok.context_length}: "
                "shorten it, or allow the official cut to its first tokens (truncate_text=True; --truncate-text in "
                "the command line)")
        return n

    @torch.inference_mode()
    def get(self, text: str, truncate: bool = False) -> TextFeatures:
        """Features (1, L', d) and padding mask (1, L') of one prompt. An overlong prompt raises ``InputError``,
        or with ``truncate`` is cut to the context length as the official tokenizer cuts it (a warning is logged
        when it is first encoded)."""
        with self._lock:
            hit = self._items.get(text)
            if hit is not None:
                self._items.move_to_end(text)
        if hit is not None:
            feats, n = hit
            if n > self.tokenizer.context_length and not truncate:
                self.check(text, truncate=False)  # raises: this call did not allow the cut
            return feats
        n = self.check(text, truncate)
        ids, pad = trim_padding(*self.tokenizer([text], truncate=truncate))
        dev = self.model.device
        feats = self.model.encode_text(ids.to(dev), pad.to(dev))
        with self._lock:
            self._items[text] = (feats, n)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return feats
