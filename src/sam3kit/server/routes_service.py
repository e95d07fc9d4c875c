"""``/v1/health`` and ``/v1/info``."""

from __future__ import annotations

from fastapi import APIRouter

from .schemas import Health, Info
from .service import Sam3Service


def router(service: Sam3Service) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["service"])
    # The quick answers are coroutines: they run on the event loop, not in the thread pool where requests wait
    # for the model, so they answer while it is busy.

    @r.get("/health", response_model=Health)
    async def health():
        """The server answers; whether the model is busy; how many images and sessions it holds."""
        return {"status": "ok", "model_busy": service.runner.busy, "images": len(service.images),
                "sessions": len(service.videos) if service.videos is not None else 0}

    @r.get("/info", response_model=Info)
    async def info():
        """The model (source, fingerprint, device, dtype, input size), the limits and the optional features."""
        return service.info()

    return r
