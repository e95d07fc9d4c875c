"""The one key table: sam3kit parameter names <-> the two released checkpoint layouts.

sam3kit's module tree reproduces the Hugging Face ``facebook/sam3`` ``model.safetensors`` names, so the HF layout
maps one to one, with named exceptions (``HF_RENAMES``, ``HF_PREFIX_ALIASES``). The official ``sam3.pt`` layout is
reached by the ordered rules of ``official_rules`` (ours -> official), each with the tensor fix it needs:
fused q/k/v chunks, the ViT position table's cls slot, the transposed (unused) CLIP projection and the prompt
encoder's per-label point embeddings. Keys present in only one layout are named constants with their reason.

The tracker's Gaussian matrix is two tensors in the HF layout and ours (``prompt_encoder.shared_embedding`` for
the prompt coordinates, ``shared_image_embedding`` for the image-wide position encoding) and one in the official
layout (``pe_layer.positional_encoding_gaussian_matrix``): both of ours read it, and writing the official layout
requires the two to be equal (``writer.official_state_dict``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from ..config import Sam3Config

# ----------------------------------------------------------------------------- HF layout
HF_RENAMES: list[tuple[str, str]] = [
    # (ours, HF file): CLIP keeps the name `out_proj` for its attention output; our one Attention calls it o_proj.
    (r"^(detector_model\.text_encoder\.text_model\.encoder\.layers\.\d+\.self_attn\.)o_proj\.", r"\1out_proj."),
]
HF_PREFIX_ALIASES: dict[str, str] = {
    # file prefix -> canonical prefix. transformers 5.23 ``Sam3VideoModel.save_pretrained`` writes the tracker with
    # a doubled prefix (its load-time rename ``tracker_model.X -> X`` inverted on save); facebook/sam3 has one.
    "tracker_model.tracker_model.": "tracker_model.",
}

# ----------------------------------------------------------------------------- official layout
OFFICIAL_SKIPPED: dict[str, str] = {
    # regex of official-only keys -> why sam3kit does not read them
    r"^detector\.backbone\.vision_backbone\.trunk\.blocks\.\d+\.attn\.freqs_cis$":
        "RoPE table, recomputed by sam3kit (checked equal to the stored one on load)",
    r"^detector\.geometry_encoder\.points_(direct|pool|pos_enc)_project\.(weight|bias)$":
        "point prompts of the detector, never fed by the official image or video API",
}


@dataclass(frozen=True)
class Fix:
    """How one of our tensors is stored in the official file.

    kind: "chunk" (row block ``index`` of ``parts`` of a fused tensor, dim 0), "pos_embed" (official table has an
    extra leading cls slot), "transpose", "row" (row ``index`` of ours is official tensor (1, C) number ``index``).
    """

    kind: str
    index: int = 0
    parts: int = 3


Replacement = Union[str, Callable[[re.Match], str]]
_Rule = tuple[re.Pattern, Replacement, Optional[Callable[[re.Match], Fix]]]


def _qkv(m: re.Match, group: int = 2) -> Fix:
    return Fix("chunk", "qkv".index(m.group(group)))


def _official_rules(cfg: Sam3Config) -> list[_Rule]:
    R: list[tuple[str, Replacement, Optional[Callable[[re.Match], Fix]]]] = []

    def add(ours: str, off: Replacement, fix=None):
        R.append((ours, off, fix))

    def fused_attn(ours_prefix: str, off_prefix: str):
        # nn.MultiheadAttention in the official code: fused in_proj_{weight,bias}, out_proj
        add(ours_prefix + r"\.([qkv])_proj\.(weight|bias)$", lambda m: off_prefix.format(*m.groups()[:-2]) + f".in_proj_{m.group(m.re.groups)}",
            lambda m: Fix("chunk", "qkv".index(m.group(m.re.groups - 1))))
        add(ours_prefix + r"\.o_proj\.(weight|bias)$", lambda m: off_prefix.format(*m.groups()[:-1]) + f".out_proj.{m.group(m.re.groups)}")

    def split_attn(ours_prefix: str, off_prefix: str):
        # already split in the official code (SAM attention): only o_proj -> out_proj
        add(ours_prefix + r"\.([qkv])_proj\.(weight|bias)$",
            lambda m: off_prefix.format(*m.groups()[:-2]) + f".{m.group(m.re.groups - 1)}_proj.{m.group(m.re.groups)}")
        add(ours_prefix + r"\.o_proj\.(weight|bias)$", lambda m: off_prefix.format(*m.groups()[:-1]) + f".out_proj.{m.group(m.re.groups)}")

    def seq_mlp(ours_prefix: str, off_prefix: str, style: str, n: int = 3):
        # our MLP naming (layerK / proj_in,layers.K,proj_out) -> official layers.{K}
        if style == "layer":
            add(ours_prefix + r"\.layer(\d)\.(weight|bias)$",
                lambda m: off_prefix.format(*m.groups()[:-2]) + f".layers.{int(m.group(m.re.groups - 1)) - 1}.{m.group(m.re.groups)}")
        else:
            add(ours_prefix + r"\.proj_in\.(weight|bias)$", lambda m: off_prefix.format(*m.groups()[:-1]) + f".layers.0.{m.group(m.re.groups)}")
            add(ours_prefix + r"\.layers\.(\d+)\.(weight|bias)$",
                lambda m: off_prefix.format(*m.groups()[:-2]) + f".layers.{int(m.group(m.re.groups - 1)) + 1}.{m.group(m.re.groups)}")
            add(ours_prefix + r"\.proj_out\.(weight|bias)$", lambda m: off_prefix.format(*m.groups()[:-1]) + f".layers.{n - 1}.{m.group(m.re.groups)}")

    # --- ViT trunk
    V, T = r"^detector_model\.vision_encoder\.backbone\.", "detector.backbone.vision_backbone.trunk."
    add(V + r"embeddings\.patch_embeddings\.projection\.weight$", T + "patch_embed.proj.weight")
    add(V + r"embeddings\.position_embeddings$", T + "pos_embed", lambda m: Fix("pos_embed"))
    add(V + r"layer_norm\.(weight|bias)$", T + r"ln_pre.\1")
    add(V + r"layers\.(\d+)\.layer_norm([12])\.(weight|bias)$", T + r"blocks.\1.norm\2.\3")
    add(V + r"layers\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)$", T + r"blocks.\1.attn.qkv.\3", _qkv)
    add(V + r"layers\.(\d+)\.attention\.o_proj\.(weight|bias)$", T + r"blocks.\1.attn.proj.\2")
    add(V + r"layers\.(\d+)\.mlp\.(fc[12])\.(weight|bias)$", T + r"blocks.\1.mlp.\2.\3")

    # --- the two necks
    def neck(ours: str, off: str):
        add(ours + r"fpn_layers\.(\d)\.scale_layers\.0\.(weight|bias)$",
            lambda m: off + f"{m.group(1)}." + ("dconv_2x2_0" if m.group(1) == "0" else "dconv_2x2") + f".{m.group(2)}")
        add(ours + r"fpn_layers\.(\d)\.scale_layers\.2\.(weight|bias)$", off + r"\1.dconv_2x2_1.\2")
        add(ours + r"fpn_layers\.(\d)\.proj1\.(weight|bias)$", off + r"\1.conv_1x1.\2")
        add(ours + r"fpn_layers\.(\d)\.proj2\.(weight|bias)$", off + r"\1.conv_3x3.\2")

    neck(r"^detector_model\.vision_encoder\.neck\.", "detector.backbone.vision_backbone.convs.")
    neck(r"^tracker_neck\.", "detector.backbone.vision_backbone.sam2_convs.")

    # --- text encoder
    TE, OT = r"^detector_model\.text_encoder\.", "detector.backbone.language_backbone.encoder."
    add(TE + r"text_model\.embeddings\.token_embedding\.weight$", OT + "token_embedding.weight")
    add(TE + r"text_model\.embeddings\.position_embedding\.weight$", OT + "positional_embedding")
    fused_attn(TE + r"text_model\.encoder\.layers\.(\d+)\.self_attn", OT + "transformer.resblocks.{0}.attn")
    add(TE + r"text_model\.encoder\.layers\.(\d+)\.layer_norm([12])\.(weight|bias)$", OT + r"transformer.resblocks.\1.ln_\2.\3")
    add(TE + r"text_model\.encoder\.layers\.(\d+)\.mlp\.fc1\.(weight|bias)$", OT + r"transformer.resblocks.\1.mlp.c_fc.\2")
    add(TE + r"text_model\.encoder\.layers\.(\d+)\.mlp\.fc2\.(weight|bias)$", OT + r"transformer.resblocks.\1.mlp.c_proj.\2")
    add(TE + r"text_model\.final_layer_norm\.(weight|bias)$", OT + r"ln_final.\1")
    add(TE + r"text_projection\.weight$", OT + "text_projection", lambda m: Fix("transpose"))
    add(r"^detector_model\.text_projection\.(weight|bias)$", r"detector.backbone.language_backbone.resizer.\1")

    # --- geometry encoder and DETR encoder share the layer layout
    def enc_layer(ours: str, off: str):
        fused_attn(ours + r"\.self_attn", off + ".self_attn")
        fused_attn(ours + r"\.cross_attn", off + ".cross_attn_image")
        add(ours + r"\.mlp\.fc([12])\.(weight|bias)$", lambda m: off.format(*m.groups()[:-2]) + f".linear{m.group(m.re.groups - 1)}.{m.group(m.re.groups)}")
        add(ours + r"\.layer_norm([123])\.(weight|bias)$", lambda m: off.format(*m.groups()[:-2]) + f".norm{m.group(m.re.groups - 1)}.{m.group(m.re.groups)}")

    G, OG = r"^detector_model\.geometry_encoder\.", "detector.geometry_encoder."
    for name in ("label_embed", "cls_embed", "boxes_direct_project", "boxes_pool_project", "boxes_pos_enc_project", "final_proj"):
        add(G + name + r"\.(weight|bias)$", OG + name + r".\1")
    add(G + r"vision_layer_norm\.(weight|bias)$", OG + r"img_pre_norm.\1")
    add(G + r"prompt_layer_norm\.(weight|bias)$", OG + r"norm.\1")
    add(G + r"output_layer_norm\.(weight|bias)$", OG + r"encode_norm.\1")
    enc_layer(G + r"layers\.(\d+)", OG + "encode.{0}")
    enc_layer(r"^detector_model\.detr_encoder\.layers\.(\d+)", "detector.transformer.encoder.layers.{0}")

    # --- DETR decoder
    DD, OD = r"^detector_model\.detr_decoder\.", "detector.transformer.decoder."
    L = DD + r"layers\.(\d+)"
    fused_attn(L + r"\.self_attn", OD + "layers.{0}.self_attn")
    fused_attn(L + r"\.text_cross_attn", OD + "layers.{0}.ca_text")
    fused_attn(L + r"\.vision_cross_attn", OD + "layers.{0}.cross_attn")
    for ours, off in (("self_attn_layer_norm", "norm2"), ("text_cross_attn_layer_norm", "catext_norm"),
                      ("vision_cross_attn_layer_norm", "norm1"), ("mlp_layer_norm", "norm3"),
                      ("mlp.fc1", "linear1"), ("mlp.fc2", "linear2")):
        add(L + r"\." + re.escape(ours) + r"\.(weight|bias)$", OD + r"layers.\1." + off + r".\2")
    add(DD + r"output_layer_norm\.(weight|bias)$", OD + r"norm.\1")
    add(DD + r"presence_layer_norm\.(weight|bias)$", OD + r"presence_token_out_norm.\1")
    for name in ("query_embed", "reference_points", "presence_token"):
        add(DD + name + r"\.weight$", OD + name + ".weight")
    seq_mlp(DD + "box_head", OD + "bbox_embed", "layer")
    seq_mlp(DD + "presence_head", OD + "presence_token_head", "layer")
    seq_mlp(DD + "ref_point_head", OD + "ref_point_head", "layer")
    seq_mlp(DD + "box_rpb_embed_x", OD + "boxRPB_embed_x", "layer")
    seq_mlp(DD + "box_rpb_embed_y", OD + "boxRPB_embed_y", "layer")

    # --- segmentation head and scoring
    MD, OS = r"^detector_model\.mask_decoder\.", "detector.segmentation_head."
    add(MD + r"pixel_decoder\.(conv_layers|norms)\.(\d+)\.(weight|bias)$", OS + r"pixel_decoder.\1.\2.\3")
    add(MD + r"mask_embedder\.layers\.(\d+)\.(weight|bias)$", OS + r"mask_predictor.mask_embed.layers.\1.\2")
    add(MD + r"instance_projection\.(weight|bias)$", OS + r"instance_seg_head.\1")
    add(MD + r"semantic_projection\.(weight|bias)$", OS + r"semantic_seg_head.\1")
    fused_attn(MD + r"prompt_cross_attn", OS + "cross_attend_prompt")
    add(MD + r"prompt_cross_attn_norm\.(weight|bias)$", OS + r"cross_attn_norm.\1")
    DS, OP = r"^detector_model\.dot_product_scoring\.", "detector.dot_prod_scoring."
    seq_mlp(DS + "text_mlp", OP + "prompt_mlp", "layer")
    add(DS + r"text_mlp_out_norm\.(weight|bias)$", OP + r"prompt_mlp.out_norm.\1")
    add(DS + r"text_proj\.(weight|bias)$", OP + r"prompt_proj.\1")
    add(DS + r"query_proj\.(weight|bias)$", OP + r"hs_proj.\1")

    # --- tracker
    if cfg.tracker is not None:
        t = cfg.tracker
        TM, O = r"^tracker_model\.", "tracker."
        for ours, off in (("memory_temporal_positional_encoding", "maskmem_tpos_enc"), ("no_memory_embedding", "no_mem_embed"),
                          ("no_memory_positional_encoding", "no_mem_pos_enc"), ("no_object_pointer", "no_obj_ptr"),
                          ("occlusion_spatial_embedding_parameter", "no_obj_embed_spatial")):
            add(TM + ours + "$", O + off)
        add(TM + r"mask_downsample\.(weight|bias)$", O + r"mask_downsample.\1")
        seq_mlp(TM + "object_pointer_proj", O + "obj_ptr_proj", "sam")
        add(TM + r"temporal_positional_encoding_projection_layer\.(weight|bias)$", O + r"obj_ptr_tpos_proj.\1")
        MA = TM + r"memory_attention\.layers\.(\d+)"
        split_attn(MA + r"\.self_attn", O + "transformer.encoder.layers.{0}.self_attn")
        split_attn(MA + r"\.cross_attn_image", O + "transformer.encoder.layers.{0}.cross_attn_image")
        add(MA + r"\.(linear[12])\.(weight|bias)$", O + r"transformer.encoder.layers.\1.\2.\3")
        add(MA + r"\.layer_norm([123])\.(weight|bias)$", O + r"transformer.encoder.layers.\1.norm\2.\3")
        add(TM + r"memory_attention\.layer_norm\.(weight|bias)$", O + r"transformer.encoder.norm.\1")
        ME, OM = TM + r"memory_encoder\.", O + "maskmem_backbone."
        n_down = 0
        s = t.mask_downsampler_total_stride
        while s > 1:
            s //= t.mask_downsampler_stride
            n_down += 1
        add(ME + r"mask_downsampler\.layers\.(\d+)\.conv\.(weight|bias)$",
            lambda m: OM + f"mask_downsampler.encoder.{3 * int(m.group(1))}.{m.group(2)}")
        add(ME + r"mask_downsampler\.layers\.(\d+)\.layer_norm\.(weight|bias)$",
            lambda m: OM + f"mask_downsampler.encoder.{3 * int(m.group(1)) + 1}.{m.group(2)}")
        add(ME + r"mask_downsampler\.final_conv\.(weight|bias)$", OM + f"mask_downsampler.encoder.{3 * n_down}." + r"\1")
        add(ME + r"feature_projection\.(weight|bias)$", OM + r"pix_feat_proj.\1")
        add(ME + r"projection\.(weight|bias)$", OM + r"out_proj.\1")
        for ours, off in (("depthwise_conv", "dwconv"), ("layer_norm", "norm"), ("pointwise_conv1", "pwconv1"),
                          ("pointwise_conv2", "pwconv2")):
            add(ME + r"memory_fuser\.layers\.(\d+)\." + ours + r"\.(weight|bias)$", OM + r"fuser.layers.\1." + off + r".\2")
        add(ME + r"memory_fuser\.layers\.(\d+)\.scale$", OM + r"fuser.layers.\1.gamma")
        PE, OPE = TM + r"prompt_encoder\.", O + "sam_prompt_encoder."
        # one official matrix for both of ours (module docstring)
        add(PE + r"shared_embedding\.positional_embedding$", OPE + "pe_layer.positional_encoding_gaussian_matrix")
        add(TM + r"shared_image_embedding\.positional_embedding$", OPE + "pe_layer.positional_encoding_gaussian_matrix")
        add(PE + r"point_embed\.weight$", OPE + "point_embeddings.{row}.weight", lambda m: Fix("row"))
        for ours, off in (("conv1", "0"), ("layer_norm1", "1"), ("conv2", "3"), ("layer_norm2", "4"), ("conv3", "6")):
            add(PE + r"mask_embed\." + ours + r"\.(weight|bias)$", OPE + f"mask_downscaling.{off}." + r"\1")
        add(PE + r"(no_mask_embed|not_a_point_embed)\.weight$", OPE + r"\1.weight")
        SM, OSM = TM + r"mask_decoder\.", O + "sam_mask_decoder."
        add(SM + r"(iou_token|mask_tokens|obj_score_token)\.weight$", OSM + r"\1.weight")
        add(SM + r"(conv_s0|conv_s1)\.(weight|bias)$", OSM + r"\1.\2")
        for ours, off in (("upscale_conv1", "0"), ("upscale_layer_norm", "1"), ("upscale_conv2", "3")):
            add(SM + ours + r"\.(weight|bias)$", OSM + f"output_upscaling.{off}." + r"\1")
        seq_mlp(SM + r"output_hypernetworks_mlps\.(\d+)", OSM + "output_hypernetworks_mlps.{0}", "sam")
        seq_mlp(SM + "iou_prediction_head", OSM + "iou_prediction_head", "sam", t.iou_head_depth)
        seq_mlp(SM + "pred_obj_score_head", OSM + "pred_obj_score_head", "sam")
        TW, OTW = SM + r"transformer\.", OSM + "transformer."
        for attn in ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token"):
            split_attn(TW + r"layers\.(\d+)\." + attn, OTW + "layers.{0}." + attn)
        add(TW + r"layers\.(\d+)\.mlp\.proj_in\.(weight|bias)$", OTW + r"layers.\1.mlp.lin1.\2")
        add(TW + r"layers\.(\d+)\.mlp\.proj_out\.(weight|bias)$", OTW + r"layers.\1.mlp.lin2.\2")
        add(TW + r"layers\.(\d+)\.layer_norm([1234])\.(weight|bias)$", OTW + r"layers.\1.norm\2.\3")
        split_attn(TW + "final_attn_token_to_image", OTW + "final_attn_token_to_image")
        add(TW + r"layer_norm_final_attn\.(weight|bias)$", OTW + r"norm_final_attn.\1")
    return [(re.compile(p), r, f) for p, r, f in R]


def official_key(rules: list[_Rule], ours: str) -> tuple[str, Optional[Fix]]:
    """The official ``sam3.pt`` key holding our parameter ``ours``, and the tensor fix. KeyError if none."""
    for pat, repl, fix in rules:
        m = pat.match(ours)
        if m:
            key = repl(m) if callable(repl) else m.expand(repl)
            return key, (fix(m) if fix else None)
    raise KeyError(ours)


def official_rules(cfg: Sam3Config) -> list[_Rule]:
    return _official_rules(cfg)


def hf_file_key(ours: str) -> str:
    """The key of our parameter in a Hugging Face ``model.safetensors``."""
    for pat, repl in HF_RENAMES:
        if re.match(pat, ours):
            return re.sub(pat, repl, ours)
    return ours


def extract(fix: Optional[Fix], tensor: Tensor, expected_shape: torch.Size) -> Tensor:
    """Our tensor out of the official one (views where possible, so memory-mapped data is not copied)."""
    if fix is None:
        return tensor
    if fix.kind == "chunk":
        n = tensor.shape[0] // fix.parts
        return tensor[fix.index * n:(fix.index + 1) * n]
    if fix.kind == "pos_embed":
        return tensor[:, 1:] if tensor.shape[1] == expected_shape[1] + 1 else tensor
    if fix.kind == "transpose":
        return tensor.t()
    raise AssertionError(f"unknown tensor fix {fix.kind!r}")  # internal invariant: the rules above name every kind
