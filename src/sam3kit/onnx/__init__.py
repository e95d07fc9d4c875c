"""ONNX export of sam3kit's own modules, and a runtime that needs no PyTorch.

Export (needs PyTorch and onnx; ``sam3kit export onnx SRC OUT_DIR`` on the command line)::

    import sam3kit
    from sam3kit.onnx import export_onnx
    model = sam3kit.load("facebook/sam3", fast=sam3kit.SpeedOptions(cpu_kernels=False))  # the plain model
    export_onnx(model, "sam3-onnx/", int8=True)

Run (numpy + onnxruntime + tokenizers + Pillow; no PyTorch)::

    from sam3kit.onnx import OnnxPredictor
    predictor = OnnxPredictor("sam3-onnx/")              # providers=["CUDAExecutionProvider", ...] for a GPU
    predictor.set_image("photo.jpg")
    found = predictor.segment(text="yellow school bus")   # a SegmentResult, as ImagePredictor.segment
    obj = predictor.predict(points=[[320, 240]])          # a PredictResult, as ImagePredictor.predict

The folder holds ``vision_encoder.onnx``, ``text_encoder.onnx``, ``detector.onnx``,
``prompt_encoder_mask_decoder.onnx`` (the last with the input and output names of the onnx-community
``sam3-tracker-ONNX`` graph that transformers.js reads), the tokenizer files and ``manifest.json``; ``contract.py``
documents every input and output. Importing ``sam3kit.onnx`` imports neither PyTorch nor onnxruntime.
"""

from __future__ import annotations

__all__ = ["OnnxPredictor", "export_onnx", "read_manifest", "graph_specs", "ModelDims"]

_HOMES = {"OnnxPredictor": "predictor", "export_onnx": "export", "read_manifest": "manifest",
          "graph_specs": "contract", "ModelDims": "contract"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'sam3kit.onnx' has no attribute {name!r}")
