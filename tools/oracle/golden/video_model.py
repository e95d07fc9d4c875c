"""The tiny official model of the video golden files: the image golden files' composition with a video-configured
tracker (memory dimension 32 < hidden 64, so that each object pointer is split into 2 memory tokens as the released
256 / 64 model splits it into 4; memory selection on, as ``build_sam3_video_model`` builds it), the same random-weight
recipe, and the biases that make random weights track something (objects present, masks neither empty nor full)."""
from __future__ import annotations

import torch

from .builder import T, build_tiny_official, randomise

VIDEO_MEM_DIM = 32
# Flags of the tracker built by the official ``model_builder.build_tracker(apply_temporal_disambiguation=True)``
# (what ``build_sam3_video_model`` uses), mirrored at tiny size. ``builder.build_tracker`` passes the same values except
# ``use_memory_selection`` (False for the image golden files).
RELEASED_VIDEO_TRACKER_FLAGS = dict(
    num_maskmem=7, max_cond_frames_in_attn=4, keep_first_cond_frame=False, max_obj_ptrs_in_encoder=16,
    memory_temporal_stride_for_eval=1, use_memory_selection=True, mf_threshold=0.01,
    multimask_output_in_sam=True, multimask_min_pt_num=0, multimask_max_pt_num=1, multimask_output_for_tracking=True,
    forward_backbone_per_frame_for_eval=True, trim_past_non_cond_mem_for_eval=False,
    always_start_from_first_ann_frame=False, non_overlap_masks_for_mem_enc=False, non_overlap_masks_for_output=False,
    offload_output_to_cpu_for_eval=False, clear_non_cond_mem_around_input=True, clear_non_cond_mem_for_multi_obj=False,
    fill_hole_area=0, max_point_num_in_prompt_enc=16, iter_use_prev_mask_pred=True,
    add_all_frames_to_correct_as_cond=True, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
    image_size=T["image_size"], backbone_stride=T["patch_size"],
)

# Added to the randomised weights (then every weight is float16-exact again; the values below are float16-exact).
# key (released sam3.pt layout) -> value added to every element
BIASES = {
    "tracker.sam_mask_decoder.pred_obj_score_head.layers.2.bias": 1.0,
}
BIAS_NOTES = {
    "tracker.sam_mask_decoder.pred_obj_score_head.layers.2.bias":
        "the object-score MLP's last bias: with the random weights alone the object-score logits of tracked frames "
        "are about -0.2 (every object absent); +1.0 makes them about +0.8 (present)",
}


def build_tiny_video():
    """The tiny official model (image composition, video-configured tracker), not yet randomised."""
    model = build_tiny_official(mem_dim=VIDEO_MEM_DIM, use_memory_selection=True)
    trk = model.inst_interactive_predictor.model
    for k, v in RELEASED_VIDEO_TRACKER_FLAGS.items():
        assert getattr(trk, k) == v, (k, getattr(trk, k), v)
    return model


def _param_by_official_key(model, key):
    assert key.startswith("tracker.")
    name = "inst_interactive_predictor.model." + key[len("tracker."):]
    return dict(model.named_parameters())[name]


@torch.no_grad()
def randomise_video(model):
    """The image golden files' randomisation (builder.randomise), then BIASES added (float16-exact)."""
    randomise(model)
    for key, delta in BIASES.items():
        p = _param_by_official_key(model, key)
        p.add_(delta)
        p.copy_(p.half().float())
    return model


def tracker_of(model):
    """The model's ``Sam3TrackerPredictor``, given the model's backbone so that it computes each frame's features the
    way the official tracker does with a backbone (``forward_image``: the tracker neck, then ``conv_s0``/``conv_s1``).
    The backbone is attached without registering it as a submodule, so the model's state dict is unchanged."""
    trk = model.inst_interactive_predictor.model
    object.__setattr__(trk, "backbone", model.backbone)
    assert "backbone" not in trk._modules or trk._modules["backbone"] is None
    return trk
