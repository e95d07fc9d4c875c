"""Bad exports and bad inputs: a missing or mismatched graph, a manifest of another format version, inputs of the
wrong shape or type, a model the export refuses. Each error names the file or input and what was expected."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sam3kit.errors import CheckpointError, InputError, OutputError
from sam3kit.onnx import OnnxPredictor, export_onnx


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder, data) -> None:
    (folder / "manifest.json").write_text(json.dumps(data))


def test_missing_graph(export_copy):
    (export_copy / "detector.onnx").unlink()
    with pytest.raises(CheckpointError, match=r"detector\.onnx: missing; the export folder lists it"):
        OnnxPredictor(export_copy)


def test_graph_of_another_export(export_copy):
    shutil.copyfile(export_copy / "text_encoder_fp16.onnx", export_copy / "text_encoder.onnx")
    with pytest.raises(CheckpointError, match=r"text_encoder\.onnx: \d+ bytes, expected \d+"):
        OnnxPredictor(export_copy)
    # same size, other bytes: the sampled digest sees it
    data = bytearray((export_copy / "text_encoder_fp16.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (export_copy / "text_encoder_fp16.onnx").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="its content does not match manifest.json"):
        OnnxPredictor(export_copy, precision="fp16", verify=True)


def test_graph_with_another_interface(export_copy):
    """A graph whose manifest entry is consistent but which is another graph: refused when its session opens."""
    from sam3kit.onnx.export import _record

    shutil.copyfile(export_copy / "text_encoder.onnx", export_copy / "detector.onnx")
    data = _manifest(export_copy)
    data["graphs"]["detector"]["fp32"] = _record(export_copy / "detector.onnx")
    _write_manifest(export_copy, data)
    p = OnnxPredictor(export_copy)
    p.set_image(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(CheckpointError,
                       match=r"detector\.onnx: inputs \['input_ids'\] do not match the detector graph"):
        p.segment("a dog")


def test_graph_of_a_model_with_other_sizes(export_copy):
    data = _manifest(export_copy)
    data["model"]["detector_dim"] = 128  # the manifest of a wider model: the graphs' fixed sizes disagree
    _write_manifest(export_copy, data)
    p = OnnxPredictor(export_copy)
    with pytest.raises(CheckpointError, match=r"vision_encoder\.onnx: output detector_embeddings\.0 is tensor\(float\) "
                                              r"\['batch', 64, 32, 32\], expected .*\[batch, 128, 32, 32\]"):
        p.set_image(np.zeros((40, 50, 3), np.uint8))


def test_manifest_of_another_version(export_copy):
    data = _manifest(export_copy)
    data["format_version"], data["sam3kit_version"] = 99, "9.0.0"
    _write_manifest(export_copy, data)
    with pytest.raises(CheckpointError, match=r"export format version 99 \(written by sam3kit 9\.0\.0\), this sam3kit "
                                              r".* reads version 1: export the checkpoint again"):
        OnnxPredictor(export_copy)


def test_not_an_export(export_copy, tmp_path):
    with pytest.raises(CheckpointError, match="manifest.json: missing"):
        OnnxPredictor(tmp_path)
    with pytest.raises(CheckpointError, match="not a folder"):
        OnnxPredictor(tmp_path / "nothing")
    (export_copy / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        OnnxPredictor(export_copy)
    _write_manifest(export_copy, {"format": "something else"})
    with pytest.raises(CheckpointError, match="format 'something else', expected 'sam3kit-onnx'"):
        OnnxPredictor(export_copy)


def test_variant_not_exported(export_copy):
    data = _manifest(export_copy)
    del data["graphs"]["vision_encoder"]["int8"]
    _write_manifest(export_copy, data)
    with pytest.raises(CheckpointError, match="was not exported in int8 .*export with --int8"):
        OnnxPredictor(export_copy, precision="int8")
    with pytest.raises(InputError, match="precision must be one of fp32, int8, fp16"):
        OnnxPredictor(export_copy, precision="bf16")


def test_bad_providers_and_options(export_dir):
    with pytest.raises(InputError, match=r"execution providers \['NoSuchExecutionProvider'\] are not available"):
        OnnxPredictor(export_dir, providers=["NoSuchExecutionProvider"])
    with pytest.raises(InputError, match="options must be a PredictOptions"):
        OnnxPredictor(export_dir, options={"max_hole_area": 0})


def test_inputs_of_the_wrong_shape(export_dir, image):
    p = OnnxPredictor(export_dir)
    with pytest.raises(InputError, match="no image is set"):
        p.segment("a dog")
    p.set_image(image)
    vision = p.session("vision_encoder")
    with pytest.raises(InputError, match=r"vision_encoder: input pixel_values has shape \[1, 3, 100, 100\], expected "
                                         r"pixel_values float32 \[batch, 3, 112, 112\]"):
        vision.run({"pixel_values": np.zeros((1, 3, 100, 100), np.float32)})
    with pytest.raises(InputError, match="input pixel_values must be a numpy float32 array, got float64"):
        vision.run({"pixel_values": np.zeros((1, 3, 112, 112))})
    decoder = p.session("prompt_encoder_mask_decoder")
    feeds = {k: v for k, v in p._image.features.items() if k.startswith("image_embeddings")}
    with pytest.raises(InputError, match=r"input input_labels int64 \[batch, point_batch, num_points\] is missing"):
        decoder.run({"input_points": np.zeros((1, 1, 1, 2), np.float32),
                     "input_boxes": np.zeros((1, 0, 4), np.float32), **feeds})
    with pytest.raises(InputError, match="input input_boxes has batch 2, the other inputs 1"):
        decoder.run({"input_points": np.zeros((1, 1, 1, 2), np.float32), "input_labels": np.ones((1, 1, 1), np.int64),
                     "input_boxes": np.zeros((2, 0, 4), np.float32), **feeds})
    # the predictor's own checks, as ImagePredictor's
    with pytest.raises(InputError, match="lies outside the 130x90 image"):
        p.predict(points=[[500, 10]])
    with pytest.raises(InputError, match=r"mask_input must be the \(32, 32\) low-resolution logits"):
        p.predict(mask_input=np.zeros((64, 64)))
    with pytest.raises(InputError, match="describe several objects"):
        p.predict(points=np.zeros((2, 1, 2)))
    with pytest.raises(InputError, match="segment needs a text prompt, exemplar boxes, or both"):
        p.segment()
    with pytest.raises(InputError, match="box_labels must be 1"):
        p.segment(boxes=[[1, 1, 20, 20]], box_labels=[3])


def test_export_refuses(plain_model, default_model, export_dir, tmp_path):
    with pytest.raises(InputError, match="CPU speed swaps"):
        export_onnx(default_model, tmp_path / "a")
    with pytest.raises(InputError, match="opset must be an integer from 17 to 20"):
        export_onnx(plain_model, tmp_path / "b", opset=13)
    with pytest.raises(OutputError, match="holds an export already"):
        export_onnx(plain_model, export_dir)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        export_onnx(plain_model, tmp_path / "file")
