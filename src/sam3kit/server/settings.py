"""``ServerSettings``: where the server listens, who may call it, and the limits that keep it within memory."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

from ..errors import InputError

MiB = 1 << 20
GiB = 1 << 30

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """How ``sam3kit serve`` (``create_app``) runs. Sizes are bytes; every limit answers a clear 4xx when reached.

    host, port: where uvicorn listens. The default is the loopback interface only; any other host needs ``token``.
    token: when set, every ``/v1`` request must send ``Authorization: Bearer <token>`` (the page at ``/`` asks for
        it, or reads it from the address's ``#token=...`` fragment, which browsers never send to the server).
    allowed_hosts: host names accepted in the ``Host`` header besides IP addresses and ``localhost`` (the check
        that defeats DNS rebinding: a hostile page whose name resolves to this machine sends its own name).
    cors_origins: origins (``https://tool.example:8080``) whose pages may call the API from a browser; none by
        default, and cross-origin requests from any other page are refused (not only left unreadable).
    max_body_bytes: largest request body, an image upload included (413 beyond).
    max_video_bytes: largest video upload (413 beyond).
    max_image_pixels: largest image (and video frame) in pixels, checked from the header before decoding (413).
    max_images: images held at once; the least recently used is evicted to make room (its id then answers 410).
    max_cache_bytes: bytes of encodings held (ViT output and the necks computed so far; about 150 MB per image at
        the released size in fp32); least recently used images are evicted beyond it, and an image whose encoding
        alone is larger fails with the reason.
    max_sessions: video sessions held at once; a new one beyond it answers 429 until one is deleted.
    encoding_wait_s: how long a prompt on an image that is still encoding waits for it before answering 409.
    model_wait_s: how long a request waits for the model (one run at a time) before answering 429.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: Optional[str] = None
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * MiB
    max_video_bytes: int = 1 * GiB
    max_image_pixels: int = 4096 * 4096
    max_images: int = 32
    max_cache_bytes: int = 2 * GiB
    max_sessions: int = 4
    encoding_wait_s: float = 60.0
    model_wait_s: float = 300.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("max_") and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise InputError(f"ServerSettings.{f.name} must be an int >= 1, got {v!r}")
        for name in ("encoding_wait_s", "model_wait_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise InputError(f"ServerSettings.{name} must be a number of seconds >= 0, got {v!r}")
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise InputError(f"ServerSettings.port must be 0..65535 (0: any free port), got {self.port!r}")
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8
                                       or any(c.isspace() for c in self.token)):
            raise InputError("the token must be a string of at least 8 characters without spaces")
        if not is_loopback(self.host) and self.token is None:
            raise InputError(f"--host {self.host} lets other machines reach the server: give a --token too (clients "
                             "then send 'Authorization: Bearer TOKEN'), or keep the default host 127.0.0.1")
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))
        object.__setattr__(self, "cors_origins", tuple(o.rstrip("/") for o in self.cors_origins))
        for o in self.cors_origins:
            if not o.startswith(("http://", "https://")) or o.count("/") != 2:
                raise InputError(f"a CORS origin is scheme://host[:port] (e.g. http://localhost:3000), got {o!r}")

    def public(self) -> dict[str, Any]:
        """The settings without the token (what ``GET /v1/info`` shows)."""
        d = asdict(self)
        d["token"] = self.token is not None
        d["allowed_hosts"] = list(self.allowed_hosts)
        d["cors_origins"] = list(self.cors_origins)
        return d
