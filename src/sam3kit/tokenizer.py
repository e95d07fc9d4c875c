"""The SAM 3 text tokenizer: CLIP byte-level BPE with the official cleaning, context 32 (the official
``SimpleTokenizer`` of the SAM 3 package, which the model was trained with).

The vocabulary and merges are read from the checkpoint's own tokenizer files (``tokenizer.json``, or
``vocab.json`` + ``merges.txt``) with the ``tokenizers`` library. Everything around the BPE follows the official
``SimpleTokenizer`` rather than the files' normalizer/pre-tokenizer, because the two differ:

- cleaning: ``ftfy.fix_text``, ``html.unescape`` twice, strip, collapse whitespace runs to one space, strip,
  lowercase (the files' normalizer does not unescape HTML entities);
- splitting: the official pattern ``<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|
  [^\\s\\p{L}\\p{N}]+`` (case-insensitive; one token per digit); the literal strings ``<start_of_text>`` and
  ``<end_of_text>`` in a prompt become the special ids, as in the official code;
- sequence: ``[start] + bpe + [end]`` in a context of 32, padded with id 0. The padding mask is ``ids == 0``,
  exactly as the official model derives it, so a non-word-final ``!`` (id 0) is masked too (HF's attention mask
  keeps it; the model was trained with the official mask). A longer text is cut to its first 31 ids followed
  by ``end``, like the official tokenizer; this is logged as a warning, or raised (``InputError``) with
  ``truncate=False``.

Known residual differences (checked on ~5000 texts against the official tokenizer): character classes use the
Unicode tables of the ``tokenizers`` regex engine, which may classify code points assigned in the newest Unicode
versions differently from the ``regex`` package the official code uses; the official case-insensitive pattern
silently drops a few combining marks that case-fold to letters (e.g. U+0345), which are kept here.
"""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

import numpy as np
from tokenizers import Regex, Tokenizer, pre_tokenizers
from tokenizers.models import BPE

from .errors import CheckpointError, InputError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

CONTEXT_LENGTH = 32
PAD_ID = 0
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
CLIP_START_ID, CLIP_END_ID = 49406, 49407  # their ids in the CLIP vocabulary (checked when it is built)
_OFFICIAL_START, _OFFICIAL_END = "<start_of_text>", "<end_of_text>"
_SPLIT_PATTERN = (r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")
# Python's str whitespace minus U+001C..U+001F = the whitespace of the official `regex`-package pattern.
_WHITESPACE = re.compile(r"[^\S\x1c-\x1f]+")


def clean_text(text: str) -> str:
    """The official text cleaning: ftfy, HTML unescape (twice), whitespace collapse, strip, lowercase."""
    import ftfy  # imported on first use: loading a model does not need it

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


class Sam3Tokenizer:
    """Turns text prompts into the (B, 32) ids and padding mask the text encoder takes.

    Build it with ``from_dir`` (a checkpoint directory) or ``from_files``. Stateless after construction.
    """

    def __init__(self, bpe: Union[BPE, Callable[[], BPE]], start_id: int, end_id: int, *,
                 context_length: int = CONTEXT_LENGTH) -> None:
        """``bpe``: the BPE model, or a function that builds it on first use (``default`` defers building the
        bundled vocabulary until a text is encoded)."""
        if not isinstance(context_length, int) or isinstance(context_length, bool) or context_length < 2:
            raise InputError(f"context_length must be an int of at least 2 (32 for SAM 3), got {context_length!r}")
        self._bpe_model: Optional[BPE] = None if callable(bpe) and not isinstance(bpe, BPE) else bpe
        self._bpe_factory = bpe if self._bpe_model is None else None
        self._split = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        self.start_id = start_id
        self.end_id = end_id
        self.context_length = context_length
        self._specials = {_OFFICIAL_START: start_id, _OFFICIAL_END: end_id}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dir(cls, path: PathLike, *, context_length: int = CONTEXT_LENGTH) -> "Sam3Tokenizer":
        """Read ``tokenizer.json`` from a checkpoint directory, else ``vocab.json`` + ``merges.txt``."""
        d = Path(path)
        if (d / "tokenizer.json").is_file():
            return cls.from_files(d / "tokenizer.json", context_length=context_length)
        if (d / "vocab.json").is_file() and (d / "merges.txt").is_file():
            return cls.from_files(vocab=d / "vocab.json", merges=d / "merges.txt", context_length=context_length)
        raise CheckpointError(
            f"no tokenizer files in {d}: expected tokenizer.json, or vocab.json and merges.txt (the files of the "
            "facebook/sam3 repository)")

    @classmethod
    def from_files(cls, tokenizer_json: Optional[PathLike] = None, *, vocab: Optional[PathLike] = None,
                   merges: Optional[PathLike] = None, context_length: int = CONTEXT_LENGTH) -> "Sam3Tokenizer":
        """Build from ``tokenizer_json``, or from ``vocab`` (vocab.json) and ``merges`` (merges.txt)."""
        if tokenizer_json is not None:
            try:
                tok = Tokenizer.from_file(str(tokenizer_json))
            except Exception as e:  # tokenizers raises plain Exceptions for missing/corrupt files
                raise CheckpointError(f"cannot read tokenizer file {tokenizer_json}: {e}") from e
            bpe = tok.model
            if not isinstance(bpe, BPE):
                raise CheckpointError(f"{tokenizer_json} holds a {type(bpe).__name__} model, expected the CLIP BPE")
            ids = tok.token_to_id(START_TOKEN), tok.token_to_id(END_TOKEN)
            source = str(tokenizer_json)
        elif vocab is not None and merges is not None:
            for p in (vocab, merges):
                if not Path(p).is_file():
                    raise CheckpointError(f"tokenizer file {p} does not exist")
            try:
                bpe = BPE.from_file(str(vocab), str(merges), end_of_word_suffix="</w>", continuing_subword_prefix="",
                                    unk_token=END_TOKEN)
            except Exception as e:
                raise CheckpointError(f"cannot read tokenizer files {vocab}, {merges}: {e}") from e
            ids = bpe.token_to_id(START_TOKEN), bpe.token_to_id(END_TOKEN)
            source = f"{vocab}, {merges}"
        else:
            raise InputError("give tokenizer_json, or both vocab and merges (the tokenizer files of a checkpoint "
                             f"directory); got tokenizer_json={tokenizer_json!r}, vocab={vocab!r}, merges={merges!r}")
        if bpe.end_of_word_suffix != "</w>":
            raise CheckpointError(f"{source}: BPE end_of_word_suffix is {bpe.end_of_word_suffix!r}, expected '</w>' "
                                  "(the CLIP vocabulary)")
        if None in ids:
            raise CheckpointError(f"{source}: special tokens {START_TOKEN} / {END_TOKEN} are missing; is this the "
                                  "CLIP tokenizer of facebook/sam3?")
        return cls(bpe, ids[0], ids[1], context_length=context_length)

    @classmethod
    def default(cls, *, context_length: int = CONTEXT_LENGTH) -> "Sam3Tokenizer":
        """The standard CLIP BPE vocabulary bundled with sam3kit (the file the official tokenizer loads), for
        checkpoints that come without tokenizer files (a bare ``sam3.pt``). Built on first use."""

        def build() -> BPE:
            vocab, merges = clip_vocab_and_merges()
            if (vocab.get(START_TOKEN), vocab.get(END_TOKEN)) != (CLIP_START_ID, CLIP_END_ID):
                raise CheckpointError(f"the bundled CLIP vocabulary has {START_TOKEN}={vocab.get(START_TOKEN)}, "
                                      f"{END_TOKEN}={vocab.get(END_TOKEN)}; expected {CLIP_START_ID}, {CLIP_END_ID}")
            return BPE(vocab=vocab, merges=[tuple(m.split()) for m in merges], end_of_word_suffix="</w>",
                       continuing_subword_prefix="", unk_token=END_TOKEN)

        return cls(build, CLIP_START_ID, CLIP_END_ID, context_length=context_length)

    def save_files(self, directory: PathLike) -> list[Path]:
        """Write this tokenizer's vocabulary and merges as ``vocab.json`` + ``merges.txt`` into ``directory``
        (``from_dir`` reads them back to the same tokenizer); returns the two paths."""
        return [Path(f) for f in self._bpe.save(str(directory))]

    @property
    def _bpe(self) -> BPE:
        if self._bpe_model is None:
            self._bpe_model = self._bpe_factory()
            self._bpe_factory = None
        return self._bpe_model

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """BPE ids of one text after cleaning, without start/end ids and without truncation."""
        if not isinstance(text, str):
            raise InputError(f"a text prompt must be a str, got {type(text).__name__}")
        cleaned = clean_text(text)
        if not cleaned:
            raise InputError(f"text prompt {text!r} is empty after cleaning; give at least one visible character")
        ids: list[int] = []
        for piece, _ in self._split.pre_tokenize_str(cleaned):
            special = self._specials.get(piece)
            if special is not None:
                ids.append(special)
            else:
                ids.extend(t.id for t in self._bpe.tokenize(piece))
        return ids

    def num_tokens(self, text: str) -> int:
        """Length of the full sequence (with start/end ids) before truncation; > ``context_length`` = truncated."""
        return len(self.encode(text)) + 2

    def __call__(self, texts: Union[str, Sequence[str]], *, truncate: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize a batch of prompts.

        Args:
            texts: list of B non-empty strings (a single str is taken as a batch of one).
            truncate: cut over-long texts as the official tokenizer does (logged as a warning); False raises.
        Returns:
            ids: (B, context_length) int64, ``[start] + bpe + [end]`` then 0s.
            padding_mask: (B, context_length) bool, True = padding. As in the official model it is ``ids == 0``,
                so the rare non-word-final ``!`` token (id 0, e.g. in ``"wow!😀"``) is masked too.
        """
        import torch

        ids, padding_mask = self.arrays(texts, truncate=truncate)
        return torch.from_numpy(ids), torch.from_numpy(padding_mask)

    def arrays(self, texts: Union[str, Sequence[str]], *, truncate: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``__call__`` with numpy results (the same ids and mask as (B, context_length) int64 / bool arrays), for
        callers without PyTorch (the ONNX runtime)."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, Sequence) or len(texts) == 0:
            raise InputError(f"expected a non-empty list of str prompts, got {texts!r}")
        n = self.context_length
        ids = np.full((len(texts), n), PAD_ID, dtype=np.int64)
        for i, text in enumerate(texts):
            seq = [self.start_id] + self.encode(text) + [self.end_id]
            if len(seq) > n:
                if not truncate:
                    raise InputError(f"text prompt {text!r} is {len(seq)} tokens long, the model reads at most {n}; "
                                     "shorten it or allow truncation")
                logger.warning("text prompt %r is %d tokens long; only the first %d are used", text, len(seq), n)
                seq = seq[: n - 1] + [self.end_id]
            ids[i, : len(seq)] = seq
        return ids, ids == PAD_ID


# ---------------------------------------------------------------------- the bundled CLIP vocabulary
BUNDLED_BPE = Path(__file__).with_name("assets") / "bpe_simple_vocab_16e6.txt.gz"
_NUM_MERGES = 49152 - 256 - 2


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins of the byte values, in vocabulary order (the CLIP / GPT-2 byte-level table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def clip_vocab_and_merges(bpe_file: PathLike = BUNDLED_BPE) -> tuple[dict[str, int], list[str]]:
    """vocab (token -> id, 49408 entries) and merge lines of a CLIP ``bpe_simple_vocab_16e6.txt.gz`` file:
    256 byte symbols, the same with ``</w>``, the first 48,894 merges, then the start and end tokens."""
    import gzip

    lines = gzip.open(bpe_file).read().decode("utf-8").split("\n")
    merges = lines[1: 1 + _NUM_MERGES]
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += [START_TOKEN, END_TOKEN]
    return {t: i for i, t in enumerate(tokens)}, merges
