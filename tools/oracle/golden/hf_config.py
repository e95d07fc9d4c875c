"""``config.json``: the tiny architecture in the Hugging Face ``facebook/sam3`` format (``Sam3VideoConfig``), and the
check that transformers builds a model from it that loads the converted weights and reproduces a few outputs."""
from __future__ import annotations

import json

import torch

from .builder import FEAT_SIZES, LOW_RES, T


def hf_config_dict():
    d, grid = T["d"], T["grid"]
    vit = dict(model_type="sam3_vit_model", hidden_size=T["vit_width"],
               intermediate_size=int(T["vit_width"] * T["vit_mlp_ratio"]), num_hidden_layers=T["vit_depth"],
               num_attention_heads=T["vit_heads"], num_channels=3, image_size=T["image_size"],
               patch_size=T["patch_size"], hidden_act="gelu", layer_norm_eps=T["vit_layer_norm_eps"],
               window_size=T["vit_window"], global_attn_indexes=list(T["vit_global_blocks"]),
               pretrain_image_size=T["vit_pretrain_image_size"],
               rope_parameters={"rope_theta": 10000.0, "rope_type": "axial"})
    vision = dict(model_type="sam3_vision_model", backbone_config=vit, fpn_hidden_size=d,
                  backbone_feature_sizes=[list(s) for s in FEAT_SIZES], scale_factors=list(T["scale_factors"]))
    text = dict(model_type="clip_text_model", vocab_size=T["text_vocab"], hidden_size=T["text_width"],
                intermediate_size=int(T["text_width"] * T["text_mlp_ratio"]), projection_dim=T["text_projection_dim"],
                num_hidden_layers=T["text_layers"], num_attention_heads=T["text_heads"],
                max_position_embeddings=T["text_context"], hidden_act="gelu", layer_norm_eps=1e-5,
                bos_token_id=49406, eos_token_id=49407)
    detector = dict(
        model_type="sam3", vision_config=vision, text_config=text,
        geometry_encoder_config=dict(model_type="sam3_geometry_encoder", hidden_size=d, num_layers=T["geo_layers"],
                                     num_attention_heads=T["heads"], intermediate_size=T["ffn"], roi_size=7),
        detr_encoder_config=dict(model_type="sam3_detr_encoder", hidden_size=d, num_layers=T["enc_layers"],
                                 num_attention_heads=T["heads"], intermediate_size=T["ffn"]),
        detr_decoder_config=dict(model_type="sam3_detr_decoder", hidden_size=d, num_layers=T["dec_layers"],
                                 num_queries=T["num_queries"], num_attention_heads=T["heads"],
                                 intermediate_size=T["ffn"]),
        mask_decoder_config=dict(model_type="sam3_mask_decoder", hidden_size=d, num_upsampling_stages=3,
                                 num_attention_heads=T["heads"]))
    tracker = dict(
        model_type="sam3_tracker_video", vision_config=vision, image_size=T["image_size"],
        prompt_encoder_config=dict(model_type="sam3_tracker_video_prompt_encoder", hidden_size=d,
                                   image_size=T["image_size"], patch_size=T["patch_size"], mask_input_channels=16,
                                   num_point_embeddings=4),
        mask_decoder_config=dict(model_type="sam3_tracker_video_mask_decoder", hidden_size=d,
                                 mlp_dim=T["trk_mask_decoder_mlp"], num_hidden_layers=T["trk_mask_decoder_layers"],
                                 num_attention_heads=T["trk_mask_decoder_heads"], attention_downsample_rate=2,
                                 num_multimask_outputs=3, iou_head_depth=3,
                                 iou_head_hidden_dim=T["trk_iou_head_hidden"],
                                 dynamic_multimask_via_stability=True, dynamic_multimask_stability_delta=0.05,
                                 dynamic_multimask_stability_thresh=0.98),
        num_maskmem=T["num_maskmem"],
        memory_attention_hidden_size=d, memory_attention_num_layers=T["trk_mem_attn_layers"],
        memory_attention_num_attention_heads=T["trk_mem_attn_heads"], memory_attention_downsample_rate=1,
        memory_attention_feed_forward_hidden_size=T["trk_mem_attn_ffn"],
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=d, memory_encoder_output_channels=T["mem_dim"],
        mask_downsampler_embed_dim=d, mask_downsampler_kernel_size=3, mask_downsampler_stride=2,
        mask_downsampler_padding=1, mask_downsampler_total_stride=16,
        memory_fuser_num_layers=2, memory_fuser_embed_dim=d, memory_fuser_intermediate_dim=4 * d,
        memory_fuser_kernel_size=7, memory_fuser_padding=3, memory_fuser_layer_scale_init_value=1e-6)
    return dict(model_type="sam3_video", architectures=["Sam3VideoModel"], detector_config=detector,
                tracker_config=tracker, low_res_mask_size=LOW_RES)


def write_hf_config(path):
    from transformers import Sam3VideoConfig
    cfg = Sam3VideoConfig(**hf_config_dict())
    cfg.architectures = ["Sam3VideoModel"]
    cfg.to_json_file(path)  # what save_pretrained() writes (nested configs in full)
    return cfg


def verify_hf(ck, config_path, cases=None):
    """Instantiate transformers' Sam3VideoModel from config.json and load the converted weights; optionally
    cross-check numerically (backbone, text, box-only detector case d3, where both references agree)."""
    from transformers import Sam3Model, Sam3VideoConfig, Sam3VideoModel
    from convert_official_to_hf import convert  # oracle environment (on PYTHONPATH), used for this check only
    with open(config_path) as f:
        cfg = Sam3VideoConfig(**json.load(f))
    with torch.device("meta"):
        hf = Sam3VideoModel(cfg)
    ref = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    conv = convert(dict(ck))
    missing = sorted(set(ref) - set(conv))
    unexpected = sorted(set(conv) - set(ref))
    mismatch = sorted(f"{k}: official {tuple(conv[k].shape)} vs hf {ref[k]}" for k in set(ref) & set(conv)
                      if tuple(conv[k].shape) != ref[k])
    res = dict(hf_entries=len(ref), converted_entries=len(conv), missing=missing, unexpected=unexpected,
               shape_mismatch=mismatch)
    if cases is None or missing or unexpected or mismatch:
        return res
    hf = Sam3VideoModel(cfg).eval()
    hf.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in conv.items()}, strict=True)
    det = hf.detector_model
    assert isinstance(det, Sam3Model)
    c, diffs = cases, {}
    with torch.inference_mode():
        vo = det.vision_encoder(c["image1_pixel_values"])
        for i in range(3):
            diffs[f"b_det_fpn{i}"] = (vo.fpn_hidden_states[i] - c[f"b_det_fpn{i}"]).abs().max().item()
        ids = c["c_token_ids"][:1]
        am = (ids != 0).long()
        te = det.get_text_features(input_ids=ids, attention_mask=am).pooler_output[0]
        diffs["c_a_cat_language_features(valid)"] = (te[am[0].bool()] - c["c_a_cat_language_features"][:, 0][
            am[0].bool()]).abs().max().item()
        ids = c["c_token_ids"][3:4]  # 'visual'
        h = det(vision_embeds=vo, input_ids=ids, attention_mask=(ids != 0).long(),
                input_boxes=c["d3_box_only_input_boxes_cxcywh"][None],
                input_boxes_labels=c["d3_box_only_input_labels"][None].long())
        diffs["d3_pred_logits"] = (h.pred_logits[0] - c["d3_box_only_pred_logits"][0, :, 0]).abs().max().item()
        diffs["d3_presence"] = (h.presence_logits.reshape(-1) - c["d3_box_only_presence_logit_dec"].reshape(-1)
                                ).abs().max().item()
        diffs["d3_pred_boxes_xyxy"] = (h.pred_boxes[0] - c["d3_box_only_pred_boxes_xyxy"][0]).abs().max().item()
        diffs["d3_pred_masks"] = (h.pred_masks[0] - c["d3_box_only_pred_masks"][0]).abs().max().item()
    res["hf_vs_official_max_abs_diff"] = diffs
    assert max(diffs.values()) < 1e-4, diffs
    return res
