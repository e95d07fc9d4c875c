"""``manifest.json`` of an export folder: what was exported, from which weights, and how to feed it.

Written last by the export (so a folder whose export stopped half-way has none), read first by the runtime::

    {"format": "sam3kit-onnx", "format_version": 1, "sam3kit_version": "0.1.0", "opset": 17,
     "source": {"path": "...", "fingerprint": "<the checkpoint's content fingerprint>"},
     "model": {"image_size": 1008, "grid_size": 72, "detector_dim": 256, "tracker_dim": 256, "num_queries": 200,
               "context_length": 32},
     "preprocessing": {...}, "tokenizer": {"files": ["vocab.json", "merges.txt"], ...},
     "graphs": {"vision_encoder": {"fp32": {"file": "vision_encoder.onnx", "bytes": ..., "sha256": ...,
                                            "sampled_sha256": ..., "external_data": null}, "int8": {...}}, ...}}

Each graph file (and its external ``.data`` file) has two digests: ``sha256`` of all its bytes, and
``sampled_sha256`` of its size and 64 blocks of 16 KiB at evenly spaced offsets (about 1 MiB read whatever the
size, as the checkpoint fingerprint does). The runtime checks sizes and sampled digests when it opens an export
(a graph of another export has other weights nearly everywhere, so other samples), and every byte with
``verify=True``. No PyTorch here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from ..errors import CheckpointError, InputError
from .contract import FORMAT, FORMAT_VERSION, GRAPHS, MANIFEST_NAME, PRECISIONS, TRACKER_GRAPHS, ModelDims

SAMPLES = 64
BLOCK = 16 * 1024

IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
RESCALE = 1.0 / 255.0


def preprocessing(image_size: int) -> dict[str, Any]:
    """The preprocessing constants of the official image path, as the manifest records them."""
    return {"image_size": image_size,
            "resize": "square, aspect ratio not kept; bilinear with antialiasing on uint8 values (PIL / torch's "
                      "uint8 kernel, int16 fixed-point weights), horizontal pass first",
            "rescale_factor": RESCALE, "image_mean": list(IMAGE_MEAN), "image_std": list(IMAGE_STD),
            "layout": "RGB, (batch, 3, S, S) float32 in [-1, 1]",
            "coordinates": "clicks and boxes of prompt_encoder_mask_decoder: pixels of the S x S model input; "
                           "detector exemplar boxes: cxcywh normalised by the original image size"}


def file_record(path: Path) -> dict[str, Any]:
    """{"file", "bytes", "sha256", "sampled_sha256"} of one file (its name relative to the export folder)."""
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path),
            "sampled_sha256": sampled_sha256(path)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def sampled_sha256(path: Path) -> str:
    """SHA-256 of the size and ``SAMPLES`` blocks of ``BLOCK`` bytes from the first byte to the last."""
    size = path.stat().st_size
    h = hashlib.sha256(f"{size}|".encode())
    with open(path, "rb") as f:
        for i in range(SAMPLES):
            f.seek(0 if size <= BLOCK else (size - BLOCK) * i // (SAMPLES - 1))
            h.update(f.read(BLOCK))
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A read and checked ``manifest.json``: ``root`` (the export folder), ``data`` (the JSON), ``dims``."""

    root: Path
    data: dict[str, Any]
    dims: ModelDims

    @property
    def path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def precisions(self) -> dict[str, list[str]]:
        """Graph name -> the variants written ("fp32", "int8", "fp16")."""
        return {name: sorted(v) for name, v in self.data["graphs"].items()}

    def graph_names(self) -> tuple[str, ...]:
        return tuple(g for g in GRAPHS if self.dims.has_tracker or g not in TRACKER_GRAPHS)

    def graph_file(self, name: str, precision: str = "fp32", *, verify: bool = False) -> Path:
        """The checked path of graph ``name`` in ``precision``: the file (and its external data) exists, with the
        size and sampled digest the manifest records (every byte's digest too with ``verify``).
        ``CheckpointError`` otherwise, naming the file and what was expected."""
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        variants = self.data["graphs"].get(name)
        if variants is None:
            raise CheckpointError(f"{self.path}: no graph {name!r} in this export (a detector-only model has no "
                                  "prompt_encoder_mask_decoder)" if name in TRACKER_GRAPHS else
                                  f"{self.path}: no graph {name!r} in this export")
        rec = variants.get(precision)
        if rec is None:
            flag = {"int8": "--int8", "fp16": "--fp16"}.get(precision, "")
            raise CheckpointError(f"{self.path}: graph {name!r} was not exported in {precision} (written: "
                                  f"{', '.join(sorted(variants))}); export with {flag} for it".rstrip())
        path = self._check_file(rec, name, verify)
        if rec.get("external_data"):
            self._check_file(rec["external_data"], name, verify)
        return path

    def _check_file(self, rec: dict[str, Any], graph: str, verify: bool) -> Path:
        path = self.root / rec["file"]
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; the export folder lists it for graph {graph!r} "
                                  f"({rec['bytes']} bytes): copy the whole folder, or export again")
        size = path.stat().st_size
        if size != rec["bytes"]:
            raise CheckpointError(f"{path}: {size} bytes, expected {rec['bytes']} as {MANIFEST_NAME} records; the "
                                  "file is truncated or of another export: export again")
        if sampled_sha256(path) != rec["sampled_sha256"] or (verify and sha256_file(path) != rec["sha256"]):
            raise CheckpointError(f"{path}: its content does not match {MANIFEST_NAME} (another export's file, or "
                                  "changed after the export): export again, or copy the folder as a whole")
        return path

    def fingerprint(self, variants: dict[str, str]) -> str:
        """A content fingerprint of the graphs a runtime reads (``variants``: graph name -> precision) and of the
        checkpoint they came from: the sampled digests the manifest records (the files are checked against them
        on opening), so a copied or renamed export has the same fingerprint and another export another one."""
        graphs = self.data["graphs"]
        parts = {"source": (self.data.get("source") or {}).get("fingerprint"),
                 "graphs": {name: graphs[name][prec]["sampled_sha256"] for name, prec in sorted(variants.items())}}
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        return f"onnx-{digest[:32]}"

    def tokenizer_files(self) -> list[Path]:
        files = [self.root / f for f in self.data["tokenizer"]["files"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{self.path}: tokenizer files missing: {', '.join(missing)}")
        return files


def read_manifest(root: Path) -> Manifest:
    """Read and check ``root/manifest.json`` (``CheckpointError`` for a folder that is no export of this format
    version, with what was found)."""
    root = Path(root).expanduser()
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a folder; expected an export folder of 'sam3kit export onnx' "
                              f"(with {MANIFEST_NAME})")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {root} is no finished ONNX export ('sam3kit export onnx SRC "
                              f"{root}' writes it last)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: format {got!r}, expected {FORMAT!r} (a manifest of 'sam3kit export onnx')")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: export format version {version!r} (written by sam3kit {data.get('sam3kit_version', '?')}), "
            f"this sam3kit ({__version__}) reads version {FORMAT_VERSION}: export the checkpoint again with this "
            "version")
    try:
        dims = ModelDims(**{k: int(data["model"][k]) for k in ModelDims.__dataclass_fields__})
        graphs = data["graphs"]
        for name in GRAPHS:
            if name in TRACKER_GRAPHS and not dims.has_tracker:
                continue
            rec = graphs[name]["fp32"]
            _ = rec["file"], rec["bytes"], rec["sampled_sha256"], rec["sha256"]
        _ = data["tokenizer"]["files"]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: incomplete manifest (missing or invalid entry {e}); export again") from e
    return Manifest(root=root, data=data, dims=dims)


def write_manifest(root: Path, data: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (a temporary file renamed into place)."""
    path = root / MANIFEST_NAME
    tmp = root / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def manifest_data(dims: ModelDims, graphs: dict[str, dict[str, Any]], *, opset: int, source: Optional[str],
                  fingerprint: Optional[str], tokenizer: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The JSON of a manifest (``graphs``: name -> precision -> file record)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "sam3kit_version": __version__, "opset": opset,
            "source": {"path": source, "fingerprint": fingerprint}, "model": dims.to_dict(),
            "preprocessing": preprocessing(dims.image_size), "tokenizer": tokenizer, "graphs": graphs,
            "config": config}
