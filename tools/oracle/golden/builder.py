"""The tiny official SAM 3 image model the golden files are made from, and its random weights.

Same composition as the official ``build_sam3_image_model(enable_inst_interactivity=True)`` (detector with a
geometry encoder and the interactive SAM-1-task predictor on the tracker), with the sizes of ``TINY``.
"""
from __future__ import annotations

import torch
from torch import nn

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
from sam3.model.sam3_tracking_predictor import Sam3TrackerPredictor
from sam3.model.text_encoder_ve import VETextEncoder
from sam3.model.tokenizer_ve import SimpleTokenizer
from sam3.model.vitdet import ViT
from sam3.model.vl_combiner import SAM3VLBackbone
from sam3.sam.mask_decoder import MaskDecoder
from sam3.sam.transformer import RoPEAttention, TwoWayTransformer

from . import E  # the oracle environment's CPU shims (imported first by the package), for the BPE path

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


def build_tracker(mem_dim=None, use_memory_selection=False):
    """The tiny ``Sam3TrackerPredictor`` (composed like ``model_builder.build_tracker``). ``mem_dim`` (default
    ``T["mem_dim"]``) and ``use_memory_selection`` (False for the image golden files; the released video model passes
    True) are the only knobs the video golden files change."""
    d = T["d"]
    grid = T["grid"]
    mem_dim = T["mem_dim"] if mem_dim is None else mem_dim
    # memory encoder (official: SimpleMaskDownSampler(k3,s2,p1, interpol_size=[1152,1152]) = 4 x low-res mask size)
    mask_downsampler = SimpleMaskDownSampler(embed_dim=d, kernel_size=3, stride=2, padding=1,
                                             interpol_size=[4 * LOW_RES, 4 * LOW_RES])
    cx = CXBlock(dim=d, kernel_size=7, padding=3, layer_scale_init_value=1.0e-06, use_dwconv=True)
    maskmem = SimpleMaskEncoder(out_dim=mem_dim, in_dim=d, position_encoding=_pos_enc(mem_dim),
                                mask_downsampler=mask_downsampler, fuser=SimpleFuser(layer=cx, num_layers=2))
    if isinstance(maskmem.out_proj, nn.Identity):
        # With d == mem_dim (64, needed by transformers which hard-codes kv_in_dim=64 in the memory cross-attention)
        # SimpleMaskEncoder would skip its out_proj; the released model (256 -> 64) always has it, so add the
        # projection explicitly to keep the official `tracker.maskmem_backbone.out_proj.*` keys and computation.
        maskmem.out_proj = nn.Conv2d(d, mem_dim, kernel_size=1)
    self_attn = RoPEAttention(embedding_dim=d, num_heads=T["trk_mem_attn_heads"], downsample_rate=1, dropout=0.1,
                              rope_theta=10000.0, feat_sizes=[grid, grid], use_fa3=False, use_rope_real=False)
    cross_attn = RoPEAttention(embedding_dim=d, num_heads=T["trk_mem_attn_heads"], downsample_rate=1, dropout=0.1,
                               kv_in_dim=mem_dim, rope_theta=10000.0, feat_sizes=[grid, grid], rope_k_repeat=True,
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
        clear_non_cond_mem_around_input=True, fill_hole_area=0, use_memory_selection=use_memory_selection)
    # Sam3TrackerBase._build_sam_heads hard-codes the two-way transformer (depth 2, mlp 2048, 8 heads) and the IoU
    # head width (256): rebuild the SAM mask decoder with the same arguments but tiny sizes.
    trk.sam_mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=T["trk_mask_decoder_layers"], embedding_dim=d,
                                      mlp_dim=T["trk_mask_decoder_mlp"], num_heads=T["trk_mask_decoder_heads"]),
        transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=T["trk_iou_head_hidden"], use_high_res_features=True,
        iou_prediction_use_sigmoid=True, pred_obj_scores=True, pred_obj_scores_mlp=True,
        use_multimask_token_for_obj_ptr=True, **trk.sam_mask_decoder_extra_args)
    assert trk.mem_dim == mem_dim and trk.hidden_dim == d
    assert trk.sam_image_embedding_size == grid and trk.low_res_mask_size == LOW_RES
    return trk


def build_tiny_official(mem_dim=None, use_memory_selection=False):
    """The tiny official image model, composed like build_sam3_image_model(..., enable_inst_interactivity=True).
    The two arguments go to ``build_tracker`` (their defaults give the image golden files' model)."""
    torch.manual_seed(BUILD_SEED)
    backbone = SAM3VLBackbone(visual=build_vision_backbone(), text=build_text_encoder(), scalp=1)
    transformer = build_transformer()
    scoring = build_dot_product_scoring()
    seg_head = build_segmentation_head()
    geo = build_geometry_encoder()
    inst = SAM3InteractiveImagePredictor(build_tracker(mem_dim=mem_dim, use_memory_selection=use_memory_selection))
    inst._bb_feat_sizes = list(FEAT_SIZES)  # hard-coded [(288,288),(144,144),(72,72)] in the official predictor
    model = Sam3Image(backbone=backbone, transformer=transformer, input_geometry_encoder=geo,
                      segmentation_head=seg_head, num_feature_levels=1, o2m_mask_predict=True,
                      dot_prod_scoring=scoring, use_instance_query=False, multimask_output=True,
                      inst_interactive_predictor=inst, matcher=None)
    return model.eval()


@torch.no_grad()
def randomise(model, seed=WEIGHT_SEED, fp16_exact=True):
    """Random weights (the recipe of the oracle environment's parity scripts): parameters left uninitialised by
    ``torch.empty`` (the text ``positional_embedding`` and ``text_projection``), non-finite or larger than 1e3 are
    replaced by N(0, 0.02); then N(0, 0.02) noise (N(0, 0.05) for 0-/1-d parameters) is added to every parameter, so
    that zero-initialised layers matter. Optionally every floating parameter/buffer is then rounded to a
    float16-representable value, so that sam3.pt can be stored in float16 losslessly."""
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
