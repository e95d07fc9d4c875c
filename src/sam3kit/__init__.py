"""sam3kit: Segment Anything Model 3 for inference.

    import sam3kit
    model = sam3kit.load("facebook/sam3")            # or a local directory / model.safetensors / sam3.pt
    predictor = sam3kit.ImagePredictor(model)
    predictor.set_image("photo.jpg")
    found = predictor.segment(text="yellow school bus")      # every instance: masks, boxes, scores
    obj = predictor.predict(points=[[320, 240]])             # one object from a click: 3 masks + IoU

    video = sam3kit.VideoPredictor(model).start("clip.mp4")  # track objects from clicks, boxes or masks
    video.add_prompt(0, points=[[320, 240]])
    for frame in video.propagate(): ...                       # FrameResult: masks, boxes, scores per frame

Batches have their own calls, each returning a list: ``set_images`` + ``segment_batch``, ``predict_batch``.
``ImageEncoder`` (with an ``EncodingCache``) is the image-encoding service that predictors, video sessions and
servers share.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load", "ImagePredictor", "PredictOptions", "SegmentOptions", "EverythingOptions", "ImageEncoder", "EncoderOptions",
           "ImageState", "EncodingCache", "ImageTransform", "SpeedOptions", "Sam3Config", "Sam3Model",
           "SegmentResult", "PredictResult", "VideoPredictor", "VideoOptions", "ConceptTrackOptions", "VideoSession",
           "FrameResult",
           "Sam3Error", "CheckpointError", "InputError", "ImageError", "__version__"]

_LAZY = {
    "load": ("sam3kit.loading", "load"),
    "ImagePredictor": ("sam3kit.pipelines.image", "ImagePredictor"),
    "PredictOptions": ("sam3kit.pipelines.options", "PredictOptions"),
    "SegmentOptions": ("sam3kit.pipelines.options", "SegmentOptions"),
    "EverythingOptions": ("sam3kit.pipelines.everything", "EverythingOptions"),
    "ImageEncoder": ("sam3kit.pipelines.encoding", "ImageEncoder"),
    "EncoderOptions": ("sam3kit.pipelines.encoding", "EncoderOptions"),
    "ImageState": ("sam3kit.pipelines.encoding", "ImageState"),
    "EncodingCache": ("sam3kit.pipelines.cache", "EncodingCache"),
    "SpeedOptions": ("sam3kit.speed.options", "SpeedOptions"),
    "ImageTransform": ("sam3kit.pipelines.coords", "ImageTransform"),
    "Sam3Config": ("sam3kit.config", "Sam3Config"),
    "Sam3Model": ("sam3kit.model.sam3", "Sam3Model"),
    "SegmentResult": ("sam3kit.pipelines.results", "SegmentResult"),
    "PredictResult": ("sam3kit.pipelines.results", "PredictResult"),
    "VideoPredictor": ("sam3kit.pipelines.video", "VideoPredictor"),
    "VideoOptions": ("sam3kit.pipelines.video", "VideoOptions"),
    "ConceptTrackOptions": ("sam3kit.pipelines.video", "ConceptTrackOptions"),
    "VideoSession": ("sam3kit.pipelines.video", "VideoSession"),
    "FrameResult": ("sam3kit.pipelines.video", "FrameResult"),
    "Sam3Error": ("sam3kit.errors", "Sam3Error"),
    "CheckpointError": ("sam3kit.errors", "CheckpointError"),
    "InputError": ("sam3kit.errors", "InputError"),
    "ImageError": ("sam3kit.errors", "ImageError"),
}


def __getattr__(name: str):
    """Import public names on first use, so that ``import sam3kit`` (and ``sam3kit --help``) stays fast."""
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sam3kit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
