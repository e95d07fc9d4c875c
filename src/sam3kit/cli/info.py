"""``sam3kit info SRC``: what a checkpoint holds, read from its headers (no weights are loaded).

Shows the format and files, the layout (Hugging Face ``facebook/sam3``, detector-only, or official ``sam3.pt``),
the architecture (from ``config.json``, else the released one), parameter counts and bytes per component, and
dtypes. ``--json`` prints the same as one JSON object. A ``.pt`` file is memory-mapped, not read.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

# (key prefix, component) in the Hugging Face layout; the first match wins, "other" catches the rest
HF_COMPONENTS = [
    ("detector_model.vision_encoder.backbone.", "vision encoder (ViT)"),
    ("detector_model.vision_encoder.neck.", "detector neck (FPN)"),
    ("detector_model.text_encoder.", "text encoder (CLIP)"),
    ("detector_model.text_projection.", "text encoder (CLIP)"),
    ("detector_model.geometry_encoder.", "geometry (exemplar) encoder"),
    ("detector_model.detr_encoder.", "fusion encoder"),
    ("detector_model.detr_decoder.", "DETR decoder"),
    ("detector_model.dot_product_scoring.", "DETR decoder"),
    ("detector_model.mask_decoder.", "segmentation head"),
    ("tracker_neck.", "tracker neck (FPN)"),
    ("tracker_model.prompt_encoder.", "tracker prompt encoder"),
    ("tracker_model.shared_image_embedding.", "tracker prompt encoder"),
    ("tracker_model.mask_decoder.", "tracker mask decoder"),
    ("tracker_model.memory_attention.", "tracker memory attention"),
    ("tracker_model.memory_encoder.", "tracker memory encoder"),
    ("tracker_model.mask_downsample.", "tracker memory encoder"),
    ("tracker_model.", "tracker (pointers, embeddings)"),
]
OFFICIAL_COMPONENTS = [
    ("detector.backbone.vision_backbone.trunk.", "vision encoder (ViT)"),
    ("detector.backbone.vision_backbone.convs.", "detector neck (FPN)"),
    ("detector.backbone.vision_backbone.sam2_convs.", "tracker neck (FPN)"),
    ("detector.backbone.language_backbone.", "text encoder (CLIP)"),
    ("detector.geometry_encoder.", "geometry (exemplar) encoder"),
    ("detector.transformer.encoder.", "fusion encoder"),
    ("detector.transformer.decoder.", "DETR decoder"),
    ("detector.dot_prod_scoring.", "DETR decoder"),
    ("detector.segmentation_head.", "segmentation head"),
    ("tracker.sam_prompt_encoder.", "tracker prompt encoder"),
    ("tracker.sam_mask_decoder.", "tracker mask decoder"),
    ("tracker.transformer.", "tracker memory attention"),
    ("tracker.maskmem_backbone.", "tracker memory encoder"),
    ("tracker.mask_downsample.", "tracker memory encoder"),
    ("tracker.", "tracker (pointers, embeddings)"),
]
LAYOUT_NAMES = {"hf": "Hugging Face (facebook/sam3 model.safetensors: detector + tracker)",
                "hf_detector": "Hugging Face detector-only (transformers Sam3Model.save_pretrained)",
                "official": "official (sam3.pt: detector + tracker)"}
# safetensors header dtype names -> torch names, and bytes per element
_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "C64": "complex64",
              "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
             "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16, "float8_e4m3fn": 1, "float8_e5m2": 1}


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser("info", parents=[common], formatter_class=formatter,
                       help="describe a checkpoint from its headers (no weights loaded)",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("source", metavar="SRC",
                   help="a folder, model.safetensors, sam3.pt, or a Hugging Face Hub id (read from the local "
                        "cache, else only the headers are fetched)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(run=run)


def normalise_dtype(name: str) -> str:
    return _ST_DTYPES.get(name, name.replace("torch.", ""))


def describe(source: str) -> dict[str, Any]:
    """The facts ``info`` prints, as a dict (see ``--json``)."""
    from ..weights.loader import detect_layout, read_config
    from ..weights.reader import TensorSource, locate

    path = _local_path(source)
    if path is None:
        return _describe_remote(source)
    files = locate(path)
    src = TensorSource(files)
    keys = src.keys()
    layout = detect_layout(keys)
    cfg = read_config(files, layout, None)
    tensors = [(k, tuple(src.shape(k)), normalise_dtype(src.dtype(k))) for k in keys]
    facts = _summarise(tensors, layout)
    facts.update(
        source=str(path), format=files.format,
        files=[{"path": str(f), "bytes": f.stat().st_size} for f in files.weights],
        config_file=str(files.config) if files.config else None,
        tokenizer_files=sorted(n for n in _TOKENIZER_NAMES if (files.root / n).is_file()),
        model=_model_facts(cfg))
    return facts


_TOKENIZER_NAMES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                    "bpe_simple_vocab_16e6.txt.gz")


def _local_path(source: str):
    from ..weights import hub

    p = Path(source).expanduser()
    if p.exists():
        return p
    if not hub.looks_like_hub_id(source):
        from ..errors import CheckpointError

        raise CheckpointError(f"{source}: no such file or directory, and not a Hugging Face Hub id (owner/name)")
    try:  # already downloaded?
        import huggingface_hub

        return Path(huggingface_hub.snapshot_download(source, allow_patterns=hub.HUB_PATTERNS,
                                                      local_files_only=True))
    except Exception:
        return None


def _describe_remote(repo_id: str) -> dict[str, Any]:
    """Headers of a Hub repository's safetensors files, fetched without the weights."""
    from ..errors import CheckpointError
    from ..weights.loader import detect_layout

    try:
        import huggingface_hub

        meta = huggingface_hub.get_safetensors_metadata(repo_id)
    except Exception as e:
        raise CheckpointError(f"cannot read the headers of {repo_id} from the Hugging Face Hub "
                              f"({type(e).__name__}: {e}); download it first (`hf download {repo_id}`)") from e
    tensors = []
    for fm in meta.files_metadata.values():
        tensors.extend((k, tuple(t.shape), normalise_dtype(t.dtype)) for k, t in fm.tensors.items())
    layout = detect_layout([k for k, _, _ in tensors])
    facts = _summarise(tensors, layout)
    facts.update(source=repo_id, format="safetensors", files=[{"path": f"{repo_id}/{n}", "bytes": None}
                                                              for n in meta.files_metadata],
                 config_file=None, tokenizer_files=[], model=None)
    return facts


def _summarise(tensors: list[tuple[str, tuple[int, ...], str]], layout: str) -> dict[str, Any]:
    table = OFFICIAL_COMPONENTS if layout == "official" else HF_COMPONENTS
    prefix = "detector_model." if layout == "hf_detector" else ""
    comps: dict[str, dict[str, int]] = {}
    dtypes: Counter = Counter()
    dtype_bytes: Counter = Counter()
    total_params = total_bytes = 0
    for key, shape, dt in tensors:
        n = 1
        for s in shape:
            n *= int(s)
        b = n * _ITEMSIZE.get(dt, 4)
        name = next((c for p, c in table if (prefix + key).startswith(p)), "other")
        c = comps.setdefault(name, {"tensors": 0, "params": 0, "bytes": 0})
        c["tensors"] += 1
        c["params"] += n
        c["bytes"] += b
        dtypes[dt] += 1
        dtype_bytes[dt] += b
        total_params += n
        total_bytes += b
    rank = {c: i for i, (_, c) in enumerate(table)}
    comps = dict(sorted(comps.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    return {"layout": layout, "layout_name": LAYOUT_NAMES[layout], "tensors": len(tensors),
            "params": total_params, "bytes": total_bytes,
            "dtypes": {d: {"tensors": dtypes[d], "bytes": dtype_bytes[d]} for d in sorted(dtypes)},
            "components": comps}


def _model_facts(cfg) -> dict[str, Any]:
    from ..config import Sam3Config

    released = Sam3Config.released()
    det = cfg.detector
    same_detector = det == released.detector
    return {"released_architecture": cfg == released,
            "released_detector": same_detector,
            "tracker": cfg.tracker is not None,
            "image_size": cfg.image_size,
            "vit": f"{det.vit.num_layers} layers x {det.vit.hidden_size}, patch {det.vit.patch_size}",
            "text": f"{det.text.num_layers} layers x {det.text.hidden_size}, context {det.text.context_length}",
            "d_model": det.d_model, "queries": det.decoder.num_queries}


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def format_table(f: dict[str, Any]) -> str:
    lines = [f"source      {f['source']}"]
    sizes = [x["bytes"] for x in f["files"] if x["bytes"] is not None]
    nfiles = len(f["files"])
    lines.append(f"format      {f['format']}, {nfiles} file{'s' if nfiles != 1 else ''}"
                 + (f", {_size(sum(sizes))} on disk" if sizes else ""))
    lines.append(f"layout      {f['layout_name']}")
    m = f["model"]
    if m is not None:
        kind = "SAM 3, released architecture" if m["released_architecture"] else "SAM 3, custom architecture"
        lines.append(f"model       {kind} ({'detector + tracker' if m['tracker'] else 'detector only'}); "
                     f"config {'from ' + Path(f['config_file']).name if f['config_file'] else 'not found: released assumed'}")
        lines.append(f"            image {m['image_size']}, ViT {m['vit']}, text {m['text']}, "
                     f"d_model {m['d_model']}, {m['queries']} queries")
    if f.get("tokenizer_files") is not None:
        lines.append(f"tokenizer   {', '.join(f['tokenizer_files']) or 'none (concept prompts need tokenizer files)'}")
    lines.append("dtypes      " + ", ".join(f"{d} ({v['tensors']:,} tensors, {_size(v['bytes'])})"
                                          for d, v in f["dtypes"].items()))
    rows = [(name, c["tensors"], c["params"], c["bytes"]) for name, c in f["components"].items()]
    w = max(len("component"), *(len(r[0]) for r in rows)) if rows else len("component")
    lines.append("")
    lines.append(f"{'component'.ljust(w)}  {'tensors':>8}  {'parameters':>14}  {'size':>10}")
    for name, t, p, b in rows:
        lines.append(f"{name.ljust(w)}  {t:>8,}  {p:>14,}  {_size(b):>10}")
    lines.append(f"{'total'.ljust(w)}  {f['tensors']:>8,}  {f['params']:>14,}  {_size(f['bytes']):>10}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    facts = describe(args.source)
    print(json.dumps(facts, indent=2) if args.json else format_table(facts))
    return 0
