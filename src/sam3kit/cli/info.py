"""``sam3kit info SRC``: what a checkpoint holds, read from its headers (no weights are loaded).

Shows the format and files, the layout (Hugging Face ``facebook/sam3``, detector-only, or official ``sam3.pt``),
the architecture (from ``config.json``, else the released one), the tokenizer that will be used, whether every
tensor of the model is in the file with its shape, and the parameters and bytes per component. ``--json`` prints
the same as one JSON object. A ``.pt`` file is memory-mapped, not read. A checkpoint that sam3kit would refuse
(a missing, unexpected or mis-shaped tensor) is described, then reported as an error (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# (key prefix, component) in the Hugging Face layout, which are also sam3kit's names; the first match wins, "other"
# catches the rest. The model's tensors are counted under these names whatever the file's layout.
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
# the same components by the official sam3.pt names, for the file's own tensors ("file_components" in --json)
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
    """The facts ``info`` prints, as a dict (see ``--json``).

    ``params`` counts the model's parameters as ``sam3kit.load`` and ``sam3kit convert`` do
    (``weights.counting.parameter_count``), ``components`` breaks them down; ``tensors`` and ``file_components``
    describe the file's own tensors; ``check`` says whether the model's tensors are all there.
    """
    from ..loading import tokenizer_source
    from ..weights.loader import config_origin, detect_layout, read_config
    from ..weights.matching import mismatch_error
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
    facts, match = _summarise(tensors, layout, cfg)
    origin = config_origin(files, None)
    if not match.complete:
        where = str(files.weights[0]) if len(files.weights) == 1 else str(files.root)
        facts["check"]["message"] = mismatch_error(match, where, origin, str(files.config or ""), **_INFO_WORDS).message
    kind, used = tokenizer_source(files.root)
    facts.update(
        source=str(path), format=files.format,
        files=[{"path": str(f), "bytes": f.stat().st_size} for f in files.weights],
        config_file=str(files.config) if files.config else None,
        config_origin=origin,
        tokenizer={"source": kind, "files": used},
        tokenizer_files=sorted(n for n in _TOKENIZER_NAMES if (files.root / n).is_file()),
        model=_model_facts(cfg))
    return facts


_INFO_WORDS = {"listed": "by info", "ending": " sam3kit.load would refuse it."}
_TOKENIZER_NAMES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                    "bpe_simple_vocab_16e6.txt.gz")


def _local_path(source: str):
    """The local path of ``source``; None for a Hub id that is not in the local cache (only its headers are
    fetched then)."""
    from ..errors import CheckpointError
    from ..weights import hub

    p = Path(source).expanduser()
    if p.exists():
        return p
    if not hub.looks_like_hub_id(source):
        raise CheckpointError(f"{source}: no such file or directory, and not a Hugging Face Hub id (owner/name)")
    try:  # already downloaded?
        import huggingface_hub

        return Path(huggingface_hub.snapshot_download(source, allow_patterns=hub.HUB_PATTERNS,
                                                      local_files_only=True))
    except Exception:
        return None


def _describe_remote(repo_id: str) -> dict[str, Any]:
    """Headers of a Hub repository's safetensors files (and its config.json), fetched without the weights."""
    from ..config import Sam3Config
    from ..errors import CheckpointError
    from ..weights.loader import detect_layout

    try:
        import huggingface_hub

        meta = huggingface_hub.get_safetensors_metadata(repo_id)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(
            f"{repo_id}: no such local file or folder; as a Hugging Face Hub id: cannot read its headers from the Hub "
            f"({type(e).__name__}: {first}). Check the path, or download the repository first "
            f"(`hf download {repo_id}`)") from e
    tensors = []
    for fm in meta.files_metadata.values():
        tensors.extend((k, tuple(t.shape), normalise_dtype(t.dtype)) for k, t in fm.tensors.items())
    layout = detect_layout([k for k, _, _ in tensors])
    cfg, config_file = None, None
    try:
        path = huggingface_hub.hf_hub_download(repo_id, "config.json")
        cfg, config_file = Sam3Config.from_hf_dict(json.loads(Path(path).read_text())), f"{repo_id}/config.json"
    except Exception:  # no config.json (or unreadable): the released architecture, as the loader assumes
        pass
    if cfg is None:
        cfg = Sam3Config.released().replace(tracker=None) if layout == "hf_detector" else Sam3Config.released()
    facts, match = _summarise(tensors, layout, cfg)
    if not match.complete:
        from ..weights.matching import mismatch_error

        facts["check"]["message"] = mismatch_error(match, repo_id, "file" if config_file else "assumed",
                                                   config_file, **_INFO_WORDS).message
    facts.update(source=repo_id, format="safetensors", files=[{"path": f"{repo_id}/{n}", "bytes": None}
                                                              for n in meta.files_metadata],
                 config_file=config_file, config_origin="file" if config_file else "assumed",
                 tokenizer=None, tokenizer_files=[], model=_model_facts(cfg))
    return facts


def _components(table, rows) -> dict[str, dict[str, int]]:
    """{component: {"tensors", "params", "bytes"}} of ``rows`` (name, numel, bytes), in the table's order."""
    comps: dict[str, dict[str, int]] = {}
    for key, n, b in rows:
        name = next((c for p, c in table if key.startswith(p)), "other")
        c = comps.setdefault(name, {"tensors": 0, "params": 0, "bytes": 0})
        c["tensors"] += 1
        c["params"] += n
        c["bytes"] += b
    rank = {c: i for i, (_, c) in enumerate(table)}
    return dict(sorted(comps.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _summarise(tensors: list[tuple[str, tuple[int, ...], str]], layout: str, cfg):
    """(the facts of the tensors, the ``KeyMatch`` of the file against the model of ``cfg``)."""
    from ..weights.counting import numel, parameter_count
    from ..weights.loader import expected_shapes
    from ..weights.matching import match_keys

    shapes = {k: s for k, s, _ in tensors}
    dtype_of = {k: d for k, _, d in tensors}
    dtypes: Counter = Counter()
    dtype_bytes: Counter = Counter()
    file_rows = []
    for key, shape, dt in tensors:
        n = numel(shape)
        b = n * _ITEMSIZE.get(dt, 4)
        dtypes[dt] += 1
        dtype_bytes[dt] += b
        file_rows.append(((("detector_model." if layout == "hf_detector" else "") + key), n, b))
    expected = expected_shapes(cfg)
    match = match_keys(shapes, expected, cfg, layout)
    filled = {ours: expected[ours] for ours in match.plan}
    model_rows = [(ours, numel(shape), numel(shape) * _ITEMSIZE.get(dtype_of[match.plan[ours][0][0]], 4))
                  for ours, shape in filled.items()]
    return {"layout": layout, "layout_name": LAYOUT_NAMES[layout], "tensors": len(tensors),
            "file_params": sum(n for _, n, _ in file_rows), "file_bytes": sum(b for _, _, b in file_rows),
            "model_tensors": len(filled), "params": parameter_count(filled), "bytes": sum(b for _, _, b in model_rows),
            "dtypes": {d: {"tensors": dtypes[d], "bytes": dtype_bytes[d]} for d in sorted(dtypes)},
            "components": _components(HF_COMPONENTS, model_rows),
            "file_components": _components(OFFICIAL_COMPONENTS if layout == "official" else HF_COMPONENTS, file_rows),
            "check": {"complete": match.complete, "summary": "" if match.complete else match.summary(),
                      "hint": match.hint, "problems": match.problem_lines(limit=None), "message": ""}}, match


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


def _tokenizer_line(tok: dict[str, Any]) -> str:
    if tok["source"] == "checkpoint":
        return f"the checkpoint's own ({' + '.join(tok['files'])})"
    if tok["source"] == "bundled":
        return ("the bundled CLIP vocabulary (no tokenizer files beside the weights; the vocabulary the official "
                "tokenizer loads)")
    return "vocab.json without merges.txt: loading fails; add merges.txt, or remove vocab.json to use the bundled one"


_CHECK_LIMIT = 20


def format_table(f: dict[str, Any]) -> str:
    lines = [f"source      {f['source']}"]
    sizes = [x["bytes"] for x in f["files"] if x["bytes"] is not None]
    nfiles = len(f["files"])
    lines.append(f"format      {f['format']}, {nfiles} file{'s' if nfiles != 1 else ''}"
                 + (f", {_size(sum(sizes))} on disk" if sizes else "") + f", {f['tensors']:,} tensors")
    lines.append(f"layout      {f['layout_name']}")
    m = f["model"]
    if m is not None:
        kind = "SAM 3, released architecture" if m["released_architecture"] else "SAM 3, custom architecture"
        config = ("config from " + Path(f["config_file"]).name if f.get("config_file")
                  else "no config.json found: the released architecture is assumed")
        lines.append(f"model       {kind} ({'detector + tracker' if m['tracker'] else 'detector only'}); {config}")
        lines.append(f"            image {m['image_size']}, ViT {m['vit']}, text {m['text']}, "
                     f"d_model {m['d_model']}, {m['queries']} queries")
    if f.get("tokenizer") is not None:
        lines.append(f"tokenizer   {_tokenizer_line(f['tokenizer'])}")
    lines.append("dtypes      " + ", ".join(f"{d} ({v['tensors']:,} tensors, {_size(v['bytes'])})"
                                          for d, v in f["dtypes"].items()))
    check = f["check"]
    if check["complete"]:
        lines.append("check       every tensor of the model is in the file, with its shape (values not read)")
    else:
        lines.append(f"check       sam3kit would refuse this checkpoint: {check['hint'] or check['summary']}")
        if f.get("config_origin") == "assumed":
            lines.append("              (no config.json found: the released architecture was assumed, and the "
                         "checkpoint is probably not the released size: put its config.json beside the weights)")
        shown = check["problems"][:_CHECK_LIMIT]
        lines.extend(f"              {p}" for p in shown)
        if len(check["problems"]) > len(shown):
            lines.append(f"              ... and {len(check['problems']) - len(shown)} more")
    rows = [(name, c["tensors"], c["params"], c["bytes"]) for name, c in f["components"].items()]
    w = max(len("component"), *(len(r[0]) for r in rows)) if rows else len("component")
    lines.append("")
    lines.append(f"{'component'.ljust(w)}  {'tensors':>8}  {'parameters':>14}  {'size':>10}")
    for name, t, p, b in rows:
        lines.append(f"{name.ljust(w)}  {t:>8,}  {p:>14,}  {_size(b):>10}")
    lines.append(f"{'total'.ljust(w)}  {f['model_tensors']:>8,}  {f['params']:>14,}  {_size(f['bytes']):>10}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..errors import CheckpointError

    facts = describe(args.source)
    print(json.dumps(facts, indent=2) if args.json else format_table(facts))
    check = facts["check"]
    if not check["complete"]:
        sys.stdout.flush()
        raise CheckpointError(check["message"])  # the tensors are listed above (in "problems" with --json)
    return 0
