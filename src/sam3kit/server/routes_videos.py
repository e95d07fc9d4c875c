"""``/v1/videos``: upload (a session), prompts and concepts on frames, the propagation as an NDJSON stream,
frames as JPEG, objects, reset, delete. Frames are answered as ``sam3kit track``'s frames.jsonl lines."""

from __future__ import annotations

from typing import Literal, Optional

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from ..io.rle import decode_rle
from .answers import frame_answer
from .errors import ApiError
from .schemas import (ConceptAnswer, ErrorAnswer, FrameAnswer, PromptAnswer, VideoConceptRequest, VideoPromptRequest,
                      VideoStatus)
from .service import Sam3Service
from .streaming import NDJSON, ClosingStreamingResponse, FrameStream
from .uploads import require_json, save_upload, upload_suffix

SessionId = Path(..., pattern=r"^[0-9a-f]{1,64}$", description="the id POST /v1/videos answered")
ERRORS = {c: {"model": ErrorAnswer} for c in (404, 409, 422)}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "video/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string",
                                                                                 "format": "binary"}},
                                       "required": ["file"]}}}}}
STREAM = {200: {"description": "one FrameAnswer JSON object per line, as each frame is computed; an error after "
                               "the first line arrives as a last line {\"error\", \"message\"}",
                "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/FrameAnswer"}}}}}


def router(service: Sam3Service) -> APIRouter:
    r = APIRouter(prefix="/v1/videos", tags=["videos"])

    def store():
        return service.require_videos()

    @r.post("", status_code=201, response_model=VideoStatus, openapi_extra=UPLOAD_BODY,
            responses={c: {"model": ErrorAnswer} for c in (400, 413, 415, 429)})
    async def upload_video(request: Request):
        """Upload a video file (MP4, MOV, WebM, ...; the body or a multipart field ``file``) and open a session on
        it. Frames are decoded when needed."""
        videos = store()
        videos.check_room()  # before a large body is read
        path = videos.new_upload(upload_suffix(request))
        try:
            await save_upload(request, path)
        except BaseException:
            videos.discard_upload(path)
            raise
        entry = await anyio.to_thread.run_sync(videos.open, path)
        return JSONResponse(entry.status_json(), status_code=201)

    @r.get("/{session_id}", response_model=VideoStatus, responses=ERRORS)
    async def video_status(session_id: str = SessionId):  # a coroutine: answers while requests wait for the model
        return store().get(session_id).status_json()

    @r.get("/{session_id}/frames/{index}", response_class=Response, responses={
        200: {"content": {"image/jpeg": {}}, "description": "the frame as JPEG"}, **ERRORS})
    def video_frame(session_id: str = SessionId, index: int = Path(..., ge=0)):
        """Frame ``index`` of the video as a JPEG image (what the page shows)."""
        return Response(store().frame_jpeg(session_id, index), media_type="image/jpeg",
                        headers={"cache-control": "private, max-age=3600"})

    @r.post("/{session_id}/prompts", response_model=PromptAnswer, responses=ERRORS,
            dependencies=[Depends(require_json)])
    def add_prompt(body: VideoPromptRequest, session_id: str = SessionId):
        """Clicks, a box or a mask for one object on one frame (``VideoSession.add_prompt``): a new object
        (``obj_id`` omitted or unused) or a refinement. Answers that frame for every object."""
        videos = store()
        with videos.use(session_id, "prompting") as entry:
            s = entry.session
            mask = None
            if body.mask is not None:
                h, w = s.frame_size
                if list(body.mask.size) != [h, w]:
                    raise ApiError(422, "invalid_input", f"mask has size {body.mask.size}, the frames are [{h}, {w}] "
                                                         "([height, width])")
                mask = decode_rle(body.mask.model_dump())
            before = set(s.object_ids)
            with service.runner.hold("video prompt"):
                result = s.add_prompt(body.frame, obj_id=body.obj_id, points=body.points,
                                      point_labels=body.point_labels, box=body.box, mask=mask,
                                      clear_old_points=body.clear_old_points)
            new = [i for i in s.object_ids if i not in before]
            obj = body.obj_id if body.obj_id is not None else (new[0] if new else None)
        return JSONResponse({**frame_answer(result), "obj_id": int(obj)})

    @r.post("/{session_id}/concepts", response_model=ConceptAnswer, responses={**ERRORS, 501: {"model": ErrorAnswer}},
            dependencies=[Depends(require_json)])
    def add_concept(body: VideoConceptRequest, session_id: str = SessionId):
        """Every instance of a ``text`` and/or exemplar ``boxes`` on one frame (``VideoSession.add_concept``);
        ``propagate`` then detects and tracks the concept through the video. Answers that frame."""
        videos = store()
        if body.text is None and body.boxes is None:
            raise ApiError(422, "invalid_input", "a concept needs a text, exemplar boxes, or both")
        with videos.use(session_id, "adding a concept") as entry:
            add = getattr(entry.session, "add_concept", None)
            if add is None:
                raise ApiError(501, "not_implemented", "this sam3kit version cannot track concepts in videos yet")
            with service.runner.hold("video concept"):
                result = add(body.frame, text=body.text, boxes=body.boxes, box_labels=body.box_labels)
            entry.concepts += 1
            index = entry.concepts - 1
        return JSONResponse({**frame_answer(result), "concept": index})

    @r.get("/{session_id}/propagate", response_class=Response, responses={**STREAM, **ERRORS})
    async def propagate(session_id: str = SessionId,
                        direction: Literal["both", "forward", "backward"] = Query("both"),
                        start: Optional[int] = Query(None, ge=0, description="default: the earliest prompted frame"),
                        max_frames: Optional[int] = Query(None, ge=0, description="frames beyond start, each way")):
        """Track every object through the video (``VideoSession.propagate``): one JSON line per frame, sent as it
        is computed. Closing the connection stops the work."""
        videos = store()
        entry = videos.get(session_id)
        entry.claim("propagating")

        def begin():
            with service.runner.hold("propagation"):  # consolidates the prompts: a model run
                return entry.session.propagate(start=start, direction=direction, max_frames=max_frames)

        try:
            iterator = await anyio.to_thread.run_sync(begin)
        except BaseException:
            entry.release()
            videos.finish(entry)
            raise
        return ClosingStreamingResponse(FrameStream(entry, videos, service.runner, iterator), media_type=NDJSON,
                                        headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})

    @r.get("/{session_id}/frames/{index}/result", response_model=FrameAnswer, responses=ERRORS)
    def frame_result(session_id: str = SessionId, index: int = Path(..., ge=0)):
        """The latest result of a frame already computed (``VideoSession.result``)."""
        with store().use(session_id, "reading a result") as entry:
            return JSONResponse(frame_answer(entry.session.result(index)))

    @r.delete("/{session_id}/objects/{obj_id}", response_model=VideoStatus, responses=ERRORS)
    def remove_object(session_id: str = SessionId, obj_id: int = Path(..., ge=0)):
        """Remove an object, its prompts and its results (``VideoSession.remove_object``)."""
        with store().use(session_id, "removing an object") as entry:
            with service.runner.hold("remove object"):
                entry.session.remove_object(obj_id)
        return entry.status_json()

    @r.post("/{session_id}/reset", response_model=VideoStatus, responses=ERRORS)
    def reset(session_id: str = SessionId):
        """Forget every prompt, object and result; the video stays open."""
        with store().use(session_id, "resetting") as entry:
            entry.session.reset()
            entry.concepts = 0
        return entry.status_json()

    @r.delete("/{session_id}", responses=ERRORS)
    def delete_video(session_id: str = SessionId) -> dict:
        """Close the session (a running propagation stops at its next frame) and remove the upload."""
        store().delete(session_id)
        return {"session_id": session_id, "deleted": True}

    return r
