"""Architecture configuration: one frozen dataclass per component.

The defaults equal the released ``facebook/sam3`` model. ``Sam3Config.from_hf_dict`` reads a Hugging Face
``config.json`` (``model_type`` ``sam3_video`` as released, or ``sam3`` as written by transformers'
``Sam3Model.save_pretrained``); ``to_hf_dict`` writes one back.

Divergence from the transformers defaults (documented in the README): the ViT LayerNorm eps is 1e-5, as in the
official implementation the model was trained with. transformers' config default (1e-6) is not read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import CheckpointError, InputError


@dataclass(frozen=True)
class ViTConfig:
    """Perception-Encoder ViT trunk (windowed + global attention, 2-D RoPE, tiled abs pos-emb)."""

    hidden_size: int = 1024
    intermediate_size: int = 4736
    num_layers: int = 32
    num_heads: int = 16
    image_size: int = 1008
    patch_size: int = 14
    window_size: int = 24
    global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    pretrain_image_size: int = 336
    layer_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def grid_size(self) -> int:
        """Tokens per side of the patch grid (72 at release)."""
        return self.image_size // self.patch_size

    @property
    def pretrain_grid_size(self) -> int:
        """Side of the learned abs pos-emb table (24 at release)."""
        return self.pretrain_image_size // self.patch_size


@dataclass(frozen=True)
class NeckConfig:
    """SimpleFPN neck (one for the detector, one for the tracker). Level 3 (the 1/2 scale) is never computed."""

    hidden_size: int = 256
    scale_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)


@dataclass(frozen=True)
class TextConfig:
    """CLIP-style causal text transformer."""

    vocab_size: int = 49408
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_layers: int = 24
    num_heads: int = 16
    context_length: int = 32
    projection_dim: int = 512  # unused `text_projection` kept for strict loading
    layer_norm_eps: float = 1e-5


@dataclass(frozen=True)
class TransformerConfig:
    """Shared shape of the geometry encoder, DETR encoder and DETR decoder stacks."""

    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 8
    intermediate_size: int = 2048


@dataclass(frozen=True)
class DecoderConfig(TransformerConfig):
    num_queries: int = 200


@dataclass(frozen=True)
class SegHeadConfig:
    hidden_size: int = 256
    num_upsampling_stages: int = 3
    num_heads: int = 8


@dataclass(frozen=True)
class DetectorConfig:
    vit: ViTConfig = field(default_factory=ViTConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    text: TextConfig = field(default_factory=TextConfig)
    geometry: TransformerConfig = field(default_factory=lambda: TransformerConfig(num_layers=3))
    roi_size: int = 7
    encoder: TransformerConfig = field(default_factory=TransformerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    seg_head: SegHeadConfig = field(default_factory=SegHeadConfig)

    @property
    def d_model(self) -> int:
        return self.neck.hidden_size


@dataclass(frozen=True)
class TrackerConfig:
    """SAM-2-style tracker: prompt encoder, two-way mask decoder, memory attention and memory encoder."""

    hidden_size: int = 256
    image_size: int = 1008
    patch_size: int = 14
    # prompt encoder
    mask_input_channels: int = 16
    num_point_embeddings: int = 4
    # mask decoder
    mlp_dim: int = 2048
    num_decoder_layers: int = 2
    num_decoder_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    stability_delta: float = 0.05
    stability_thresh: float = 0.98
    # memory
    num_maskmem: int = 7
    memory_attention_num_layers: int = 4
    memory_attention_num_heads: int = 1
    memory_attention_ffn_dim: int = 2048
    memory_dim: int = 64
    mask_downsampler_embed_dim: int = 256
    mask_downsampler_kernel_size: int = 3
    mask_downsampler_stride: int = 2
    mask_downsampler_padding: int = 1
    mask_downsampler_total_stride: int = 16
    memory_fuser_num_layers: int = 2
    memory_fuser_intermediate_dim: int = 1024
    memory_fuser_kernel_size: int = 7
    memory_fuser_padding: int = 3
    rope_theta: float = 10000.0

    @property
    def grid_size(self) -> int:
        """Side of the image-embedding grid (72 at release)."""
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class Sam3Config:
    """The whole model. ``tracker`` is None for detector-only checkpoints (transformers ``Sam3Model``)."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: Optional[TrackerConfig] = field(default_factory=TrackerConfig)

    @property
    def image_size(self) -> int:
        return self.detector.vit.image_size

    # ------------------------------------------------------------------ presets
    @classmethod
    def released(cls) -> "Sam3Config":
        """The configuration of the released ``facebook/sam3`` checkpoint."""
        return cls()

    @classmethod
    def tiny(cls, d: int = 64, with_tracker: bool = True) -> "Sam3Config":
        """A tiny random-weight configuration for tests (112 px input, 8x8 patch grid)."""
        tconf = TransformerConfig(hidden_size=d, num_layers=1, num_heads=2, intermediate_size=2 * d)
        det = DetectorConfig(
            vit=ViTConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, image_size=112,
                          patch_size=14, window_size=4, global_attn_indexes=(1,), pretrain_image_size=56),
            neck=NeckConfig(hidden_size=d),
            text=TextConfig(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, projection_dim=32),
            geometry=tconf,
            encoder=tconf,
            decoder=DecoderConfig(hidden_size=d, num_layers=2, num_heads=2, intermediate_size=2 * d, num_queries=10),
            seg_head=SegHeadConfig(hidden_size=d, num_heads=2),
        )
        trk = TrackerConfig(
            hidden_size=d, image_size=112, patch_size=14, mlp_dim=2 * d, num_decoder_heads=2, iou_head_hidden_dim=d,
            memory_attention_num_layers=1, memory_attention_ffn_dim=2 * d, mask_downsampler_embed_dim=d,
            memory_fuser_intermediate_dim=4 * d,
        )
        return cls(detector=det, tracker=trk if with_tracker else None)

    # ------------------------------------------------------------------ HF config.json
    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> "Sam3Config":
        """Read a Hugging Face ``config.json`` dict (``sam3_video`` or ``sam3``). Raises CheckpointError."""
        if not isinstance(d, dict):
            raise CheckpointError(f"config.json must hold a JSON object, got a {type(d).__name__}")
        mt = d.get("model_type")
        try:
            if mt == "sam3_video":
                return cls(detector=_detector_from_hf(d.get("detector_config") or {}),
                           tracker=_tracker_from_hf(d.get("tracker_config") or {}))
            if mt == "sam3":
                return cls(detector=_detector_from_hf(d), tracker=None)
        except (AttributeError, TypeError, ValueError) as e:  # a section that is not an object, a field of bad type
            raise CheckpointError(f"config.json (model_type {mt!r}) is not a valid SAM 3 configuration: {e}") from e
        if mt in ("sam3_tracker", "sam3_tracker_video"):
            raise CheckpointError(
                f"config.json has model_type {mt!r}: a tracker-only checkpoint has no detector. sam3kit loads the "
                "full SAM 3 model ('sam3_video', as in facebook/sam3) or a detector checkpoint ('sam3').")
        raise CheckpointError(
            f"config.json has model_type {mt!r}, expected 'sam3_video' (facebook/sam3) or 'sam3' (transformers "
            "Sam3Model.save_pretrained). Is this a SAM 3 checkpoint?")

    def to_hf_dict(self) -> dict[str, Any]:
        """The Hugging Face ``config.json`` dict of this configuration (``sam3_video`` when a tracker exists)."""
        det = _detector_to_hf(self.detector)
        if self.tracker is None:
            return {**det, "architectures": ["Sam3Model"]}
        return {"model_type": "sam3_video", "architectures": ["Sam3VideoModel"], "detector_config": det,
                "tracker_config": _tracker_to_hf(self.tracker, self.detector)}

    def replace(self, **changes: Any) -> "Sam3Config":
        return dataclasses.replace(self, **changes)

    def with_image_size(self, size: int) -> "Sam3Config":
        """The same weights run at another input resolution (README "Speed": faster, less accurate).

        ``size`` must be a multiple of ``patch_size * window_size`` (336 at release: 336, 672, 1008, 1344) so that
        the patch grid tiles into whole attention windows. As in both references, the abs pos-emb table is tiled
        over the new grid and the global blocks' RoPE positions are scaled by ``window / grid``; the necks, the
        detector and the tracker follow the grid (masks at 4 x grid). The model was trained at 1008 only.
        """
        vit = self.detector.vit
        step = vit.patch_size * vit.window_size
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or size % step:
            raise InputError(f"image size must be a positive multiple of patch_size x window_size = {step} "
                             f"(e.g. {step}, {2 * step}, {3 * step}), got {size!r}")
        det = dataclasses.replace(self.detector, vit=dataclasses.replace(vit, image_size=size))
        trk = None if self.tracker is None else dataclasses.replace(self.tracker, image_size=size)
        return dataclasses.replace(self, detector=det, tracker=trk)


# ---------------------------------------------------------------------- HF <-> sam3kit field tables
_VIT_HF = dict(hidden_size="hidden_size", intermediate_size="intermediate_size", num_layers="num_hidden_layers",
               num_heads="num_attention_heads", image_size="image_size", patch_size="patch_size",
               window_size="window_size", global_attn_indexes="global_attn_indexes",
               pretrain_image_size="pretrain_image_size")
_TEXT_HF = dict(vocab_size="vocab_size", hidden_size="hidden_size", intermediate_size="intermediate_size",
                num_layers="num_hidden_layers", num_heads="num_attention_heads",
                context_length="max_position_embeddings", projection_dim="projection_dim",
                layer_norm_eps="layer_norm_eps")
_TF_HF = dict(hidden_size="hidden_size", num_layers="num_layers", num_heads="num_attention_heads",
              intermediate_size="intermediate_size")
_TRK_HF = dict(
    num_maskmem="num_maskmem", memory_attention_num_layers="memory_attention_num_layers",
    memory_attention_num_heads="memory_attention_num_attention_heads",
    memory_attention_ffn_dim="memory_attention_feed_forward_hidden_size", memory_dim="memory_encoder_output_channels",
    mask_downsampler_embed_dim="mask_downsampler_embed_dim", mask_downsampler_kernel_size="mask_downsampler_kernel_size",
    mask_downsampler_stride="mask_downsampler_stride", mask_downsampler_padding="mask_downsampler_padding",
    mask_downsampler_total_stride="mask_downsampler_total_stride", memory_fuser_num_layers="memory_fuser_num_layers",
    memory_fuser_intermediate_dim="memory_fuser_intermediate_dim", memory_fuser_kernel_size="memory_fuser_kernel_size",
    memory_fuser_padding="memory_fuser_padding", image_size="image_size")
_PE_HF = dict(mask_input_channels="mask_input_channels", num_point_embeddings="num_point_embeddings",
              patch_size="patch_size")
_MD_HF = dict(mlp_dim="mlp_dim", num_decoder_layers="num_hidden_layers", num_decoder_heads="num_attention_heads",
              attention_downsample_rate="attention_downsample_rate", num_multimask_outputs="num_multimask_outputs",
              iou_head_depth="iou_head_depth", iou_head_hidden_dim="iou_head_hidden_dim",
              stability_delta="dynamic_multimask_stability_delta",
              stability_thresh="dynamic_multimask_stability_thresh")


def _read(cls, src: dict[str, Any], table: dict[str, str], **extra: Any):
    kw = {}
    for ours, theirs in table.items():
        if theirs in src and src[theirs] is not None:
            v = src[theirs]
            kw[ours] = tuple(v) if isinstance(v, list) else v
    kw.update(extra)
    return cls(**kw)


def _write(obj, table: dict[str, str]) -> dict[str, Any]:
    return {theirs: (list(getattr(obj, ours)) if isinstance(getattr(obj, ours), tuple) else getattr(obj, ours))
            for ours, theirs in table.items()}


def _rope_theta(src: dict[str, Any]) -> float:
    rp = src.get("rope_parameters") or {}
    return float(rp.get("rope_theta", src.get("rope_theta", 10000.0)))


def _detector_from_hf(d: dict[str, Any]) -> DetectorConfig:
    vision = d.get("vision_config") or {}
    backbone = vision.get("backbone_config") or {}
    vit = _read(ViTConfig, backbone, _VIT_HF, rope_theta=_rope_theta(backbone))
    neck = NeckConfig(hidden_size=vision.get("fpn_hidden_size", 256),
                      scale_factors=tuple(float(s) for s in vision.get("scale_factors", (4.0, 2.0, 1.0, 0.5))))
    text = _read(TextConfig, d.get("text_config") or {}, _TEXT_HF)
    geo_src = d.get("geometry_encoder_config") or {}
    geometry = _read(TransformerConfig, geo_src, _TF_HF, **({} if "num_layers" in geo_src else {"num_layers": 3}))
    encoder = _read(TransformerConfig, d.get("detr_encoder_config") or {}, _TF_HF)
    dec_src = d.get("detr_decoder_config") or {}
    decoder = _read(DecoderConfig, dec_src, dict(_TF_HF, num_queries="num_queries"))
    seg = _read(SegHeadConfig, d.get("mask_decoder_config") or {},
                dict(hidden_size="hidden_size", num_upsampling_stages="num_upsampling_stages",
                     num_heads="num_attention_heads"))
    return DetectorConfig(vit=vit, neck=neck, text=text, geometry=geometry, roi_size=geo_src.get("roi_size", 7),
                          encoder=encoder, decoder=decoder, seg_head=seg)


def _detector_to_hf(c: DetectorConfig) -> dict[str, Any]:
    backbone = {"model_type": "sam3_vit_model", **_write(c.vit, _VIT_HF), "layer_norm_eps": c.vit.layer_norm_eps,
                "rope_parameters": {"rope_theta": c.vit.rope_theta, "rope_type": "axial"}}
    g = c.vit.grid_size
    vision = {"model_type": "sam3_vision_model", "backbone_config": backbone, "fpn_hidden_size": c.neck.hidden_size,
              "scale_factors": list(c.neck.scale_factors),
              "backbone_feature_sizes": [[4 * g, 4 * g], [2 * g, 2 * g], [g, g]]}
    text = {"model_type": "clip_text_model", **_write(c.text, _TEXT_HF), "hidden_act": "gelu"}
    return {
        "model_type": "sam3",
        "vision_config": vision,
        "text_config": text,
        "geometry_encoder_config": {**_write(c.geometry, _TF_HF), "roi_size": c.roi_size},
        "detr_encoder_config": _write(c.encoder, _TF_HF),
        "detr_decoder_config": {**_write(c.decoder, _TF_HF), "num_queries": c.decoder.num_queries},
        "mask_decoder_config": {"hidden_size": c.seg_head.hidden_size,
                                "num_upsampling_stages": c.seg_head.num_upsampling_stages,
                                "num_attention_heads": c.seg_head.num_heads},
    }


def _tracker_from_hf(d: dict[str, Any]) -> TrackerConfig:
    pe = d.get("prompt_encoder_config") or {}
    md = d.get("mask_decoder_config") or {}
    kw = {}
    for table, src in ((_TRK_HF, d), (_PE_HF, pe), (_MD_HF, md)):
        kw.update({o: src[t] for o, t in table.items() if t in src and src[t] is not None})
    hidden = pe.get("hidden_size", md.get("hidden_size", d.get("memory_attention_hidden_size", 256)))
    return TrackerConfig(hidden_size=hidden, rope_theta=_rope_theta(d), **kw)


def _tracker_to_hf(t: TrackerConfig, det: DetectorConfig) -> dict[str, Any]:
    vision = _detector_to_hf(det)["vision_config"]
    return {
        "model_type": "sam3_tracker_video",
        "vision_config": vision,
        "image_size": t.image_size,
        "prompt_encoder_config": {"hidden_size": t.hidden_size, "image_size": t.image_size, **_write(t, _PE_HF)},
        "mask_decoder_config": {"hidden_size": t.hidden_size, **_write(t, _MD_HF)},
        **_write(t, _TRK_HF),
        "memory_attention_hidden_size": t.hidden_size,
        "memory_attention_rope_feat_sizes": [t.grid_size, t.grid_size],
        "memory_encoder_hidden_size": t.hidden_size,
        "memory_fuser_embed_dim": t.hidden_size,
        "rope_parameters": {"rope_theta": t.rope_theta, "rope_type": "axial"},
    }
