"""``/v1/images``: upload (background encoding), status, ``segment`` (concepts), ``predict`` (clicks, boxes, a mask
to refine), delete."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from .errors import ApiError
from .schemas import ErrorAnswer, ImageStatus, PredictAnswer, PredictRequest, SegmentAnswer, SegmentRequest
from .service import Sam3Service
from .uploads import read_upload, require_json

ImageId = Path(..., pattern=r"^[0-9a-f]{1,64}$", description="the id POST /v1/images answered")
ERRORS = {c: {"model": ErrorAnswer} for c in (404, 409, 410, 422)}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string",
                                                                                 "format": "binary"}},
                                       "required": ["file"]}}}}}


def router(service: Sam3Service) -> APIRouter:
    r = APIRouter(prefix="/v1/images", tags=["images"])

    @r.post("", status_code=202, response_model=ImageStatus, openapi_extra=UPLOAD_BODY,
            responses={200: {"model": ImageStatus, "description": "these bytes were uploaded before"},
                       **{c: {"model": ErrorAnswer} for c in (400, 413, 415, 422)}})
    async def upload_image(request: Request):
        """Upload an image (its file's bytes as the body, or a multipart field ``file``). Encoding starts in the
        background: poll ``GET /v1/images/{image_id}``, or prompt at once (prompts wait for it). The same bytes give
        the same id and share one encoding."""
        data = await read_upload(request)
        entry, new = await anyio.to_thread.run_sync(service.images.add, data)
        return JSONResponse(entry.status_json(), status_code=202 if new else 200)

    @r.get("/{image_id}", response_model=ImageStatus, responses=ERRORS)
    async def image_status(image_id: str = ImageId):  # a coroutine: answers while requests wait for the model
        """``encoding`` (with ``progress``), ``ready`` or ``failed`` (with ``error``)."""
        return service.images.get(image_id).status_json()

    @r.delete("/{image_id}", responses=ERRORS)
    async def delete_image(image_id: str = ImageId) -> dict:
        """Forget the image and its encoding."""
        service.images.delete(image_id)
        return {"image_id": image_id, "deleted": True}

    @r.post("/{image_id}/segment", response_model=SegmentAnswer, responses=ERRORS, dependencies=[Depends(require_json)])
    def segment(body: SegmentRequest, image_id: str = ImageId):
        """Every instance of a concept (``text``, exemplar ``boxes`` with ``box_labels``, or both):
        ``ImagePredictor.segment``. Objects come in the detector's query order."""
        if body.text is None and body.boxes is None:
            raise ApiError(422, "invalid_input", "segment needs a text, exemplar boxes, or both")
        return service.segment(image_id, body.text, body.boxes, body.box_labels, body.threshold, body.mask_threshold)

    @r.post("/{image_id}/predict", response_model=PredictAnswer, responses=ERRORS, dependencies=[Depends(require_json)])
    def predict(body: PredictRequest, image_id: str = ImageId):
        """One object from ``points`` (with ``point_labels``), a ``box`` and/or a ``mask_input`` to refine:
        ``ImagePredictor.predict``. ``mask_input`` ``{"object": k}`` refines object k of the image's latest
        ``segment`` answer (or of the one ``segment_id`` names), ``{"mask": RLE}`` any mask of the image's size."""
        if body.points is None and body.box is None and body.mask_input is None:
            raise ApiError(422, "invalid_input", "predict needs points, a box or a mask_input")
        mask_input = None if body.mask_input is None else body.mask_input.model_dump()
        return service.predict(image_id, body.points, body.point_labels, body.box, mask_input, body.multimask)

    return r
