"""A content fingerprint of a checkpoint: the same weights give the same fingerprint wherever they lie.

``sam3kit.load`` sets ``model.fingerprint`` to it (the image-encoding caches key on it) and the CLI can compare
it across runs. It depends on the bytes of the weight files and on the architecture, never on paths or file
times: a copied, moved or touched checkpoint keeps its fingerprint, different weights get another one.

What is read, per weight file (shards in the order of their names): the file size; the header (a safetensors
file's JSON header with every tensor's name, dtype, shape and offsets; a ``.pt`` file's zip directory with every
record's name, size and CRC-32, a checksum of its whole content); and ``SAMPLES`` blocks of ``BLOCK`` bytes at
evenly spaced offsets from the first byte to the last. That is about 1 MiB per file, whatever its size. Then the
architecture (the configuration the model is built with, as a ``config.json`` dict).

What it does not see: a change confined to bytes outside the sampled blocks of a safetensors file (one edited
tensor of an otherwise identical file). Weights that were trained or converted differ nearly everywhere and so in
the samples; an edited file meant to be told apart can be given another architecture or be re-saved.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path
from typing import Optional, Union

from ..config import Sam3Config

SAMPLES = 64
BLOCK = 16 * 1024
_VERSION = "sam3kit-fingerprint-1"


def weights_fingerprint(weights: list[Path], config: Sam3Config) -> str:
    """The fingerprint of the weight files ``weights`` (one, or the shards) built with ``config`` (hex SHA-256)."""
    h = hashlib.sha256(_VERSION.encode())
    for f in weights:
        _file_digest(Path(f), h)
    h.update(json.dumps(config.to_hf_dict(), sort_keys=True).encode())
    return h.hexdigest()


def checkpoint_fingerprint(source: Union[str, Path], *, config: Optional[Sam3Config] = None,
                           image_size: Optional[int] = None) -> str:
    """The fingerprint ``sam3kit.load(source, config=config, image_size=image_size)`` gives its model, without
    loading it (``source``: a local folder or weight file; the headers and sampled blocks are read)."""
    from .loader import detect_layout, read_config
    from .reader import TensorSource, locate

    files = locate(Path(source).expanduser())
    # the layout matters only without a config (a detector-only file then gets the released detector)
    layout = "hf" if config is not None or files.config is not None else detect_layout(TensorSource(files).keys())
    cfg = read_config(files, layout, config)
    if image_size is not None:
        cfg = cfg.with_image_size(image_size)
    return weights_fingerprint(files.weights, cfg)


def _file_digest(f: Path, h) -> None:
    size = f.stat().st_size
    h.update(f"|{size}|".encode())
    with open(f, "rb") as fh:
        h.update(_header(fh, f, size))
        for i in range(SAMPLES):
            offset = 0 if size <= BLOCK else (size - BLOCK) * i // (SAMPLES - 1)
            fh.seek(offset)
            h.update(fh.read(BLOCK))


def _header(fh, f: Path, size: int) -> bytes:
    """A safetensors header, or a zip (``.pt``) directory listing (name, size, CRC-32 per record); b"" for
    anything else (the sampled blocks still see its content)."""
    head = fh.read(8)
    if len(head) == 8 and head[:4] != b"PK\x03\x04":
        (n,) = struct.unpack("<Q", head)
        if 0 < n <= size - 8:
            return head + fh.read(n)
        return b""
    try:
        with zipfile.ZipFile(f) as z:
            # the first path component is the archive's name, which torch.save takes from the file name
            return "\n".join(f"{i.filename.partition('/')[2]}|{i.file_size}|{i.CRC}" for i in z.infolist()).encode()
    except (zipfile.BadZipFile, OSError):
        return b""
