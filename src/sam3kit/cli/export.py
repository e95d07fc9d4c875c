"""``sam3kit export onnx SRC OUT_DIR``: the model as ONNX graphs split at the cache boundaries.

OUT_DIR gets vision_encoder.onnx (pixels -> both necks' levels), text_encoder.onnx (token ids -> text features),
detector.onnx (image and text features + exemplar boxes -> logits, boxes, presence, masks),
prompt_encoder_mask_decoder.onnx (clicks, boxes, mask + tracker features -> 3 masks, IoU, object score; the
interface of the onnx-community sam3-tracker-ONNX graph that transformers.js reads), the tokenizer files and
manifest.json (written last). sam3kit.onnx.OnnxPredictor and 'sam3kit segment --model OUT_DIR' run them without
PyTorch. The plain model is exported (no CPU speed swaps); --int8 adds vision_encoder_int8.onnx, --fp16 an fp16
copy of every graph.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser("export", parents=[common], formatter_class=formatter,
                       help="export the model to other runtimes (ONNX)",
                       description="Export the model to other runtimes. Formats: onnx.")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", parser_class=type(p))
    formats.required = True
    o = formats.add_parser("onnx", parents=[common], formatter_class=formatter,
                           help="ONNX graphs + manifest.json for sam3kit.onnx.OnnxPredictor, transformers.js, ...",
                           description=__doc__.split("\n\n", 1)[1])
    o.add_argument("source", metavar="SRC", help="a folder, model.safetensors, sam3.pt or a Hugging Face Hub id")
    o.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the graphs into")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (17 to 20)")
    o.add_argument("--int8", action="store_true",
                   help="also write vision_encoder_int8.onnx (dynamic int8 matrix products, 7-bit weights)")
    o.add_argument("--fp16", action="store_true", help="also write an fp16 copy of every graph (for GPUs)")
    o.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="export for N x N input instead of the checkpoint's 1008 (a multiple of 336)")
    o.add_argument("--force", action="store_true", help="replace an earlier export in OUT_DIR")
    o.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sam3kit

    from ..errors import InputError
    from ..onnx.contract import MAX_OPSET, MIN_OPSET

    if not MIN_OPSET <= args.opset <= MAX_OPSET:  # before the (long) load
        raise InputError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {args.opset}")
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise InputError("the ONNX export needs onnx and onnxruntime: pip install 'sam3kit[onnx]'") from e
    from ..onnx.export import export_onnx
    from ..onnx.manifest import read_manifest

    model = sam3kit.load(args.source, device="cpu", image_size=args.image_size,
                         fast=sam3kit.SpeedOptions(cpu_kernels=False))
    path = export_onnx(model, Path(args.out_dir), opset=args.opset, int8=args.int8, fp16=args.fp16,
                       source=str(args.source), overwrite=args.force)
    manifest = read_manifest(path.parent)
    for name, variants in manifest.data["graphs"].items():
        for precision, rec in sorted(variants.items()):
            extra = rec.get("external_data")
            size = rec["bytes"] + (extra["bytes"] if extra else 0)
            print(f"  {rec['file']:<42} {size / 2**20:9.1f} MiB" + (f" (weights in {extra['file']})" if extra else ""))
    print(f"wrote {path.parent} (opset {args.opset}; {manifest.path.name} last)")
    sys.stdout.flush()
    return 0
