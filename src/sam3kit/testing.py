"""Tiny random SAM 3 checkpoints in the released layouts, to try sam3kit without the gated weights.

The weights are random, so the masks mean nothing; everything else is real: the files are laid out as the
released ones (``facebook/sam3``: ``config.json`` + ``model.safetensors`` + tokenizer files; or the official
``sam3.pt`` + ``config.json``), they load strictly, and every API call and CLI command runs on them in seconds::

    from sam3kit.testing import tiny_checkpoint
    path = tiny_checkpoint("tiny-sam3")              # a folder; layout="official" writes sam3.pt instead
    model = sam3kit.load(path)
    predictor = sam3kit.ImagePredictor(model)
    predictor.set_image("photo.jpg")
    predictor.segment(text="a dog", threshold=0.0)   # random weights: lower the threshold to see instances

The test suite builds its checkpoints with the same functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from torch import nn

from .config import Sam3Config
from .errors import InputError, OutputError

LAYOUTS = ("hf", "official")


def randomize_(module: nn.Module, seed: int = 0, std: float = 0.02) -> nn.Module:
    """Fill every parameter and floating buffer of ``module`` with N(0, std) noise (deterministic in ``seed``).

    Norm weights are centred on 1 so activations keep a sensible scale; every tensor gets noise so that
    zero-initialised layers (last box-head layer, layer scales) are exercised.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(module.named_parameters()) + list(module.named_buffers()):
            if not p.is_floating_point():
                continue
            noise = torch.randn(p.shape, generator=g) * std
            leaf = name.rsplit(".", 1)[-1]
            parent = name.rsplit(".", 2)[-2] if name.count(".") else ""
            if leaf == "weight" and ("norm" in parent or "layer_norm" in parent) and p.dim() == 1:
                p.copy_(1.0 + noise)
            elif p.dim() <= 1 and leaf not in ("weight",):
                p.copy_(noise * 2.5)
            else:
                p.copy_(noise if p.numel() > 256 else noise * 20)
    return module


def write_tokenizer_files(directory: Union[str, Path], *, tokenizer_json: bool = False) -> Path:
    """Write the tokenizer files of the ``facebook/sam3`` repository into ``directory``: ``vocab.json`` and
    ``merges.txt``, made from the CLIP BPE vocabulary bundled with sam3kit (the one the official tokenizer
    loads), and with ``tokenizer_json`` also ``tokenizer.json`` + ``tokenizer_config.json`` as transformers'
    ``CLIPTokenizer`` saves them (needs transformers).

    facebook/sam3 ships the openai/clip-vit-base-patch32 tokenizer: the vocabulary is 256 byte symbols, the same
    with ``</w>``, the first 48,894 merges, then ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).
    """
    from .tokenizer import clip_vocab_and_merges

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    if tokenizer_json:
        try:
            from transformers import CLIPTokenizer
        except ImportError as e:
            raise InputError("tokenizer_json=True needs transformers (pip install transformers); vocab.json and "
                             "merges.txt alone are a complete tokenizer for sam3kit") from e
        tok = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges], model_max_length=32)
        tok.save_pretrained(str(directory))
    return directory


def tiny_checkpoint(path: Union[str, Path], *, layout: str = "hf", seed: int = 0,
                    config: Optional[Sam3Config] = None, tokenizer: bool = True, overwrite: bool = False) -> Path:
    """Write a random checkpoint into the folder ``path`` and return the folder (pass it to ``sam3kit.load`` or
    ``--model``).

    Args:
        layout: "hf" (``config.json`` + ``model.safetensors``, the ``facebook/sam3`` layout) or "official"
            (``sam3.pt`` + ``config.json``).
        seed: the random weights (``randomize_``); the same seed gives the same weights in both layouts.
        config: the architecture; default ``Sam3Config.tiny()`` (112 px input, loads and runs in about a second).
            The official layout needs a tracker (it holds detector and tracker).
        tokenizer: also write ``vocab.json`` + ``merges.txt`` (``write_tokenizer_files``).
        overwrite: replace the weights of an earlier call; by default existing weights raise ``OutputError``.
    """
    from .model.sam3 import Sam3Model
    from .weights.writer import save_hf, save_official

    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}: use 'hf' (facebook/sam3) or 'official' (sam3.pt)")
    cfg = config if config is not None else Sam3Config.tiny()
    if not isinstance(cfg, Sam3Config):
        raise InputError(f"config must be a Sam3Config, got {type(cfg).__name__}")
    folder = Path(path).expanduser()
    weights = folder / ("model.safetensors" if layout == "hf" else "sam3.pt")
    if weights.exists() and not overwrite:
        raise OutputError(f"{weights} exists already; pass overwrite=True to replace it")
    state = randomize_(Sam3Model(cfg).eval(), seed=seed).state_dict()
    if layout == "hf":
        save_hf(state, cfg, folder)
    else:
        save_official(state, cfg, weights)
    if tokenizer:
        write_tokenizer_files(folder)
    return folder
