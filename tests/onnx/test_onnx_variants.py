"""The int8 and fp16 variants: what they hold, and their accuracy against the fp32 graphs (feature cosine, mask IoU,
score differences), on ONNX Runtime's CPU provider. The tiny random model says little about the released one's
accuracy: ``benchmarks/bench_onnx.py`` measures that at full size."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from sam3kit.onnx import OnnxPredictor


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


@pytest.fixture(scope="module")
def predictors(export_dir, image):
    out = {}
    for precision in ("fp32", "int8", "fp16"):
        p = OnnxPredictor(export_dir, precision=precision)
        p.set_image(image)
        out[precision] = p
    return out


def test_int8_graph_holds_7_bit_per_channel_weights(export_dir, plain_model):
    proto = onnx.load(str(export_dir / "vision_encoder_int8.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    integer = [n for n in proto.graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    vit = plain_model.config.detector.vit
    assert len(integer) == 6 * vit.num_layers  # q, k, v, o, fc1, fc2 of every ViT block
    for node in integer:
        w = inits[node.input[1]]
        assert w.dtype == np.int8 and -64 <= w.min() and w.max() <= 64, node.name  # 7 bits, symmetric
        assert not inits[node.input[3]].any()  # zero points 0
        assert inits[node.input[1].replace("_quantized", "_scale")].shape == (w.shape[1],)  # one scale per column
    assert not any(n.op_type == "MatMulInteger" for n in onnx.load(str(export_dir / "detector.onnx")).graph.node)


def test_int8_accuracy(predictors):
    fp32, int8 = predictors["fp32"], predictors["int8"]
    for name, value in fp32._image.features.items():
        assert _cosine(int8._image.features[name], value) > 0.999, name
    a, b = fp32.segment("a dog", threshold=0.0), int8.segment("a dog", threshold=0.0)
    assert np.abs(a.scores - b.scores).max() < 0.01
    assert min(_iou(x, y) for x, y in zip(a.masks, b.masks)) > 0.9
    for prompt in (dict(points=[[30, 40]]), dict(box=[10, 10, 60, 50])):
        x, y = fp32.predict(**prompt), int8.predict(**prompt)
        assert _iou(x.best_mask, y.best_mask) > 0.9 and np.abs(x.iou_scores - y.iou_scores).max() < 0.01


def test_fp16_graphs_compute_in_fp16_with_float32_io(export_dir):
    for name in ("vision_encoder", "text_encoder", "detector", "prompt_encoder_mask_decoder"):
        proto = onnx.load(str(export_dir / f"{name}_fp16.onnx"))
        floats = [t for t in proto.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
        big = [t for t in floats if np.prod(t.dims) >= 1024]
        assert big and all(t.data_type == TensorProto.FLOAT16 for t in big), name  # every weight matrix in fp16
        io = list(proto.graph.input) + list(proto.graph.output)
        assert all(v.type.tensor_type.elem_type != TensorProto.FLOAT16 for v in io), name


def test_fp16_numerics(predictors):
    """fp16 against fp32, both on ONNX Runtime's CPU provider (which runs the fp16 graphs in fp16 where it has fp16
    kernels)."""
    fp32, fp16 = predictors["fp32"], predictors["fp16"]
    for name, value in fp32._image.features.items():
        got = fp16._image.features[name]
        assert got.dtype == np.float32
        assert _cosine(got, value) > 0.9999, name
        assert np.abs(got - value).max() <= 2e-3 * np.abs(value).max(), name
    a, b = fp32.segment("a dog", threshold=0.0, return_mask_logits=True), fp16.segment("a dog", threshold=0.0,
                                                                                         return_mask_logits=True)
    assert np.abs(a.scores - b.scores).max() < 2e-3
    assert np.abs(a.mask_logits - b.mask_logits).max() <= 5e-3 * np.abs(a.mask_logits).max()
    for prompt in (dict(points=[[30, 40]]), dict(box=[10, 10, 60, 50], multimask=False)):
        x, y = fp32.predict(**prompt), fp16.predict(**prompt)
        assert np.abs(x.low_res_logits - y.low_res_logits).max() <= 5e-3 * np.abs(x.low_res_logits).max()
        assert np.abs(x.iou_scores - y.iou_scores).max() < 2e-3
