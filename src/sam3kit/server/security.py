"""``Guard``: the ASGI middleware in front of everything: the Host check, the cross-origin check, the token and the
request-body limit. Each refusal is a JSON 4xx (``errors.py``) sent before the application sees the request.

- Host: the ``Host`` header must name an IP address, ``localhost`` or one of ``allowed_hosts``. A hostile web page
  whose domain is made to resolve to 127.0.0.1 (DNS rebinding) sends its own domain there, and is refused (403).
- Origin: a browser names the page behind every cross-origin request (and behind same-origin POSTs) in ``Origin``.
  A request whose origin is neither this server itself nor one of ``cors_origins`` is refused (403), so another
  site cannot drive the server from a visitor's browser even with requests that need no CORS preflight (form
  uploads). Requests without ``Origin`` (curl, Python) are not affected.
- Token: with ``token`` set, ``/v1`` and ``/openapi.json`` need ``Authorization: Bearer <token>`` (401 otherwise,
  compared in constant time). The page's files need none (they hold no data); CORS preflights carry no
  credentials and pass.
- Body: a declared ``Content-Length`` over the limit is refused at once (413); a body sent without one is counted
  as it arrives, and reading past the limit raises ``BodyTooLarge`` (an ``ApiError``, answered as 413). Video
  uploads (``POST /v1/videos``) have their own, larger limit.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Callable, Optional
from urllib.parse import urlsplit

from .errors import ApiError, error_body
from .settings import ServerSettings

PROTECTED_PREFIXES = ("/v1/", "/openapi.json")
VIDEO_UPLOAD = ("POST", "/v1/videos")


class BodyTooLarge(ApiError):
    def __init__(self, limit: int, what: str) -> None:
        super().__init__(413, "body_too_large", f"the {what} is larger than the server's limit of {limit} bytes "
                                                f"(--max-{'video' if what == 'video' else 'body'}-bytes)")


def host_name(value: str) -> str:
    """The host part of a ``Host`` header or of an origin's netloc, lower-case, IPv6 brackets removed."""
    v = value.strip().lower()
    if v.startswith("["):
        return v[1:v.find("]")] if "]" in v else v
    return v.rsplit(":", 1)[0] if v.count(":") == 1 else v


def host_allowed(name: str, allowed: tuple[str, ...]) -> bool:
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or name in allowed:
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class Guard:
    """ASGI middleware applying ``settings`` (module docstring) to every HTTP request of ``app``."""

    def __init__(self, app, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings
        self._token = settings.token.encode() if settings.token else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._check(scope, headers)
        if refusal is not None:
            status, code, message, extra = refusal
            return await _send_json(send, status, error_body(code, message), extra)
        method, path = scope.get("method", "GET"), scope.get("path", "")
        video = (method, path.rstrip("/")) == VIDEO_UPLOAD
        limit = self.settings.max_video_bytes if video else self.settings.max_body_bytes
        what = "video" if video else "request body"
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _send_json(send, 400, error_body("bad_request", "Content-Length is not a number"))
            if declared > limit:
                e = BodyTooLarge(limit, what)
                return await _send_json(send, 413, error_body(e.code, e.message))
        await self.app(scope, _counting(receive, limit, what), send)

    def _check(self, scope, headers: dict[str, str]) -> Optional[tuple[int, str, str, dict]]:
        s = self.settings
        host = headers.get("host", "")
        if not host_allowed(host_name(host), s.allowed_hosts):
            return (403, "host_not_allowed", f"Host {host!r} is not allowed (protection against DNS rebinding): "
                                             "use the server's IP address or localhost, or start it with "
                                             f"--allow-host {host_name(host) or 'NAME'}", {})
        origin = headers.get("origin")
        if origin is not None and origin != "null" and origin.rstrip("/") not in s.cors_origins:
            parts = urlsplit(origin)
            if parts.netloc.lower() != host.lower():
                return (403, "origin_not_allowed", f"cross-origin request from {origin} refused: start the server "
                                                   f"with --cors-origin {origin} to let that page use it", {})
        elif origin == "null":
            return (403, "origin_not_allowed", "requests from an opaque origin (a sandboxed page or a local file) "
                                               "are refused", {})
        path = scope.get("path", "")
        if self._token is not None and scope.get("method") != "OPTIONS" and path.startswith(PROTECTED_PREFIXES):
            auth = headers.get("authorization", "")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
                why = "no Authorization header" if not auth else "a wrong token"
                return (401, "unauthorized", f"this server needs 'Authorization: Bearer TOKEN' ({why} was sent)",
                        {"www-authenticate": "Bearer"})
        return None


def _counting(receive: Callable, limit: int, what: str) -> Callable:
    """``receive`` that raises ``BodyTooLarge`` once more than ``limit`` body bytes have arrived."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, what)
        return message

    return wrapped


async def _send_json(send, status: int, body: dict, headers: Optional[dict[str, str]] = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
