"""The tiny official detect-and-track model of the concept golden files (``tests/golden/official_concepts/``).

Composed like the official ``build_sam3_video_model``: a ``Sam3ImageOnVideoMultiGPU`` detector (the image golden
files' detector modules, built and randomised by ``builder``) and the video golden files' ``Sam3TrackerPredictor``
(``video_model``: memory dimension 32, memory selection on), wrapped in ``Sam3VideoInferenceWithInstanceInteractivity``
with the heuristics of a case. The weights are those of the video golden files (same seeds, same recipe, same tracker
bias) plus ``CONCEPT_SCALES`` and ``CONCEPT_BIASES``, which make a random-weight detector find something and the
tracker's objects come and go: the detector's scores and masks do not "see" the clip's shapes, but they change from
frame to frame with the pixels, so that the heuristics have something to decide.
"""
from __future__ import annotations

import json

import torch

from sam3.model.sam3_image import Sam3ImageOnVideoMultiGPU
from sam3.model.sam3_video_inference import Sam3VideoInferenceWithInstanceInteractivity

from .builder import T
from .video_model import VIDEO_MEM_DIM, build_tiny_video, randomise_video

# Applied after the video golden files' weights (which already include ``video_model.BIASES``): first every element
# of CONCEPT_SCALES[key] is multiplied by the factor, then CONCEPT_BIASES[key] is added to every element; float16-exact
# values, the result rounded to float16 again. key (released sam3.pt layout) -> factor / value.
CONCEPT_SCALES = {
    "tracker.sam_mask_decoder.pred_obj_score_head.layers.2.weight": 30.0,
}
CONCEPT_BIASES = {
    "detector.transformer.decoder.presence_token_head.layers.2.bias": 6.0,
    "detector.dot_prod_scoring.prompt_proj.bias": 2.0,
    "detector.segmentation_head.instance_seg_head.bias": -0.5,
    "tracker.sam_mask_decoder.pred_obj_score_head.layers.2.bias": 3.125,
}
CONCEPT_NOTES = {
    "detector.transformer.decoder.presence_token_head.layers.2.bias":
        "+6.0 on the presence logit (about 0.16 with the random weights): presence probability about 0.998 on "
        "every frame, so the detection scores are the class probabilities",
    "detector.dot_prod_scoring.prompt_proj.bias":
        "+2.0 on every element of the projected text prompt: adds 2.0 * sum(hs_proj(query)) / sqrt(64) to each "
        "query's class logit, which spreads the ten queries' probabilities over 0.53..0.91 (about 0.40..0.46 "
        "otherwise); each query's probability moves by up to 0.06 across the frames, so some queries cross the "
        "detection threshold on some frames only",
    "detector.segmentation_head.instance_seg_head.bias":
        "-0.5 on every channel of the pixel embedding: shifts each query's mask logits by -0.5 * sum(mask_embed("
        "query)), so the detection masks cover 3..75 % of the frame instead of 80..95 % for every query",
    "tracker.sam_mask_decoder.pred_obj_score_head.layers.2.weight":
        "x30 on the object-score MLP's last weight: the tracker's object-score logits vary by about +-0.2 across "
        "frames and objects instead of +-0.01, so that objects are present on some frames and absent (empty mask, "
        "'occluded') on others",
    "tracker.sam_mask_decoder.pred_obj_score_head.layers.2.bias":
        "+3.125 more on the same MLP's last bias (after the video golden files' +1.0): centres the scaled "
        "object-score logits near 0 (-0.25..+0.35 on tracked frames)",
}

# The keyword arguments ``build_sam3_video_model`` gives Sam3ImageOnVideoMultiGPU that differ from the image model's
# ``_create_sam3_model`` (``use_early_fusion`` and ``semantic_segmentation_head`` end in ``**kwargs`` unused).
VIDEO_DETECTOR_KWARGS = dict(num_feature_levels=1, use_early_fusion=True, use_dot_prod_scoring=True,
                             supervise_joint_box_scores=True, semantic_segmentation_head=None)
# The keyword arguments of ``Sam3VideoInference`` that ``build_sam3_video_model`` passes, at the tiny size.
VIDEO_INFERENCE_KWARGS = dict(image_size=T["image_size"], image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
                              compile_model=False)


def _param_by_official_key(model, key):
    params = dict(model.named_parameters())
    if key.startswith("tracker."):
        return params["inst_interactive_predictor.model." + key[len("tracker."):]]
    assert key.startswith("detector.")
    return params[key[len("detector."):]]


def build_tiny_concepts():
    """The tiny image-composed model (image golden detector, video tracker), not yet randomised. Its state dict in
    the released layout (``checkpoint.to_official_layout``) is what sam3.pt holds."""
    return build_tiny_video()


@torch.no_grad()
def randomise_concepts(model):
    """The video golden files' weights (``video_model.randomise_video``), then ``CONCEPT_SCALES`` and
    ``CONCEPT_BIASES`` (float16-exact)."""
    randomise_video(model)
    for key, factor in CONCEPT_SCALES.items():
        p = _param_by_official_key(model, key)
        p.mul_(factor)
        p.copy_(p.half().float())
    for key, delta in CONCEPT_BIASES.items():
        p = _param_by_official_key(model, key)
        p.add_(delta)
        p.copy_(p.half().float())
    return model


def video_model_of(model, heuristics):
    """The official detect-and-track model around the modules of ``model`` (no copy: the weights are shared), with
    the heuristics of a case (``Sam3VideoBase.__init__`` keyword arguments by their official names)."""
    detector = Sam3ImageOnVideoMultiGPU(
        backbone=model.backbone, transformer=model.transformer, input_geometry_encoder=model.geometry_encoder,
        segmentation_head=model.segmentation_head, dot_prod_scoring=model.dot_prod_scoring, **VIDEO_DETECTOR_KWARGS)
    tracker = model.inst_interactive_predictor.model
    assert tracker.backbone is None  # the video tracker reads the detector's tracker-neck features
    vm = Sam3VideoInferenceWithInstanceInteractivity(detector=detector, tracker=tracker, **VIDEO_INFERENCE_KWARGS,
                                                     **heuristics)
    return vm.eval()


def write_config(path):
    """config.json: the architecture in the Hugging Face ``Sam3VideoConfig`` format (as the video golden files)."""
    from transformers import Sam3VideoConfig

    from .hf_config import hf_config_dict
    d = hf_config_dict()
    d["tracker_config"]["memory_encoder_output_channels"] = VIDEO_MEM_DIM
    cfg = Sam3VideoConfig(**d)
    cfg.architectures = ["Sam3VideoModel"]
    cfg.to_json_file(path)
    with open(path) as f:
        assert json.load(f)["tracker_config"]["memory_encoder_output_channels"] == VIDEO_MEM_DIM
