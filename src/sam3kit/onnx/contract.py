"""The interface of the exported graphs: file names, input and output names, dtypes and shapes.

One table serves both sides: the export names the graphs' inputs and outputs from it, and the runtime checks every
graph it opens against it (a graph of another model or another export is refused with the difference). No PyTorch
here.

Dimensions are ints (fixed by the model) or names (dynamic axes). S = image size (1008 at release), g = S / 14
(72), d = detector width (256), t = tracker width (256), Q = detector queries (200).

``vision_encoder``: ``pixel_values`` (batch, 3, S, S) float32 in [-1, 1] -> ``image_embeddings.0`` (batch, t/8, 4g,
4g), ``image_embeddings.1`` (batch, t/4, 2g, 2g) (the tracker neck's fine levels after ``conv_s0`` / ``conv_s1``),
``image_embeddings.2`` (batch, t, g, g) (its g x g level, without the no-memory embedding), and
``detector_embeddings.0/1/2`` (batch, d, 4g / 2g / g) (the detector neck's levels). A detector-only model has the
detector outputs only.

``text_encoder``: ``input_ids`` (batch, num_tokens) int64 -> ``text_features`` (batch, num_tokens, d) (after the
1024 -> d projection). The tokenizer runs outside (its files lie beside the graphs); num_tokens <= 32.

``detector``: the three ``detector_embeddings``, ``text_features``, ``text_padding_mask`` (batch, num_tokens) bool
(True = padding: ``input_ids == 0``), ``input_boxes`` (batch, num_boxes, 4) float32 normalised cxcywh exemplars and
``input_box_labels`` (batch, num_boxes) int64 (1 positive, 0 negative, -1 padding: a text-only prompt passes one box
labelled -1) -> ``logits`` (batch, Q), ``pred_boxes`` (batch, Q, 4) normalised xyxy, ``presence_logits`` (batch,),
``pred_masks`` (batch, Q, 4g, 4g), ``semantic_logits`` (batch, 1, 4g, 4g). Every input has the same batch.

``prompt_encoder_mask_decoder``: the names, dtypes and shapes of the onnx-community ``sam3-tracker-ONNX`` graph that
transformers.js (``Sam3TrackerModel``) and sam3-rust run, so that they can run this one as it is:
``input_points`` (batch, point_batch, num_points, 2) float32 and ``input_labels`` (batch, point_batch, num_points)
int64 (1 foreground, 0 background, 2 / 3 box corners, -1 padding), ``input_boxes`` (batch, num_boxes, 4) float32
xyxy, all in pixels of the S x S model input, and the three ``image_embeddings`` -> ``iou_scores`` (batch,
num_objects, 3), ``pred_masks`` (batch, num_objects, 3, 4g, 4g) low-resolution logits (clamped to +-32 as the
official predictor returns them), ``object_score_logits`` (batch, num_objects, 1). Objects: point_batch and
num_boxes are each 1 or the object count (a box with clicks is the first prompt of each object, as in the official
predictor); ``num_points`` or ``num_boxes`` may be 0 (the transformers.js forms: boxes only with ``input_points``
(batch, 1, 0, 2) and ``input_labels`` (batch, num_boxes, 0); clicks only with ``input_boxes`` (batch, 0, 4)).
Beyond that graph: ``input_masks`` (batch, num_masks, 4g, 4g) float32 mask logits of a previous prediction, an
overridable initializer (not among the required inputs: its default is an empty (1, 0, 4g, 4g) = no mask;
num_masks 0 or the object count), and two more outputs, ``single_pred_masks`` (batch, num_objects, 1, 4g, 4g) and
``single_iou_scores`` (batch, num_objects, 1): the single-mask output with the official stability fallback
(``multimask=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

GRAPHS = ("vision_encoder", "text_encoder", "detector", "prompt_encoder_mask_decoder")
"""The graphs of an export, in the order they run."""
TRACKER_GRAPHS = ("prompt_encoder_mask_decoder",)
"""Graphs a detector-only model does not have."""
PRECISIONS = ("fp32", "int8", "fp16")
"""Variants of a graph: fp32 (always written), int8 (``--int8``: the vision encoder's matrix products), fp16
(``--fp16``: every graph, float32 inputs and outputs)."""
INT8_GRAPHS = ("vision_encoder",)
MANIFEST_NAME = "manifest.json"
FORMAT = "sam3kit-onnx"
FORMAT_VERSION = 1
"""Version of the export layout and of this contract; the runtime reads exports of this version only."""
DEFAULT_OPSET = 17
MIN_OPSET = 17
"""LayerNormalization (opset 17) keeps the norms one node each."""
MAX_OPSET = 20
"""The highest opset PyTorch's TorchScript-based exporter writes."""
MASK_LOGIT_CLAMP = 32.0
TEXT_PAD_ID = 0
EXTERNAL_DATA_LIMIT = 2 * 1024 ** 3
"""A graph whose serialized size passes this (protobuf's 2 GB) keeps its weights in ``<file>.data`` beside it."""

Dim = Union[int, str]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: ``name``, ``dtype`` ("float32", "int64" or "bool"), ``dims`` (ints or axis names)."""

    name: str
    dtype: str
    dims: tuple[Dim, ...]

    def describe(self) -> str:
        return f"{self.name} {self.dtype} [{', '.join(map(str, self.dims))}]"


@dataclass(frozen=True)
class GraphSpec:
    """A graph's file stem, its required inputs, its optional (overridable) inputs and its outputs, in order."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    optional_inputs: tuple[TensorSpec, ...] = ()

    def file_name(self, precision: str = "fp32") -> str:
        """``vision_encoder.onnx``, ``vision_encoder_int8.onnx``, ``vision_encoder_fp16.onnx``."""
        return graph_file(self.name, precision)


def graph_variant(name: str, precision: str) -> str:
    """The variant of graph ``name`` a runtime of ``precision`` reads: int8 exists for ``INT8_GRAPHS`` only (the
    others stay fp32); fp32 and fp16 apply to every graph."""
    return "fp32" if precision == "int8" and name not in INT8_GRAPHS else precision


def graph_file(name: str, precision: str = "fp32") -> str:
    return f"{name}.onnx" if precision == "fp32" else f"{name}_{precision}.onnx"


@dataclass(frozen=True)
class ModelDims:
    """The sizes of a model that fix the graphs' shapes (recorded in the manifest).

    image_size: S; grid_size: g; detector_dim: d; tracker_dim: t (0 = no tracker); num_queries: Q;
    context_length: the tokenizer's context (32).
    """

    image_size: int
    grid_size: int
    detector_dim: int
    tracker_dim: int
    num_queries: int
    context_length: int

    @property
    def has_tracker(self) -> bool:
        return self.tracker_dim > 0

    @property
    def mask_size(self) -> int:
        """Side of the low-resolution masks and of the mask prompt: 4g (288 at release)."""
        return 4 * self.grid_size

    @classmethod
    def from_config(cls, config) -> "ModelDims":
        """From a ``Sam3Config``."""
        det = config.detector
        return cls(image_size=config.image_size, grid_size=det.vit.grid_size, detector_dim=det.d_model,
                   tracker_dim=config.tracker.hidden_size if config.tracker is not None else 0,
                   num_queries=det.decoder.num_queries, context_length=det.text.context_length)

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def graph_specs(m: ModelDims) -> dict[str, GraphSpec]:
    """The contract of every graph of a model with dims ``m`` (the tracker graph only when it has a tracker)."""
    S, g, d, t, Q = m.image_size, m.grid_size, m.detector_dim, m.tracker_dim, m.num_queries
    levels = ((4 * g,), (2 * g,), (g,))
    f32 = "float32"
    det_levels = tuple(TensorSpec(f"detector_embeddings.{i}", f32, ("batch", d, s, s)) for i, (s,) in enumerate(levels))
    trk_levels = (TensorSpec("image_embeddings.0", f32, ("batch", t // 8, 4 * g, 4 * g)),
                  TensorSpec("image_embeddings.1", f32, ("batch", t // 4, 2 * g, 2 * g)),
                  TensorSpec("image_embeddings.2", f32, ("batch", t, g, g)))
    specs = {
        "vision_encoder": GraphSpec(
            "vision_encoder", (TensorSpec("pixel_values", f32, ("batch", 3, S, S)),),
            (trk_levels if m.has_tracker else ()) + det_levels),
        "text_encoder": GraphSpec(
            "text_encoder", (TensorSpec("input_ids", "int64", ("batch", "num_tokens")),),
            (TensorSpec("text_features", f32, ("batch", "num_tokens", d)),)),
        "detector": GraphSpec(
            "detector",
            det_levels + (TensorSpec("text_features", f32, ("batch", "num_tokens", d)),
                          TensorSpec("text_padding_mask", "bool", ("batch", "num_tokens")),
                          TensorSpec("input_boxes", f32, ("batch", "num_boxes", 4)),
                          TensorSpec("input_box_labels", "int64", ("batch", "num_boxes"))),
            (TensorSpec("logits", f32, ("batch", Q)), TensorSpec("pred_boxes", f32, ("batch", Q, 4)),
             TensorSpec("presence_logits", f32, ("batch",)), TensorSpec("pred_masks", f32, ("batch", Q, 4 * g, 4 * g)),
             TensorSpec("semantic_logits", f32, ("batch", 1, 4 * g, 4 * g)))),
    }
    if m.has_tracker:
        mm = 4 * g
        specs["prompt_encoder_mask_decoder"] = GraphSpec(
            "prompt_encoder_mask_decoder",
            (TensorSpec("input_points", f32, ("batch", "point_batch", "num_points", 2)),
             TensorSpec("input_labels", "int64", ("batch", "point_batch", "num_points")),
             TensorSpec("input_boxes", f32, ("batch", "num_boxes", 4))) + trk_levels,
            (TensorSpec("iou_scores", f32, ("batch", "num_objects", 3)),
             TensorSpec("pred_masks", f32, ("batch", "num_objects", 3, mm, mm)),
             TensorSpec("object_score_logits", f32, ("batch", "num_objects", 1)),
             TensorSpec("single_iou_scores", f32, ("batch", "num_objects", 1)),
             TensorSpec("single_pred_masks", f32, ("batch", "num_objects", 1, mm, mm))),
            optional_inputs=(TensorSpec("input_masks", f32, ("batch", "num_masks", mm, mm)),))
    return specs
