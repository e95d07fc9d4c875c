"""Generate golden files from Meta's official SAM 3 package (PyPI ``sam3==0.1.4``).

This script is NOT part of the ``sam3kit`` package and is NOT run by CI. It runs the official
reference implementation (CPU, fp32, tiny random weights) and freezes its inputs and outputs under
``tests/golden/official/`` so that CI can compare ``sam3kit`` against the official semantics without
installing the (patched) official package.

How to run
----------
It needs a separate virtual environment *outside* the project with the patched official package, set
up as described in ``../shared/oracle/README.md`` (paths relative to the checkout):

    python3 -m venv /root/oracle-venv && . /root/oracle-venv/bin/activate
    pip install torch==2.13.0 transformers==5.23.0 safetensors pillow      # torch 2.13.0 CPU build from local disk
    pip install torch==2.13.0 torchvision==0.28.0
    python ../shared/oracle/patch_torchvision_cpu.py "$(python -c 'import site; print(site.getsitepackages()[0])')"
    pip install --no-deps sam3==0.1.4
    pip install torch==2.13.0 timm ftfy regex iopath einops pycocotools psutil scikit-image

then, from the repository root:

    PYTHONPATH=../shared/oracle /root/oracle-venv/bin/python tools/oracle/make_golden_official.py \
        [--out tests/golden/official] [--check-determinism] [--skip-hf-check]

``PYTHONPATH`` must point at the workshop folder that holds ``sam3_cpu_env.py`` (CPU shims for the
official package, imported before any ``sam3`` import), the CLIP BPE vocabulary and
``convert_official_to_hf.py`` (used only to verify that ``config.json`` matches the weights).
Generation takes well under a minute on 2 CPU cores.

What it writes: ``sam3.pt`` (tiny random weights in the official ``sam3.pt`` key layout), ``config.json``
(the same architecture in the Hugging Face ``facebook/sam3`` config format), ``cases.pt`` (inputs and
official outputs, plain tensors/lists/floats only) and ``meta.json`` (descriptions, versions, tolerances).
See ``tests/golden/official/README.md``.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import platform
import re
import time
from contextlib import contextmanager

import numpy as np
import PIL
import torch
from torch import nn

import sam3_cpu_env as E  # CPU shims for the official package: must be imported before any sam3 module
from sam3.model.decoder import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerDecoderLayerv2,
    TransformerEncoderCrossAttention,
)
from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer
from sam3.model.geometry_encoders import SequenceGeometryEncoder
from sam3.model.maskformer_segmentation import PixelDecoder, UniversalSegmentationHead
from sam3.model.memory import CXBlock, SimpleFuser, SimpleMaskDownSampler, SimpleMaskEncoder
from sam3.model.model_misc import MLP, DotProductScoring, MultiheadAttentionWrapper, TransformerWrapper
from sam3.model.necks import Sam3DualViTDetNeck
from sam3.model.position_encoding import PositionEmbeddingSine
from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor
from sam3.model.sam3_image import Sam3Image
from sam3.model.sam3_image_processor import Sam3Processor
from sam3.model.sam3_tracking_predictor import Sam3TrackerPredictor
from sam3.model.text_encoder_ve import VETextEncoder
from sam3.model.tokenizer_ve import SimpleTokenizer
from sam3.model.vitdet import ViT
from sam3.model.vl_combiner import SAM3VLBackbone
from sam3.sam.mask_decoder import MaskDecoder
from sam3.sam.transformer import RoPEAttention, TwoWayTransformer

REFERENCE = "sam3==0.1.4"
BUILD_SEED = 0        # torch.manual_seed before constructing the modules (their own initialisers)
WEIGHT_SEED = 1       # generator for the parameter randomisation
IMAGE_SEED = 2        # generator for the two test images

# ----------------------------------------------------------------------------------------------------
# tiny architecture (same composition as build_sam3_image_model(enable_inst_interactivity=True))
# ----------------------------------------------------------------------------------------------------
TINY = dict(
    image_size=112, patch_size=14, grid=8,
    vit_width=64, vit_depth=2, vit_heads=2, vit_mlp_ratio=2.0, vit_window=4, vit_global_blocks=[1],
    vit_pretrain_image_size=56, vit_layer_norm_eps=1e-5,
    d=64, scale_factors=[4.0, 2.0, 1.0, 0.5],
    text_vocab=49408, text_context=32, text_width=16, text_layers=1, text_heads=2, text_mlp_ratio=4.0,
    text_projection_dim=512,
    heads=2, ffn=128,
    geo_layers=1, enc_layers=1, dec_layers=2, num_queries=10,
    trk_mask_decoder_layers=2, trk_mask_decoder_heads=2, trk_mask_decoder_mlp=128, trk_iou_head_hidden=64,
    trk_mem_attn_layers=1, trk_mem_attn_heads=1, trk_mem_attn_ffn=128, mem_dim=64, num_maskmem=7,
)
T = TINY
LOW_RES = 4 * T["grid"]            # 32 = analogue of 288
FEAT_SIZES = [(4 * T["grid"],) * 2, (2 * T["grid"],) * 2, (T["grid"],) * 2]  # [(32,32),(16,16),(8,8)]


def _mha(batch_first=None, dropout=0.1):
    kw = dict(num_heads=T["heads"], dropout=dropout, embed_dim=T["d"])
    if batch_first is not None:
        kw["batch_first"] = batch_first
    return MultiheadAttentionWrapper(**kw)


def _pos_enc(num_pos_feats):
    # precompute_resolution is forced to None by sam3_cpu_env (it would allocate on CUDA); it only fills a cache
    return PositionEmbeddingSine(num_pos_feats=num_pos_feats, normalize=True, scale=None, temperature=10000,
                                 precompute_resolution=None)


def build_vision_backbone():
    vit = ViT(img_size=T["image_size"], pretrain_img_size=T["vit_pretrain_image_size"], patch_size=T["patch_size"],
              embed_dim=T["vit_width"], depth=T["vit_depth"], num_heads=T["vit_heads"], mlp_ratio=T["vit_mlp_ratio"],
              norm_layer="LayerNorm", drop_path_rate=0.1, qkv_bias=True, use_abs_pos=True, tile_abs_pos=True,
              global_att_blocks=tuple(T["vit_global_blocks"]), rel_pos_blocks=(), use_rope=True, use_interp_rope=True,
              window_size=T["vit_window"], pretrain_use_cls_token=True, retain_cls_token=False, ln_pre=True,
              ln_post=False, return_interm_layers=False, bias_patch_embed=False, compile_mode=None)
    return Sam3DualViTDetNeck(position_encoding=_pos_enc(T["d"]), d_model=T["d"], scale_factors=T["scale_factors"],
                              trunk=vit, add_sam2_neck=True)


def build_text_encoder():
    tok = SimpleTokenizer(bpe_path=E.BPE_PATH)
    enc = VETextEncoder(tokenizer=tok, d_model=T["d"], width=T["text_width"], heads=T["text_heads"],
                        layers=T["text_layers"], context_length=T["text_context"], vocab_size=T["text_vocab"])
    assert enc.encoder.text_projection.shape == (T["text_width"], T["text_projection_dim"])
    return enc


def build_transformer():
    enc_layer = TransformerEncoderLayer(
        activation="relu", d_model=T["d"], dim_feedforward=T["ffn"], dropout=0.1, pos_enc_at_attn=True,
        pos_enc_at_cross_attn_keys=False, pos_enc_at_cross_attn_queries=False, pre_norm=True,
        self_attention=_mha(batch_first=True), cross_attention=_mha(batch_first=True))
    encoder = TransformerEncoderFusion(layer=enc_layer, num_layers=T["enc_layers"], d_model=T["d"],
                                       num_feature_levels=1, frozen=False, use_act_checkpoint=True,
                                       add_pooled_text_to_img_feat=False, pool_text_with_mask=True)
    dec_layer = TransformerDecoderLayer(activation="relu", d_model=T["d"], dim_feedforward=T["ffn"], dropout=0.1,
                                        cross_attention=_mha(), n_heads=T["heads"], use_text_cross_attention=True)
    decoder = TransformerDecoder(layer=dec_layer, num_layers=T["dec_layers"], num_queries=T["num_queries"],
                                 return_intermediate=True, box_refine=True, num_o2m_queries=0, dac=True, boxRPB="log",
                                 d_model=T["d"], frozen=False, interaction_layer=None, dac_use_selfatt_ln=True,
                                 resolution=T["image_size"], stride=T["patch_size"], use_act_checkpoint=True,
                                 presence_token=True)
    return TransformerWrapper(encoder=encoder, decoder=decoder, d_model=T["d"])


def build_dot_product_scoring():
    mlp = MLP(input_dim=T["d"], hidden_dim=T["ffn"], output_dim=T["d"], num_layers=2, dropout=0.1, residual=True,
              out_norm=nn.LayerNorm(T["d"]))
    return DotProductScoring(d_model=T["d"], d_proj=T["d"], prompt_mlp=mlp)


def build_segmentation_head():
    pixel_decoder = PixelDecoder(num_upsampling_stages=3, interpolation_mode="nearest", hidden_dim=T["d"],
                                 compile_mode=None)
    return UniversalSegmentationHead(hidden_dim=T["d"], upsampling_stages=3, aux_masks=False, presence_head=False,
                                     dot_product_scorer=None, act_ckpt=True, cross_attend_prompt=_mha(dropout=0),
                                     pixel_decoder=pixel_decoder)


def build_geometry_encoder():
    layer = TransformerEncoderLayer(
        activation="relu", d_model=T["d"], dim_feedforward=T["ffn"], dropout=0.1, pos_enc_at_attn=False,
        pre_norm=True, self_attention=_mha(batch_first=False), pos_enc_at_cross_attn_queries=False,
        pos_enc_at_cross_attn_keys=True, cross_attention=_mha(batch_first=False))
    return SequenceGeometryEncoder(pos_enc=_pos_enc(T["d"]), encode_boxes_as_points=False, points_direct_project=True,
                                   points_pool=True, points_pos_enc=True, boxes_direct_project=True, boxes_pool=True,
                                   boxes_pos_enc=True, d_model=T["d"], num_layers=T["geo_layers"], layer=layer,
                                   use_act_ckpt=True, add_cls=True, add_post_encode_proj=True)


def build_tracker():
    d = T["d"]
    grid = T["grid"]
    # memory encoder (official: SimpleMaskDownSampler(k3,s2,p1, interpol_size=[1152,1152]) = 4 x low-res mask size)
    mask_downsampler = SimpleMaskDownSampler(embed_dim=d, kernel_size=3, stride=2, padding=1,
                                             interpol_size=[4 * LOW_RES, 4 * LOW_RES])
    cx = CXBlock(dim=d, kernel_size=7, padding=3, layer_scale_init_value=1.0e-06, use_dwconv=True)
    maskmem = SimpleMaskEncoder(out_dim=T["mem_dim"], in_dim=d, position_encoding=_pos_enc(T["mem_dim"]),
                                mask_downsampler=mask_downsampler, fuser=SimpleFuser(layer=cx, num_layers=2))
    if isinstance(maskmem.out_proj, nn.Identity):
        # With d == mem_dim (64, needed by transformers which hard-codes kv_in_dim=64 in the memory cross-attention)
        # SimpleMaskEncoder would skip its out_proj; the released model (256 -> 64) always has it, so add the
        # projection explicitly to keep the official `tracker.maskmem_backbone.out_proj.*` keys and computation.
        maskmem.out_proj = nn.Conv2d(d, T["mem_dim"], kernel_size=1)
    self_attn = RoPEAttention(embedding_dim=d, num_heads=T["trk_mem_attn_heads"], downsample_rate=1, dropout=0.1,
                              rope_theta=10000.0, feat_sizes=[grid, grid], use_fa3=False, use_rope_real=False)
    cross_attn = RoPEAttention(embedding_dim=d, num_heads=T["trk_mem_attn_heads"], downsample_rate=1, dropout=0.1,
                               kv_in_dim=T["mem_dim"], rope_theta=10000.0, feat_sizes=[grid, grid], rope_k_repeat=True,
                               use_fa3=False, use_rope_real=False)
    layer = TransformerDecoderLayerv2(cross_attention_first=False, activation="relu",
                                      dim_feedforward=T["trk_mem_attn_ffn"], dropout=0.1, pos_enc_at_attn=False,
                                      pre_norm=True, self_attention=self_attn,
                                      d_model=d, pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                                      cross_attention=cross_attn)
    encoder = TransformerEncoderCrossAttention(remove_cross_attention_layers=[], batch_first=True, d_model=d,
                                               frozen=False, pos_enc_at_input=True, layer=layer,
                                               num_layers=T["trk_mem_attn_layers"], use_act_checkpoint=False)
    transformer = TransformerWrapper(encoder=encoder, decoder=None, d_model=d)
    trk = Sam3TrackerPredictor(
        image_size=T["image_size"], num_maskmem=T["num_maskmem"], backbone=None, backbone_stride=T["patch_size"],
        transformer=transformer, maskmem_backbone=maskmem, multimask_output_in_sam=True,
        forward_backbone_per_frame_for_eval=True, trim_past_non_cond_mem_for_eval=False,
        multimask_output_for_tracking=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        always_start_from_first_ann_frame=False, non_overlap_masks_for_mem_enc=False,
        non_overlap_masks_for_output=False, max_cond_frames_in_attn=4, offload_output_to_cpu_for_eval=False,
        sam_mask_decoder_extra_args={"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
                                     "dynamic_multimask_stability_thresh": 0.98},
        clear_non_cond_mem_around_input=True, fill_hole_area=0, use_memory_selection=False)
    # Sam3TrackerBase._build_sam_heads hard-codes the two-way transformer (depth 2, mlp 2048, 8 heads) and the IoU
    # head width (256): rebuild the SAM mask decoder with the same arguments but tiny sizes.
    trk.sam_mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=T["trk_mask_decoder_layers"], embedding_dim=d,
                                      mlp_dim=T["trk_mask_decoder_mlp"], num_heads=T["trk_mask_decoder_heads"]),
        transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=T["trk_iou_head_hidden"], use_high_res_features=True,
        iou_prediction_use_sigmoid=True, pred_obj_scores=True, pred_obj_scores_mlp=True,
        use_multimask_token_for_obj_ptr=True, **trk.sam_mask_decoder_extra_args)
    assert trk.mem_dim == T["mem_dim"] and trk.hidden_dim == d
    assert trk.sam_image_embedding_size == grid and trk.low_res_mask_size == LOW_RES
    return trk


def build_tiny_official():
    """The tiny official image model, composed like build_sam3_image_model(..., enable_inst_interactivity=True)."""
    torch.manual_seed(BUILD_SEED)
    backbone = SAM3VLBackbone(visual=build_vision_backbone(), text=build_text_encoder(), scalp=1)
    transformer = build_transformer()
    scoring = build_dot_product_scoring()
    seg_head = build_segmentation_head()
    geo = build_geometry_encoder()
    inst = SAM3InteractiveImagePredictor(build_tracker())
    inst._bb_feat_sizes = list(FEAT_SIZES)  # hard-coded [(288,288),(144,144),(72,72)] in the official predictor
    model = Sam3Image(backbone=backbone, transformer=transformer, input_geometry_encoder=geo,
                      segmentation_head=seg_head, num_feature_levels=1, o2m_mask_predict=True,
                      dot_prod_scoring=scoring, use_instance_query=False, multimask_output=True,
                      inst_interactive_predictor=inst, matcher=None)
    return model.eval()


@torch.no_grad()
def randomise(model, seed=WEIGHT_SEED, fp16_exact=True):
    """Random weights as ../shared/oracle/parity_image.py does, plus (optionally) rounding every floating
    parameter/buffer to a float16-representable value so that sam3.pt can be stored in float16 losslessly."""
    g = torch.Generator().manual_seed(seed)
    for n, p in model.named_parameters():
        if (n.endswith("positional_embedding") or n.endswith("text_projection") or not torch.isfinite(p).all()
                or p.abs().max() > 1e3):
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)  # torch.empty()-initialised parameters
        # perturb every parameter so that zero-initialised layers (e.g. the last box-head layer) matter
        p.add_(torch.randn(p.shape, generator=g) * (0.02 if p.dim() > 1 else 0.05))
    if fp16_exact:
        for _, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def to_official_layout(sd):
    """Image-model state dict -> released sam3.pt layout (detector.* / tracker.*)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("inst_interactive_predictor.model."):
            out["tracker." + k[len("inst_interactive_predictor.model."):]] = v
        else:
            out["detector." + k] = v
    return out


def collapse_key(k):
    return re.sub(r"\.\d+(?=\.|$)", ".{i}", k)


def compare_key_patterns(ck, reference_file):
    """Compare collapsed key patterns ({i} for numeric indices) against the full-size sam3.pt key list."""
    ref = set()
    with open(reference_file) as f:
        for line in f:
            if line.strip():
                ref.add(line.split("\t")[0])
    ours = {collapse_key(k) for k in ck}
    return sorted(ours - ref), sorted(ref - ours)


# ----------------------------------------------------------------------------------------------------
# Hugging Face config (facebook/sam3 format: Sam3VideoConfig)
# ----------------------------------------------------------------------------------------------------
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
    from convert_official_to_hf import convert  # ../shared/oracle (used for this check only)
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


# ----------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------
IMAGE_SHAPES = [(90, 120), (130, 70)]  # (H, W) of image 1 and image 2
TEXT_PROMPTS = [
    "a cat", "Yellow School Bus", "&amp; tom's 12 dogs", "visual",
    # 60 words: longer than the 32-token context -> truncated, last id forced to <end_of_text>
    " ".join(("the quick brown fox jumps over the lazy dog while a small red bird sings on an old wooden fence "
              "near the quiet river under a bright blue summer sky and three happy children play with a yellow "
              "ball in the green park beside tall trees full of ripe apples that fall slowly to the soft grass "
              "every single autumn day").split()[:60]),
]
assert len(TEXT_PROMPTS[4].split()) == 60
# detector box prompts: normalised (cx, cy, w, h) of the original image, label True = positive
DET_BOXES_TWO = [[0.5, 0.45, 0.4, 0.5], [0.25, 0.7, 0.3, 0.35]]
DET_LABELS_TWO = [True, False]
DET_BOX_ONE = [0.55, 0.5, 0.5, 0.6]
# interactive prompts: pixel coordinates of the original image 1 (W=120, H=90)
PTS_ONE = [[70.25, 40.5]]
PTS_THREE = [[70.25, 40.5], [25.0, 70.0], [100.5, 20.25]]
LBL_THREE = [1, 0, 1]
BOX_XYXY = [30.0, 20.5, 95.5, 75.0]
PT_WITH_BOX = [[60.0, 50.0]]


def make_images(seed=IMAGE_SEED):
    """Two uint8 RGB images (H, W, 3): smooth random colour field + pixel noise."""
    g = torch.Generator().manual_seed(seed)
    imgs = []
    for h, w in IMAGE_SHAPES:
        base = torch.rand(1, 3, 6, 8, generator=g) * 255
        base = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False)[0]
        noise = torch.randn(3, h, w, generator=g) * 25
        img = (base + noise).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
        imgs.append(img)
    return imgs


# ----------------------------------------------------------------------------------------------------
# recording helpers (wrap instance attributes; numerics untouched)
# ----------------------------------------------------------------------------------------------------
@contextmanager
def record(obj, name, store, keep_args=False):
    orig = getattr(obj, name)

    def wrapper(*args, **kwargs):
        out = orig(*args, **kwargs)
        store.append((args, kwargs, out) if keep_args else out)
        return out

    setattr(obj, name, wrapper)
    try:
        yield store
    finally:
        delattr(obj, name)


@contextmanager
def record_interpolate_inputs(module, store):
    """Replace `module.F` (torch.nn.functional) by a proxy recording the inputs of F.interpolate."""
    real_f = module.F

    class _Proxy:
        def __getattr__(self, n):
            return getattr(real_f, n)

        @staticmethod
        def interpolate(x, *a, **k):
            store.append(x.detach().clone())
            return real_f.interpolate(x, *a, **k)

    module.F = _Proxy()
    try:
        yield store
    finally:
        module.F = real_f


def _t(x, dtype=None):
    x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    x = x.detach().clone().contiguous()
    return x.to(dtype) if dtype is not None else x


# ----------------------------------------------------------------------------------------------------
# the cases
# ----------------------------------------------------------------------------------------------------
def pick_threshold(probs, lo=3, hi=8):
    """Confidence threshold keeping lo..hi of the queries, placed in the middle of the widest gap between
    consecutive probabilities (robust to tiny numerical differences)."""
    p = sorted(float(x) for x in probs)
    best = None
    for a, b in zip(p[:-1], p[1:], strict=True):
        n_keep = sum(x > 0.5 * (a + b) for x in p)
        if lo <= n_keep <= hi and (best is None or b - a > best[1]):
            best = (0.5 * (a + b), b - a)
    if best is None:
        raise RuntimeError(f"no threshold keeps {lo}..{hi} detections: {p}")
    return float(f"{best[0]:.6f}"), best[1]


DET_OUT_KEYS = ["pred_logits", "presence_logit_dec", "pred_boxes", "pred_boxes_xyxy", "pred_masks", "semantic_seg",
                "queries"]


@torch.inference_mode()
def run_cases(model):
    from torchvision.transforms import v2
    import sam3.model.utils.sam1_utils as sam1_utils

    cases = {}
    imgs = make_images()
    proc = Sam3Processor(model, resolution=T["image_size"], device="cpu", confidence_threshold=0.5)

    # ---------------- a. preprocessing (Sam3Processor.set_image on a uint8 CHW tensor)
    states, pixels = [], []
    for i, img in enumerate(imgs):
        seen = []
        with record(model.backbone, "forward_image", seen, keep_args=True):
            st = proc.set_image(img.permute(2, 0, 1).contiguous())
        (args, kwargs, _), = seen
        pix = (args[0] if args else kwargs["samples"]).clone()
        # same tensor via the PIL entry point
        pil = PIL.Image.fromarray(img.numpy())
        pil_pix = proc.transform(v2.functional.to_image(pil)).unsqueeze(0)
        assert torch.equal(pil_pix, pix), "PIL and tensor entry points differ"
        # resized uint8 image + the exact float formula of the official v2 pipeline
        u8 = v2.Resize(size=(T["image_size"],) * 2)(img.permute(2, 0, 1).contiguous()).unsqueeze(0)
        assert u8.dtype == torch.uint8
        formula = (u8.to(torch.float32) * (1.0 / 255) - 0.5) / 0.5
        assert torch.equal(formula, pix), "pixel formula does not reproduce the official tensor bit-exactly"
        assert st["original_height"] == img.shape[0] and st["original_width"] == img.shape[1]
        states.append(st)
        pixels.append(pix)
        cases[f"image{i + 1}"] = img                       # (H, W, 3) uint8 RGB
        cases[f"image{i + 1}_resized_u8"] = u8             # (1, 3, 112, 112) uint8
    cases["image1_pixel_values"] = pixels[0]               # (1, 3, 112, 112) float32 in [-1, 1]

    # ---------------- b. backbone on image 1 (fresh forward; set_image modifies the tracker levels in place)
    bo = model.backbone.forward_image(pixels[0])
    vit_out = model.backbone.vision_backbone.trunk(pixels[0])[-1]
    cases["b_vit_out"] = _t(vit_out)
    for lvl in range(3):
        cases[f"b_det_fpn{lvl}"] = _t(bo["backbone_fpn"][lvl])
    sam2 = bo["sam2_backbone_out"]
    for lvl in range(3):
        cases[f"b_trk_fpn{lvl}"] = _t(sam2["backbone_fpn"][lvl])
    dec = model.inst_interactive_predictor.model.sam_mask_decoder
    cases["b_trk_fpn0_conv_s0"] = _t(dec.conv_s0(sam2["backbone_fpn"][0]))
    cases["b_trk_fpn1_conv_s1"] = _t(dec.conv_s1(sam2["backbone_fpn"][1]))
    cases["b_pos_enc2"] = _t(bo["vision_pos_enc"][2])
    for lvl in range(3):
        assert torch.equal(bo["vision_pos_enc"][lvl], sam2["vision_pos_enc"][lvl])
    assert len(bo["backbone_fpn"]) == 3  # scalp=1 dropped the 0.5x level

    # ---------------- c. text
    tok = model.backbone.language_backbone.tokenizer
    cases["c_prompts"] = list(TEXT_PROMPTS)
    cases["c_token_ids"] = _t(tok(TEXT_PROMPTS, context_length=T["text_context"]))
    to = model.backbone.forward_text(["a cat"], device="cpu")
    cases["c_a_cat_language_features"] = _t(to["language_features"])  # (32, 1, 64)
    cases["c_a_cat_language_mask"] = _t(to["language_mask"])          # (1, 32) True = padding
    cases["c_a_cat_language_embeds"] = _t(to["language_embeds"])      # (32, 1, 32) token embeddings

    # ---------------- d + e. detector through the official image API
    def det_case(image_idx, steps, threshold):
        st = proc.set_image(imgs[image_idx].permute(2, 0, 1).contiguous())
        raw, prompts = [], []
        proc.confidence_threshold = threshold
        with record(model, "forward_grounding", raw), record(model, "_encode_prompt", prompts):
            for kind, arg in steps:
                if kind == "text":
                    st = proc.set_text_prompt(arg, st)
                else:
                    st = proc.add_geometric_prompt(arg[0], arg[1], st)
        out, (prompt, prompt_mask, _) = raw[-1], prompts[-1]
        gp = st["geometric_prompt"]
        res = {k: _t(out[k]) for k in DET_OUT_KEYS}
        res.update(prompt=_t(prompt), prompt_mask=_t(prompt_mask),
                   geo_box_embeddings=_t(gp.box_embeddings), geo_box_labels=_t(gp.box_labels),
                   geo_box_mask=_t(gp.box_mask),
                   post_masks=_t(st["masks"]), post_masks_prob=_t(st["masks_logits"]), post_boxes=_t(st["boxes"]),
                   post_scores=_t(st["scores"]))
        return res

    det_specs = {
        "d1_text": (0, [("text", "a cat")]),
        "d2_text_2boxes": (0, [("text", "a cat"), ("box", (DET_BOXES_TWO[0], DET_LABELS_TWO[0])),
                               ("box", (DET_BOXES_TWO[1], DET_LABELS_TWO[1]))]),
        "d3_box_only": (0, [("box", (DET_BOX_ONE, True))]),
        "d4_image2_text": (1, [("text", "a cat")]),
    }
    for name, (i, s) in det_specs.items():
        first = det_case(i, s, 0.5)
        probs = first["pred_logits"].sigmoid()[0, :, 0] * first["presence_logit_dec"].sigmoid().reshape(())
        thr, margin = pick_threshold(probs.tolist())
        r = det_case(i, s, thr)
        r["confidence_threshold"] = thr
        r["threshold_gap"] = margin
        for k in DET_OUT_KEYS:
            assert torch.equal(r[k], first[k])
        keep = (r["pred_logits"].sigmoid()[0, :, 0] * r["presence_logit_dec"].sigmoid().reshape(())) > thr
        r["post_keep"] = keep
        h, w = imgs[i].shape[:2]
        prob = torch.nn.functional.interpolate(r["pred_masks"][0, keep][:, None], (h, w), mode="bilinear",
                                               align_corners=False).sigmoid()
        assert torch.equal(prob, r["post_masks_prob"]) and torch.equal(prob > 0.5, r["post_masks"])
        r["post_masks_prob"] = r["post_masks_prob"].half()
        for k, v in r.items():
            cases[f"{name}_{k}"] = v
    cases["d2_text_2boxes_input_boxes_cxcywh"] = _t(torch.tensor(DET_BOXES_TWO))
    cases["d2_text_2boxes_input_labels"] = _t(torch.tensor(DET_LABELS_TWO))
    cases["d3_box_only_input_boxes_cxcywh"] = _t(torch.tensor([DET_BOX_ONE]))
    cases["d3_box_only_input_labels"] = _t(torch.tensor([True]))

    # ---------------- f. interactive (SAM-1 task) on the image-1 state
    st1 = proc.set_image(imgs[0].permute(2, 0, 1).contiguous())
    pred = model.inst_interactive_predictor

    def inst_case(**kw):
        dec_out, pe_in, interp_in = [], [], []
        with record(pred.model.sam_mask_decoder, "predict_masks", dec_out), \
                record(pred.model.sam_prompt_encoder, "forward", pe_in, keep_args=True), \
                record_interpolate_inputs(sam1_utils, interp_in):
            masks, iou, low = model.predict_inst(st1, return_logits=True, **kw)
        assert all(isinstance(v, np.ndarray) for v in (masks, iou, low))  # official API returns numpy
        (all_masks, all_iou, _, obj_logits), = dec_out
        (_, pe_kw, _), = pe_in
        filled, = interp_in
        masks, filled = torch.as_tensor(masks), filled[0]
        h, w = st1["original_height"], st1["original_width"]
        # the original-size logits are exactly a bilinear upsampling of the (hole-filled) low-res logits
        assert torch.equal(torch.nn.functional.interpolate(filled[None], (h, w), mode="bilinear",
                                                           align_corners=False)[0], masks)
        res = dict(masks=_t(masks).half(), iou=_t(iou), low_res_logits=_t(low), low_res_logits_filled=_t(filled),
                   decoder_all_low_res_logits=_t(all_masks[0]), decoder_all_iou=_t(all_iou[0]),
                   object_score_logit=_t(obj_logits))
        dec = pred.model.sam_mask_decoder
        res["stability_score_token0"] = float(dec._get_stability_scores(all_masks[:, 0:1])[0, 0])
        if not kw["multimask_output"]:
            thresh = dec.dynamic_multimask_stability_thresh
            res["used_multimask_fallback"] = bool(res["stability_score_token0"] < thresh)
        sel = all_masks[0, 1:] if kw["multimask_output"] else None
        if sel is not None:
            assert torch.equal(torch.as_tensor(low), sel.clamp(-32, 32))
        pts = pe_kw["points"]
        res["prompt_encoder_coords"] = _t(pts[0][0]) if pts is not None else torch.zeros(0, 2)
        res["prompt_encoder_labels"] = _t(pts[1][0]) if pts is not None else torch.zeros(0, dtype=torch.int32)
        return res

    f1 = inst_case(point_coords=np.array(PTS_ONE), point_labels=np.array([1]), multimask_output=True)
    best = int(np.argmax(f1["iou"].numpy()))
    specs = {
        "f1_point": dict(point_coords=np.array(PTS_ONE), point_labels=np.array([1]), multimask_output=True),
        "f2_three_points": dict(point_coords=np.array(PTS_THREE), point_labels=np.array(LBL_THREE),
                                multimask_output=True),
        "f3_box": dict(box=np.array(BOX_XYXY), multimask_output=True),
        "f4_box_point": dict(box=np.array(BOX_XYXY), point_coords=np.array(PT_WITH_BOX), point_labels=np.array([1]),
                             multimask_output=True),
        "f5_mask": dict(mask_input=f1["low_res_logits"][best:best + 1].numpy(), multimask_output=True),
        "f6_point_single": dict(point_coords=np.array(PTS_ONE), point_labels=np.array([1]), multimask_output=False),
    }
    for name, kw in specs.items():
        r = inst_case(**kw)
        for k in ("point_coords", "point_labels", "box", "mask_input"):
            if k in kw:
                r[f"input_{k}"] = _t(torch.as_tensor(np.asarray(kw[k])))
        r["input_multimask_output"] = bool(kw["multimask_output"])
        for k, v in r.items():
            cases[f"{name}_{k}"] = v
    cases["f5_mask_input_from"] = f"f1_point_low_res_logits[{best}] (argmax iou)"
    return cases


# ----------------------------------------------------------------------------------------------------
# meta.json
# ----------------------------------------------------------------------------------------------------
CASE_DOCS = {
    "a": dict(
        description="Preprocessing with the official image API: Sam3Processor(model, resolution=112, device='cpu')"
                    ".set_image(img) where img is the (3,H,W) uint8 tensor of the stored HWC image (the PIL entry "
                    "point gives the identical tensor, checked). Pipeline: v2.Resize((112,112)) bilinear antialias "
                    "on uint8 -> ToDtype(float32, scale=True) -> Normalize(0.5, 0.5). The pixel tensor is the input "
                    "of model.backbone.forward_image, recorded during set_image.",
        fields={
            "image1": "uint8 (90,120,3) HWC RGB test image 1 (seeded smooth colour field + noise)",
            "image2": "uint8 (130,70,3) HWC RGB test image 2",
            "image{k}_resized_u8": "uint8 (1,3,112,112): torchvision v2 Resize((112,112)) (bilinear, antialias=True) "
                                   "of image k in CHW; the official float pixels equal bit-exactly "
                                   "(u8.float() * (1/255) - 0.5) / 0.5 (checked for both images)",
            "image1_pixel_values": "float32 (1,3,112,112): the official preprocessed tensor of image 1",
        }),
    "b": dict(
        description="Backbone on image 1: bo = model.backbone.forward_image(image1_pixel_values) (SAM3VLBackbone, "
                    "scalp=1 drops the 0.5x level); vit_out = model.backbone.vision_backbone.trunk(pixels)[-1].",
        fields={
            "b_vit_out": "(1,64,8,8) ViT trunk output (block 1 = last global block), channels-first",
            "b_det_fpn{0,1,2}": "detector neck (convs) levels bo['backbone_fpn'][i]: (1,64,32,32), (1,64,16,16), "
                                "(1,64,8,8) = analogues of 288/144/72",
            "b_trk_fpn{0,1,2}": "tracker neck (sam2_convs) levels bo['sam2_backbone_out']['backbone_fpn'][i], raw "
                                "(before conv_s0/conv_s1)",
            "b_trk_fpn0_conv_s0": "(1,8,32,32) tracker.sam_mask_decoder.conv_s0(b_trk_fpn0), what "
                                  "Sam3Processor.set_image stores in the state for the interactive predictor",
            "b_trk_fpn1_conv_s1": "(1,16,16,16) tracker.sam_mask_decoder.conv_s1(b_trk_fpn1)",
            "b_pos_enc2": "(1,64,8,8) sine position encoding of the 8x8 level (bo['vision_pos_enc'][2]; identical for "
                          "both necks and independent of the image)",
        }),
    "c": dict(
        description="Text: ids = model.backbone.language_backbone.tokenizer(c_prompts, context_length=32) (official "
                    "SimpleTokenizer, CLIP BPE, pad 0, truncation forces the last id to 49407); features: "
                    "model.backbone.forward_text(['a cat'], device='cpu').",
        fields={
            "c_prompts": "list of 5 str: 'a cat', 'Yellow School Bus', '&amp; tom\\'s 12 dogs' (official unescapes "
                         "HTML entities), 'visual', a 60-word sentence (truncated to 32 tokens)",
            "c_token_ids": "int64 (5,32)",
            "c_a_cat_language_features": "float32 (32,1,64) seq-first, after the resizer (Linear 16->64), all 32 "
                                         "positions (padding positions included)",
            "c_a_cat_language_mask": "bool (1,32), True = padding (ids == 0)",
            "c_a_cat_language_embeds": "float32 (32,1,16) token embeddings before the text transformer (seq-first)",
        }),
    "d": dict(
        description="Detector (PCS) raw outputs, recorded from the model.forward_grounding(backbone_out=state"
                    "['backbone_out'], find_input=processor.find_stage, find_target=None, geometric_prompt=state"
                    "['geometric_prompt']) call that the official Sam3Processor makes; the prompt tokens are recorded "
                    "from the same call's model._encode_prompt. Cases: d1_text = set_image(image1); set_text_prompt"
                    "('a cat') (text only: the official model appends the geometry CLS token, prompt = 32 + 1 tokens); "
                    "d2_text_2boxes = set_image(image1); set_text_prompt('a cat'); add_geometric_prompt(box0, True); "
                    "add_geometric_prompt(box1, False) (outputs of the last call: 32 text + 2 boxes + CLS); "
                    "d3_box_only = set_image(image1); add_geometric_prompt(box, True) without text (the processor uses "
                    "the text 'visual'; 32 + 1 + 1 tokens); d4_image2_text = set_image(image2); "
                    "set_text_prompt('a cat').",
        fields={
            "<d>_pred_logits": "(1,10,1) per-query class logits (dot-product scoring, clamped +-12)",
            "<d>_presence_logit_dec": "(1,1) presence logit (official: not clamped)",
            "<d>_pred_boxes": "(1,10,4) normalised cxcywh",
            "<d>_pred_boxes_xyxy": "(1,10,4) normalised xyxy (not clipped to [0,1])",
            "<d>_pred_masks": "(1,10,32,32) mask logits (analogue of 288x288)",
            "<d>_semantic_seg": "(1,1,32,32) semantic logits",
            "<d>_queries": "(1,10,64) last-layer normed decoder query states",
            "<d>_prompt": "(L,1,64) the prompt fed to the DETR encoder/decoder = cat(text 32, geometry tokens incl. "
                          "CLS); L = 33 (text only), 35 (two boxes), 34 (one box)",
            "<d>_prompt_mask": "bool (1,L), True = padding",
            "<d>_geo_box_embeddings / _geo_box_labels / _geo_box_mask": "the official Prompt object after the "
                          "processor calls: boxes (N,1,4) normalised cxcywh, labels (N,1) (bool as given by the "
                          "processor; the encoder uses labels.long()), mask (1,N) True = padding",
            "d2_text_2boxes_input_boxes_cxcywh, d3_box_only_input_boxes_cxcywh": "float32 (N,4) the boxes as given "
                          "to add_geometric_prompt: normalised (cx, cy, w, h) of the original image",
            "d2_text_2boxes_input_labels, d3_box_only_input_labels": "bool (N,) as given (True = positive)",
        }),
    "e": dict(
        description="Official image post-processing (Sam3Processor._forward_grounding) of the same d cases with "
                    "processor.confidence_threshold = <d>_confidence_threshold (chosen per case in the widest gap "
                    "between query probabilities so that 3..8 of 10 queries pass): prob = sigmoid(pred_logits) * "
                    "sigmoid(presence); keep prob > threshold (query order kept, no NMS, no sorting); boxes = "
                    "cxcywh->xyxy * (W,H,W,H) (not clipped); masks_logits = sigmoid(bilinear(pred_masks[keep], "
                    "(H,W), align_corners=False)); masks = masks_logits > 0.5.",
        fields={
            "<d>_confidence_threshold": "float, the threshold used",
            "<d>_threshold_gap": "float, distance between the two probabilities around the threshold",
            "<d>_post_keep": "bool (10,) which queries passed",
            "<d>_post_masks": "bool (N,1,H,W) state['masks'] at original size",
            "<d>_post_masks_prob": "float16 (N,1,H,W) state['masks_logits'] (probabilities; stored as float16 to "
                                   "save space; the float32 values equal bit-exactly "
                                   "sigmoid(F.interpolate(pred_masks[0,keep][:,None], (H,W), mode='bilinear', "
                                   "align_corners=False)), checked)",
            "<d>_post_boxes": "float32 (N,4) state['boxes'], pixel xyxy of the original image",
            "<d>_post_scores": "float32 (N,) state['scores']",
        }),
    "f": dict(
        description="Interactive (SAM-1 task) on the image-1 state: state = processor.set_image(image1); "
                    "masks, iou, low = model.predict_inst(state, point_coords=..., point_labels=..., box=..., "
                    "mask_input=..., multimask_output=..., return_logits=True) (numpy in/out). The decoder's full "
                    "outputs (all 4 mask tokens, all 4 IoUs, object-score logit) are recorded from the same call "
                    "path: the single tracker.sam_mask_decoder.predict_masks call made inside predict_inst "
                    "(SAM3InteractiveImagePredictor._predict discards the object score). The prompt-encoder inputs "
                    "are recorded from tracker.sam_prompt_encoder.forward, the hole-filled low-res logits from the "
                    "F.interpolate call in SAM2Transforms.postprocess_masks. Cases: f1_point (1 positive point, "
                    "multimask), f2_three_points (labels [1,0,1], multimask), f3_box (xyxy box, multimask), "
                    "f4_box_point (box + 1 positive point, multimask), f5_mask (mask_input = f1 low-res logits of the "
                    "best-IoU mask, no points, multimask), f6_point_single (1 point, multimask_output=False -> "
                    "dynamic stability fallback).",
        fields={
            "<f>_input_point_coords": "float64 (P,2) pixel (x,y) of the original image (as passed)",
            "<f>_input_point_labels": "int64 (P,) 1 = positive, 0 = negative",
            "<f>_input_box": "float64 (4,) pixel xyxy of the original image",
            "<f>_input_mask_input": "float32 (1,32,32) low-res mask logits passed as mask_input",
            "<f>_input_multimask_output": "bool",
            "<f>_prompt_encoder_coords / _labels": "(P',2) float32 / (P',) int32: what reaches the prompt encoder "
                    "(coords * 112 / (W,H) of the original image, box corners first with labels 2,3, then clicks); "
                    "the padding point (label -1) is appended inside the prompt encoder; empty for mask-only",
            "<f>_masks": "float16 (C,H,W) mask logits at the original size (C = 3 multimask, 1 otherwise); stored as "
                         "float16 to save space; the float32 values equal bit-exactly F.interpolate("
                         "<f>_low_res_logits_filled[None], (H,W), mode='bilinear', align_corners=False)[0] (checked)",
            "<f>_iou": "float32 (C,) predicted IoU (sigmoid)",
            "<f>_low_res_logits": "float32 (C,32,32) returned low-res logits: selected decoder masks clamped to "
                                  "+-32, NOT hole-filled",
            "<f>_low_res_logits_filled": "float32 (C,32,32) the selected decoder masks after the official hole "
                                         "filling (background components of area <= 256 low-res pixels, "
                                         "8-connectivity via scikit-image on CPU, set to +10), unclamped: the input "
                                         "of the final bilinear upsampling",
            "<f>_decoder_all_low_res_logits": "float32 (4,32,32) all 4 mask tokens of the decoder (token 0 = "
                                              "single-mask token), unclamped, before selection",
            "<f>_decoder_all_iou": "float32 (4,)",
            "<f>_object_score_logit": "float32 (1,1) object-score logit of the same decoder call (unused by "
                                      "predict_inst: no NO_OBJ_SCORE masking in the interactive image path)",
            "<f>_stability_score_token0": "float, stability score of token 0 (|logit>0.05| / |logit>-0.05|)",
            "f6_point_single_used_multimask_fallback": "bool, stability < 0.98 -> best-IoU multimask output returned",
            "f5_mask_input_from": "str, which f1 low-res map was used",
        }),
}

TOLERANCES = {
    "note": "Suggested for an independent fp32 CPU implementation loaded with sam3.pt (cast to float32).",
    "token_ids, bool outputs (masks, keep, prompt_mask), counts": "exact",
    "image resize to uint8": "exact with torchvision v2 Resize; otherwise max |diff| <= 1 LSB",
    "pixel_values": "atol 1e-6",
    "backbone features, text features, prompt tokens": "atol 1e-4, rtol 1e-4",
    "pred_logits, presence_logit_dec, iou, object_score_logit": "atol 1e-4",
    "pred_boxes, pred_boxes_xyxy (normalised)": "atol 1e-5",
    "post_boxes (pixels)": "atol 1e-3",
    "pred_masks, semantic_seg, low-res tracker logits": "atol 1e-4, rtol 1e-3",
    "post_masks_prob (float16 copy)": "atol 1e-3 (or recompute float32 from pred_masks and use atol 1e-5)",
    "f masks (float16 copy of logits up to |10|)": "atol 1e-2 (or recompute float32 from low_res_logits_filled)",
    "post_scores": "atol 1e-5",
    "hole filling": "exact when applied to the golden decoder_all_low_res_logits; a model whose low-res logits "
                    "differ by ~1e-6 can flip the sign of near-zero pixels (min |logit| is listed per case in "
                    "margins) and so the connected components: test the algorithm on golden inputs and the model "
                    "numerics on the unfilled logits",
}

NOTES = [
    "Weights: every floating tensor was rounded to a float16-representable value before any output was computed; "
    "sam3.pt stores them as float16 (complex64 RoPE tables freqs_cis unchanged). Cast to float32 when loading "
    "(load_state_dict(..., assign=False) into a float32 model does this).",
    "tracker.maskmem_backbone.out_proj: the official SimpleMaskEncoder omits out_proj when in_dim == out_dim; "
    "with d = mem_dim = 64 it was added explicitly as Conv2d(64,64,1) (used by the official forward), as the "
    "released model (256->64) always has it.",
    "Sam3TrackerBase._build_sam_heads hard-codes the two-way transformer (2 layers, mlp 2048, 8 heads) and the IoU "
    "head width (256); the tiny model rebuilds tracker.sam_mask_decoder with the same arguments and tiny sizes. "
    "SAM3InteractiveImagePredictor._bb_feat_sizes is hard-coded [(288,288),(144,144),(72,72)] and was set to "
    "[(32,32),(16,16),(8,8)].",
    "Official Sam3Processor.set_image reads (height, width) = image.shape[-2:], which is wrong for numpy HWC "
    "arrays (gives (W, 3)); only PIL images and CHW tensors are handled correctly. The golden files use a CHW "
    "uint8 tensor (PIL gives the same pixels).",
    "predict_inst: hole filling runs on CPU when scikit-image is installed (SAM2Transforms max_hole_area=256 in "
    "absolute low-res pixels = 25% of the tiny 32x32 map); it is applied to the low-res logits before the bilinear "
    "upsampling, while the returned low_res_logits are unfilled and clamped to +-32 and the returned masks are "
    "unclamped. The object-score logit is ignored in this path.",
    "Image post-processing does not clip boxes to the image (post_boxes can exceed W/H; pred_boxes_xyxy can exceed "
    "[0,1]).",
]


def _describe(v):
    if isinstance(v, torch.Tensor):
        return {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
    if isinstance(v, list):
        return {"type": "list", "len": len(v)}
    return {"type": type(v).__name__, "value": v}


def margins(cases):
    out = {}
    for k, v in cases.items():
        if k.endswith(("_decoder_all_low_res_logits", "_pred_masks")):
            out[k] = float(v.abs().min())
        elif k.endswith("_threshold_gap"):
            out[k] = float(v)
        elif k.endswith("_decoder_all_iou"):
            s = sorted(v[1:].tolist())
            out[k + " (top-2 multimask gap)"] = s[-1] - s[-2]
    return out


def build_meta(cases, ck, hf_check, only_ours, only_ref, secs):
    import torchvision
    import transformers
    return {
        "reference": {"name": "sam3 (Meta, facebookresearch/sam3)", "version": REFERENCE,
                      "patches": "../shared/oracle/sam3_cpu_env.py (triton stub, CUDA allocations at construction "
                                 "moved to CPU, pin_memory no-op), ../shared/oracle/patch_torchvision_cpu.py (pure "
                                 "PyTorch roi_align); no numerical effect"},
        "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
        "scikit_image": __import__("skimage").__version__,
        "transformers_for_config_check": transformers.__version__, "python": platform.python_version(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "tools/oracle/make_golden_official.py",
        "generation_seconds": round(secs, 1),
        "precision": "float32 on CPU, torch.inference_mode, model.eval()",
        "seeds": {"build (torch.manual_seed before module construction)": BUILD_SEED,
                  "weights (torch.Generator for randomisation)": WEIGHT_SEED, "images": IMAGE_SEED},
        "randomisation": "as ../shared/oracle/parity_image.py: parameters that are torch.empty-initialised "
                         "(text positional_embedding, text_projection), non-finite or |x|>1e3 are replaced by "
                         "N(0,0.02); then N(0,0.02) (dim>1) or N(0,0.05) (dim<=1) noise is added to every "
                         "parameter; finally every floating parameter/buffer is rounded to float16 precision",
        "tiny_config": dict(TINY),
        "tiny_config_notes": {
            "text_width": "16 (not 32): with the full 49408-token vocabulary a width of 32 alone costs 3.2 MB "
                          "even in float16 and would push the golden files over 8 MB",
            "composition": "build_sam3_image_model(enable_inst_interactivity=True) with the sizes above; see "
                           "build_tiny_official()",
        },
        "files": {
            "sam3.pt": {"format": "torch.save of a flat dict, released sam3.pt layout (detector.* = Sam3Image keys, "
                                  "tracker.* = inst_interactive_predictor.model.* keys)",
                        "entries": len(ck),
                        "dtype": "float16 for every floating tensor (float16-exact values), complex64 for the RoPE "
                                 "tables freqs_cis",
                        "key_patterns_only_here_vs_full_size_list": only_ours,
                        "key_patterns_missing_vs_full_size_list": only_ref},
            "config.json": "Sam3VideoConfig(...).to_json_file() (what save_pretrained writes), same tiny architecture",
            "cases.pt": "torch.save dict of plain tensors / lists / floats / bools / str "
                        "(torch.load(weights_only=True) works)",
        },
        "hf_check": hf_check,
        "cases": {k: dict(CASE_DOCS[k]) for k in CASE_DOCS},
        "fields": {k: _describe(v) for k, v in cases.items()},
        "margins": margins(cases),
        "tolerances": TOLERANCES,
        "notes": NOTES,
    }


# ----------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------
def checkpoint_for_saving(ck):
    """sam3.pt is stored in float16 to keep the golden files small: every floating tensor was rounded to a
    float16-representable value by randomise(), so the cast is lossless; complex RoPE tables stay complex64."""
    out = {}
    for k, v in ck.items():
        v = v.detach().clone().contiguous()
        if v.is_floating_point():
            assert torch.equal(v.half().float(), v), k
            v = v.half()
        out[k] = v
    return out


def generate():
    t0 = time.time()
    model = build_tiny_official()
    randomise(model)
    ck = to_official_layout(model.state_dict())
    cases = run_cases(model)
    return model, ck, cases, time.time() - t0


@torch.no_grad()
def load_official_checkpoint(model, path):
    """Load sam3.pt the way sam3.model_builder._load_checkpoint does for the image model (strict here)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    sd = {k.replace("detector.", "", 1): v for k, v in ckpt.items() if k.startswith("detector.")}
    sd.update({k.replace("tracker.", "inst_interactive_predictor.model.", 1): v for k, v in ckpt.items()
               if k.startswith("tracker.")})
    model.load_state_dict(sd, strict=True)  # copies (and casts float16 -> float32) into the float32 model
    return model


def _digest(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "official"))
    ap.add_argument("--check-determinism", action="store_true", help="generate twice in-process and compare bitwise")
    ap.add_argument("--skip-hf-check", action="store_true")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    _, ck, cases, secs = generate()
    print(f"generated in {secs:.1f} s", flush=True)
    if args.check_determinism:
        _, ck2, cases2, _ = generate()
        assert _digest(ck) == _digest(ck2), "weights differ between two runs"
        assert _digest(cases) == _digest(cases2), "cases differ between two runs"
        print("determinism: two in-process generations are bitwise identical", flush=True)

    only_ours, only_ref = compare_key_patterns(ck, os.path.join(os.path.dirname(E.__file__),
                                                                "keys_official_sam3pt_layout.txt"))
    print("key patterns only in ours:", only_ours, "| only in the full-size list:", only_ref, flush=True)

    torch.save(checkpoint_for_saving(ck), os.path.join(out_dir, "sam3.pt"))
    cfg_path = os.path.join(out_dir, "config.json")
    write_hf_config(cfg_path)
    hf_check = None
    if not args.skip_hf_check:
        hf_check = verify_hf(checkpoint_for_saving(ck), cfg_path, cases)
        print("HF check:", {k: (v if not isinstance(v, list) else len(v)) for k, v in hf_check.items()}, flush=True)
        assert not (hf_check["missing"] or hf_check["unexpected"] or hf_check["shape_mismatch"]), hf_check
    torch.save(cases, os.path.join(out_dir, "cases.pt"))

    # round trip: a freshly built (not randomised) model loaded from the written sam3.pt reproduces cases.pt
    fresh = load_official_checkpoint(build_tiny_official(), os.path.join(out_dir, "sam3.pt"))
    reloaded = torch.load(os.path.join(out_dir, "cases.pt"), weights_only=True)
    assert _digest(run_cases(fresh)) == _digest(reloaded), "sam3.pt does not reproduce cases.pt"
    print("round trip: sam3.pt loaded into a fresh model reproduces cases.pt bitwise", flush=True)

    meta = build_meta(cases, ck, hf_check, only_ours, only_ref, secs)
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    total = 0
    for n in sorted(os.listdir(out_dir)):
        s = os.path.getsize(os.path.join(out_dir, n))
        total += s
        print(f"{n:14s} {s / 1e6:7.3f} MB")
    print(f"total          {total / 1e6:7.3f} MB")


if __name__ == "__main__":
    main()
