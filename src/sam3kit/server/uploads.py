"""Reading an upload: the file's bytes as the request body, or a multipart form's ``file`` field; and the check
that a JSON endpoint was sent JSON."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request

from .errors import ApiError

FIELD = "file"
CHUNK = 1 << 20


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def _form_file(request: Request):
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get(FIELD)
    if upload is None or isinstance(upload, str):
        await form.close()
        raise ApiError(400, "no_file", f"the multipart form has no file field named {FIELD!r}")
    return form, upload


async def read_upload(request: Request) -> bytes:
    """The uploaded file's bytes (the body's size limit is enforced while it arrives, ``security.Guard``)."""
    if not is_multipart(request):
        return await request.body()
    form, upload = await _form_file(request)
    try:
        return await upload.read()
    finally:
        await form.close()


async def save_upload(request: Request, path: Path) -> int:
    """Write the uploaded file to ``path`` in chunks (a video is never held in memory whole); returns its size."""
    size = 0
    with open(path, "wb") as f:
        if is_multipart(request):
            form, upload = await _form_file(request)
            try:
                while chunk := await upload.read(CHUNK):
                    f.write(chunk)
                    size += len(chunk)
            finally:
                await form.close()
        else:
            async for chunk in request.stream():
                f.write(chunk)
                size += len(chunk)
    if size == 0:
        raise ApiError(400, "empty_body", "the request has no video: send the video file's bytes as the body, or as "
                                          f"a multipart form field named {FIELD!r}")
    return size


def upload_suffix(request: Request) -> str:
    """A file suffix for a video upload, from its Content-Type (the container is recognised from the bytes;
    the suffix only helps the decoder's guess)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv",
            "video/x-msvideo": ".avi"}.get(kind, ".bin")


def require_json(request: Request) -> None:
    """A FastAPI dependency: 415 unless the body is declared JSON (a cross-site form cannot send that type
    without a CORS preflight, which the server refuses)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
        raise ApiError(415, "unsupported_media_type", f"send the request as JSON (Content-Type: application/json), "
                                                      f"got {kind or 'no Content-Type'}")
