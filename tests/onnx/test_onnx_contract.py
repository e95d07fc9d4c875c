"""The exported graphs' interface: the names, dtypes and shapes transformers.js reads, the released sizes, dynamic
axes, no control flow, full-size shapes (on the meta device), external data."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.onnx.contract import GRAPHS, ModelDims, graph_specs
from sam3kit.onnx.sessions import session_options

# What transformers.js (packages/transformers/src/models/sam2/modeling_sam2.js; Sam3TrackerModel extends Sam2Model)
# feeds and reads: get_image_embeddings runs the "vision_encoder" session on pixel_values and passes its outputs on
# by name; forward picks the "prompt_encoder_mask_decoder" session's inputNames out of pixel outputs and prompts and
# reads these three outputs.
JS_VISION_INPUTS = {"pixel_values": ("tensor(float)", 4)}
JS_EMBEDDINGS = {f"image_embeddings.{i}": ("tensor(float)", 4) for i in range(3)}
JS_DECODER_INPUTS = {"input_points": ("tensor(float)", 4), "input_labels": ("tensor(int64)", 3),
                     "input_boxes": ("tensor(float)", 3), **JS_EMBEDDINGS}
JS_DECODER_OUTPUTS = {"iou_scores": ("tensor(float)", 3), "pred_masks": ("tensor(float)", 5),
                      "object_score_logits": ("tensor(float)", 3)}


def _session(path) -> ort.InferenceSession:
    # the package's options: the int8 torch path of another test may have made a global thread pool already
    return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])


def _args(args) -> dict:
    return {a.name: (a.type, len(a.shape)) for a in args}


def test_interactive_pair_has_the_transformers_js_interface(export_dir):
    vision = _session(export_dir / "vision_encoder.onnx")
    assert _args(vision.get_inputs()) == JS_VISION_INPUTS
    assert JS_EMBEDDINGS.items() <= _args(vision.get_outputs()).items()
    decoder = _session(export_dir / "prompt_encoder_mask_decoder.onnx")
    assert _args(decoder.get_inputs()) == JS_DECODER_INPUTS  # exactly: transformers.js feeds nothing else
    assert JS_DECODER_OUTPUTS.items() <= _args(decoder.get_outputs()).items()
    assert [a.name for a in decoder.get_overridable_initializers()] == ["input_masks"]

    # the three prompt forms of Sam2Model.forward, on a batch of two images
    pixels = np.random.default_rng(0).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    emb = dict(zip([o.name for o in vision.get_outputs()], vision.run(None, {"pixel_values": pixels})))
    emb = {k: v for k, v in emb.items() if k in JS_EMBEDDINGS}
    pts = np.array([[[[20.0, 30.0], [60.0, 40.0]]] * 3] * 2, dtype=np.float32)  # (2 images, 3 objects, 2 points)
    forms = {
        "points": {"input_points": pts, "input_labels": np.ones((2, 3, 2), dtype=np.int64),
                   "input_boxes": np.zeros((2, 0, 4), dtype=np.float32)},
        "boxes": {"input_points": np.zeros((2, 1, 0, 2), dtype=np.float32),
                  "input_labels": np.full((2, 3, 0), -1, dtype=np.int64),
                  "input_boxes": np.tile(np.array([10.0, 10.0, 80.0, 90.0], dtype=np.float32), (2, 3, 1))},
        "points and one box": {"input_points": pts, "input_labels": np.ones((2, 3, 2), dtype=np.int64),
                               "input_boxes": np.tile(np.array([10.0, 10.0, 80.0, 90.0], np.float32), (2, 1, 1))},
    }
    for name, prompts in forms.items():
        iou, masks, obj = decoder.run(list(JS_DECODER_OUTPUTS), {**prompts, **emb})
        assert (iou.shape, masks.shape, obj.shape) == ((2, 3, 3), (2, 3, 3, 32, 32), (2, 3, 1)), name
        assert np.isfinite(masks).all() and np.all((iou >= 0) & (iou <= 1)), name


def test_released_sizes_are_those_of_sam3_tracker_onnx():
    specs = graph_specs(ModelDims.from_config(Sam3Config.released()))
    shapes = {t.name: t.dims for s in specs.values() for t in s.inputs + s.outputs + s.optional_inputs}
    assert shapes["pixel_values"] == ("batch", 3, 1008, 1008)
    assert shapes["image_embeddings.0"] == ("batch", 32, 288, 288)
    assert shapes["image_embeddings.1"] == ("batch", 64, 144, 144)
    assert shapes["image_embeddings.2"] == ("batch", 256, 72, 72)
    assert shapes["input_points"] == ("batch", "point_batch", "num_points", 2)
    assert shapes["input_labels"] == ("batch", "point_batch", "num_points")
    assert shapes["input_boxes"] == ("batch", "num_boxes", 4)
    assert specs["prompt_encoder_mask_decoder"].outputs[1].dims == ("batch", "num_objects", 3, 288, 288)
    assert shapes["input_masks"] == ("batch", "num_masks", 288, 288)
    assert specs["detector"].outputs[0].dims == ("batch", 200)


def test_graphs_declare_the_contract_and_hold_no_control_flow(export_dir, plain_model):
    specs = graph_specs(ModelDims.from_config(plain_model.config))
    kinds = {1: "float32", 7: "int64", 9: "bool"}
    for precision in ("", "_int8", "_fp16"):
        for name in GRAPHS:
            path = export_dir / f"{name}{precision}.onnx"
            if not path.exists():
                assert precision == "_int8" and name != "vision_encoder"
                continue
            proto = onnx.load(str(path))
            ops = {n.op_type for n in proto.graph.node}
            assert not ops & {"If", "Loop", "Scan"}, (path.name, ops)
            spec = specs[name]
            declared = {v.name: (kinds[v.type.tensor_type.elem_type],
                                 tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim))
                        for v in list(proto.graph.input) + list(proto.graph.output)}
            want = {t.name: (t.dtype, t.dims) for t in spec.inputs + spec.optional_inputs + spec.outputs}
            assert declared == want, path.name


def test_full_size_shapes_on_the_meta_device():
    """The released model's graphs (traced here at the tiny size only) give the contract's shapes at 1008 px."""
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.onnx.export import _WRAPPERS, _sample_inputs

    # the released widths and sizes with one or two layers per stack (the depth changes no shape)
    rel = Sam3Config.released()
    det = rel.detector
    one = {f: replace(getattr(det, f), num_layers=1) for f in ("geometry", "encoder", "decoder")}
    cfg = replace(rel, detector=replace(det, vit=replace(det.vit, num_layers=2, global_attn_indexes=(1,)),
                                        text=replace(det.text, num_layers=1), **one))
    with torch.device("meta"):
        model = Sam3Model(cfg).eval()
    dims = ModelDims.from_config(cfg)
    for name, spec in graph_specs(dims).items():
        inputs = _sample_inputs(name, dims, model)
        sizes = {}
        for t, x in zip(spec.inputs + spec.optional_inputs, inputs):
            assert len(t.dims) == x.dim(), t.name
            for d, n in zip(t.dims, x.shape):
                if isinstance(d, str):
                    sizes.setdefault(d, n)
                else:
                    assert d == n, t.name
        sizes["num_objects"] = max(sizes.get("point_batch", 1), sizes.get("num_boxes", 1))
        with torch.no_grad():
            outs = _WRAPPERS[name](model)(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        assert [tuple(o.shape) for o in outs] == [tuple(sizes.get(d, d) for d in t.dims) for t in spec.outputs], name


def test_external_data_beside_a_large_graph(export_dir, export_copy, image):
    """A graph over the size limit keeps its weights in <file>.data; the manifest records both; it runs the same."""
    from sam3kit.errors import CheckpointError
    from sam3kit.onnx import OnnxPredictor
    from sam3kit.onnx.export import _record, save_model

    path = export_copy / "text_encoder.onnx"
    save_model(onnx.load(str(path)), path, limit=1024)
    data = export_copy / "text_encoder.onnx.data"
    assert data.stat().st_size > 10 * path.stat().st_size
    manifest = json.loads((export_copy / "manifest.json").read_text())
    manifest["graphs"]["text_encoder"]["fp32"] = _record(path)
    assert manifest["graphs"]["text_encoder"]["fp32"]["external_data"]["file"] == "text_encoder.onnx.data"
    (export_copy / "manifest.json").write_text(json.dumps(manifest))
    results = []
    for folder in (export_dir, export_copy):
        p = OnnxPredictor(folder)
        p.set_image(image)
        results.append(p.segment(text="a dog", threshold=0.0, return_mask_logits=True))
    assert np.array_equal(results[0].mask_logits, results[1].mask_logits)
    assert np.array_equal(results[0].scores, results[1].scores)
    data.unlink()
    with pytest.raises(CheckpointError, match=r"text_encoder\.onnx\.data: missing"):
        OnnxPredictor(export_copy)
