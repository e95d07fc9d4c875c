"""``sam3kit convert SRC DST``: rewrite a checkpoint in the other layout and/or another dtype.

The source is loaded strictly (every tensor checked), then written atomically:

- DST ending in ``.pt``/``.pth``: official ``sam3.pt`` layout (fused q/k/v, RoPE tables), ``config.json`` beside it;
- DST ending in ``.safetensors``: Hugging Face ``facebook/sam3`` layout, ``config.json`` beside it;
- any other DST: a folder with ``model.safetensors`` + ``config.json`` (the ``facebook/sam3`` layout).

Tokenizer files beside the source are copied beside the destination. Detector-only checkpoints have no official
layout. ``--dtype`` casts floating tensors (default: the source's own dtype); existing files are kept unless
``--force``. Converting back and forth gives the same tensors and the same outputs.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

CONFIG_NAME, SAFETENSORS_NAME = "config.json", "model.safetensors"  # as in sam3kit.weights.reader (no torch here)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                   "bpe_simple_vocab_16e6.txt.gz")


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser("convert", parents=[common], formatter_class=formatter,
                       help="convert between the official .pt and the safetensors layouts, or change dtype",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("source", metavar="SRC", help="a folder, model.safetensors, sam3.pt or a Hugging Face Hub id")
    p.add_argument("dest", metavar="DST", help="a .pt / .pth file, a .safetensors file, or a folder")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None,
                   help="dtype of the floating tensors written (default: as in the source)")
    p.add_argument("--verify", action="store_true", help="read the written file back and compare every tensor")
    p.add_argument("--force", action="store_true", help="overwrite existing destination files")
    p.set_defaults(run=run)


def destination_files(dest: Path) -> tuple[str, Path, Path]:
    """(layout, weights path, folder of config.json and tokenizer files) for a DST argument."""
    if dest.suffix in (".pt", ".pth"):
        return "official", dest, dest.parent
    if dest.suffix == ".safetensors":
        return "hf", dest, dest.parent
    if dest.exists() and not dest.is_dir():
        from ..errors import InputError

        raise InputError(f"{dest} is a file of unknown type; DST must end in .pt, .pth or .safetensors, or be a folder")
    return "hf", dest / SAFETENSORS_NAME, dest


def source_dtype(src) -> str:
    """The most common floating dtype of a checkpoint ("fp32", "fp16" or "bf16"), from its headers."""
    from .info import normalise_dtype

    names = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
    counts = Counter(names[d] for d in (normalise_dtype(src.dtype(k)) for k in src.keys()) if d in names)
    return counts.most_common(1)[0][0] if counts else "fp32"


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..errors import CheckpointError, OutputError
    from ..io.writers import atomic_write, write_text
    from ..loading import parse_dtype, resolve
    from ..weights.loader import load_model
    from ..weights.reader import TensorSource, locate
    from ..weights.writer import hf_state_dict, official_state_dict

    src_path = resolve(args.source)
    files = locate(src_path)
    dtype_name = args.dtype or source_dtype(TensorSource(files))
    layout, weights, folder = destination_files(Path(args.dest).expanduser())
    if weights.resolve() in {f.resolve() for f in files.weights}:
        raise OutputError(f"{weights} is the source itself; write the conversion elsewhere")
    if not args.force and weights.exists():
        raise OutputError(f"{weights} exists already; pass --force to overwrite it")
    model = load_model(src_path, dtype=parse_dtype(dtype_name))
    cfg = model.config
    if layout == "official" and cfg.tracker is None:
        raise CheckpointError("this checkpoint is detector-only; the official sam3.pt layout holds detector and "
                              "tracker. Convert to .safetensors or a folder instead")
    state = model.state_dict()
    config_text = json.dumps(cfg.to_hf_dict(), indent=2)
    config_path = folder / CONFIG_NAME
    writes_config = not (config_path.is_file() and _same_json(config_path, config_text))
    if not args.force:
        for p in [weights] + ([config_path] if writes_config else []):
            if p.exists():
                raise OutputError(f"{p} exists already; pass --force to overwrite it")
    if layout == "official":
        sd = official_state_dict(state, cfg)
        atomic_write(weights, lambda fh: torch.save(sd, fh), overwrite=args.force)
    else:
        from safetensors.torch import save

        sd = {k: v.contiguous() for k, v in hf_state_dict(state, cfg).items()}
        atomic_write(weights, save(sd, metadata={"format": "pt"}), overwrite=args.force)
    if writes_config:
        write_text(config_path, config_text + "\n", overwrite=args.force)
    copied = []
    if folder.resolve() != files.root.resolve():
        for name in TOKENIZER_FILES:
            if (files.root / name).is_file() and (args.force or not (folder / name).exists()):
                atomic_write(folder / name, (files.root / name).read_bytes(), overwrite=True)
                copied.append(name)
    if args.verify:
        _verify(weights, state, parse_dtype(dtype_name))
    n = sum(v.numel() for v in state.values())
    print(f"wrote {weights} ({'official sam3.pt' if layout == 'official' else 'Hugging Face'} layout, "
          f"{dtype_name}, {len(sd)} tensors, {n:,} parameters)"
          + ("; config.json" if writes_config else "") + (f"; copied {', '.join(copied)}" if copied else ""))
    if args.verify:
        print("verified: every tensor reads back equal")
    sys.stdout.flush()
    return 0


def _same_json(path: Path, text: str) -> bool:
    import json

    try:
        return json.loads(path.read_text()) == json.loads(text)
    except (OSError, ValueError):
        return False


def _verify(weights: Path, state: dict, dtype) -> None:
    import torch

    from ..errors import CheckpointError
    from ..weights.loader import load_model

    back = load_model(weights, dtype=dtype).state_dict()
    bad = [k for k, v in state.items() if k not in back or not torch.equal(back[k], v)]
    if bad:
        raise CheckpointError(f"the written file does not read back equal: {len(bad)} tensors differ, e.g. {bad[:3]}")
