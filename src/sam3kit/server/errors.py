"""Every error the server answers is JSON: ``{"error": CODE, "message": TEXT}`` with a 4xx status for a client's
mistake or a limit, so a client can show the message and branch on the code.

``ApiError`` is what the server's own code raises. The handlers installed by ``install_error_handlers`` also turn
the library's ``InputError`` / ``ImageError`` (422), FastAPI's validation errors (422; malformed JSON 400) and
Starlette's HTTP errors (unknown route 404, wrong method 405) into the same shape; anything else is a bug: 500 with
the same shape, and the traceback goes to the server's log.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("sam3kit.server")


class ApiError(StarletteHTTPException):
    """An answer with ``status`` (4xx), a short machine-readable ``code`` and a one-line ``message``.

    A subclass of Starlette's ``HTTPException``, so that it passes unchanged through FastAPI's body parsing (a
    body-size error raised while a body is read arrives as itself, not as "error parsing the body").
    """

    def __init__(self, status: int, code: str, message: str, *, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def _json(status: int, code: str, message: str, headers: Optional[dict[str, str]] = None, **extra: Any):
    from starlette.responses import JSONResponse

    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_input",
                 429: "busy"}


def _where(loc: Any) -> str:
    parts = [str(p) for p in (loc or ()) if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(code, one-line message) of FastAPI's validation errors: ``malformed_json`` or ``invalid_request``."""
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (e.get("ctx") or {}).get("error", "not JSON")
        return "malformed_json", f"the request body is not valid JSON ({reason}); send a JSON object"
    shown = [f"{_where(e.get('loc'))}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid_request", "; ".join(shown) + more


def install_error_handlers(app) -> None:
    """Make every error of ``app`` a JSON answer of the shape above."""
    from fastapi.exceptions import RequestValidationError

    from ..errors import ImageError, InputError, Sam3Error

    @app.exception_handler(ApiError)
    async def _api(request, exc: ApiError):
        return _json(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such resource: {request.method} {request.url.path} (the API is under /v1; see /openapi.json)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return _json(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        code, message = validation_message(list(exc.errors()))
        return _json(400 if code == "malformed_json" else 422, code, message)

    @app.exception_handler(InputError)
    async def _input(request, exc: InputError):
        return _json(422, "invalid_input", exc.message)

    @app.exception_handler(ImageError)
    async def _image(request, exc: ImageError):
        return _json(422, "invalid_image", exc.message)

    @app.exception_handler(Sam3Error)
    async def _sam3(request, exc: Sam3Error):
        return _json(400, "bad_request", exc.message)

    @app.exception_handler(Exception)
    async def _bug(request, exc: Exception):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _json(500, "internal_error", f"unexpected {type(exc).__name__} (a bug; the server log has the "
                                            "traceback)")
